package occi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/houssem/cmbs/store/bolt"
)

// TestCollectionTurn: past MaxCollectionRequests, a collection request
// waits for a turn, and one that ends while waiting gets none.
func TestCollectionTurn(t *testing.T) {
	st, err := bolt.Open(t.TempDir() + "/cmbs.db")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := NewServer(Options{Store: st, MaxCollectionRequests: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	end1, err := s.collectionTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end2, err := s.collectionTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.collectionTurn(short); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("third request while two run: %v, want 503", err)
	}
	got := make(chan error, 1)
	go func() {
		end3, err := s.collectionTurn(ctx)
		if err == nil {
			end3()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	end1()
	if err := <-got; err != nil {
		t.Fatalf("a waiting request did not get the turn that ended: %v", err)
	}
	end2()
}
