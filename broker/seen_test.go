package broker

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// TestPruneSeen: records of messages seen are removed once they expire,
// and only then.
func TestPruneSeen(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	b, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	ctx := context.Background()
	now := time.Now()
	var writes []store.Write
	for i, exp := range []time.Duration{-time.Hour, -time.Second, time.Second, time.Hour} {
		writes = append(writes, seenWrite(string(rune('a'+i)), now.Add(exp)))
	}
	if _, err := st.Write(ctx, writes); err != nil {
		t.Fatal(err)
	}
	n, err := b.pruneSeenOnce(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want the 2 expired", n, err)
	}
	for id, kept := range map[string]bool{"a": false, "b": false, "c": true, "d": true} {
		_, err := st.Get(ctx, seenPrefix+id)
		if kept != (err == nil) || (!kept && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("seen/%s kept: %v (%v)", id, err == nil, err)
		}
	}
}
