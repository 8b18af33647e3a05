package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch/couchtest"
	"github.com/houssem/cmbs/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

func openTest(t testing.TB, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, couchtest.NewDBURL(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// TestConformanceSmallPages runs the suite with pages smaller than its
// results, so that Find's paging is exercised.
func TestConformanceSmallPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, WithPageSize(7)) })
}

// rawGet fetches a document straight from the server, bypassing the store.
func rawGet(t *testing.T, dbURL, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(dbURL + "/" + id)
	if err != nil {
		t.Fatalf("GET %s: %v", id, err)
	}
	defer cmbstest.NoError(t, resp.Body.Close)
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("GET %s: %v", id, err)
	}
	return doc
}

func TestBodyIsTopLevel(t *testing.T) {
	ctx := context.Background()
	dbURL := couchtest.NewDBURL(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	rev, err := s.Put(ctx, store.Doc{ID: "doc", Body: json.RawMessage(`{"kind":"compute","a":{"b":1}}`)})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	doc := rawGet(t, dbURL, "doc")
	if doc["_id"] != "doc" || doc["_rev"] != rev || doc["kind"] != "compute" {
		t.Errorf("stored document = %v, want body fields beside _id and _rev %q", doc, rev)
	}
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	base := couchtest.Start(t)
	// An admin makes the server check credentials.
	req, err := http.NewRequest(http.MethodPut, base+"/_config/admins/admin", strings.NewReader(`"s3cret"`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create admin: %v", err)
	}
	cmbstest.NoError(t, resp.Body.Close)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create admin: %s", resp.Status)
	}
	host := strings.TrimPrefix(base, "http://")
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"credentials", "http://admin:s3cret@" + host + "/withcreds", true},
		{"trailing slash", "http://admin:s3cret@" + host + "/slashed/", true},
		{"wrong password", "http://admin:nope@" + host + "/wrongpass", false},
		{"no database", "http://admin:s3cret@" + host, false},
		{"no database, slash", "http://admin:s3cret@" + host + "/", false},
		{"bad scheme", "ftp://" + host + "/db", false},
		{"no host", "http:///db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.url)
			if !tt.ok {
				if err == nil {
					cmbstest.NoError(t, s.Close)
					t.Fatal("Open succeeded")
				}
				if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":nope@") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer cmbstest.NoError(t, s.Close)
			if _, err := s.Put(ctx, store.Doc{ID: "x", Body: json.RawMessage(`{}`)}); err != nil {
				t.Fatalf("Put: %v", err)
			}
			// Opening an existing database keeps its documents.
			s2, err := Open(ctx, tt.url)
			if err != nil {
				t.Fatalf("second Open: %v", err)
			}
			defer cmbstest.NoError(t, s2.Close)
			if _, err := s2.Get(ctx, "x"); err != nil {
				t.Errorf("Get through a second Open: %v", err)
			}
		})
	}
}

func TestSplitURL(t *testing.T) {
	tests := []struct {
		in, base, name, user string
	}{
		{"http://h:5984/db", "http://h:5984", "db", ""},
		{"http://u:p@h:5984/db", "http://h:5984", "db", "u"},
		{"https://h/couch/db/", "https://h/couch", "db", ""},
		{"http://h/a%2Fb", "http://h", "a/b", ""},
	}
	for _, tt := range tests {
		base, name, user, err := splitURL(tt.in)
		if err != nil {
			t.Errorf("splitURL(%q): %v", tt.in, err)
			continue
		}
		if base != tt.base || name != tt.name || user.Username() != tt.user {
			t.Errorf("splitURL(%q) = %q %q %q, want %q %q %q", tt.in, base, name, user.Username(), tt.base, tt.name, tt.user)
		}
	}
}

func TestMangoField(t *testing.T) {
	tests := []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"a"}, "a", true},
		{[]string{"a", "b", "c"}, "a.b.c", true},
		{[]string{"attributes", "occi.core.id"}, `attributes.occi\.core\.id`, true},
		{[]string{"a", ""}, "", false},
		{[]string{`a\b`}, "", false},
		{[]string{"$or"}, "", false},
	}
	for _, tt := range tests {
		got, ok := mangoField(tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("mangoField(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSelectorIsNative checks that Find sends its conditions to the server
// rather than filtering everything locally: the selector alone, run
// directly against _find, must already narrow the documents.
func TestSelectorIsNative(t *testing.T) {
	ctx := context.Background()
	dbURL := couchtest.NewDBURL(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	for i := range 10 {
		body := fmt.Sprintf(`{"attributes":{"occi.core.id":"id%d"},"tags":["t%d"]}`, i, i%2)
		if _, err := s.Put(ctx, store.Doc{ID: fmt.Sprintf("e/%d", i), Body: json.RawMessage(body)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	tests := []struct {
		name  string
		where []store.Cond
		want  int
	}{
		{"dotted key", []store.Cond{{Field: []string{"attributes", "occi.core.id"}, Op: store.Eq, Value: "id3"}}, 1},
		{"contains", []store.Cond{{Field: []string{"tags"}, Op: store.Contains, Value: "t1"}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := s.dialect.buildSelector(store.Query{Prefix: "e/", Where: tt.where})
			if err != nil {
				t.Fatal(err)
			}
			body, err := json.Marshal(findQuery{Selector: sel, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(dbURL+"/_find", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer cmbstest.NoError(t, resp.Body.Close)
			var res struct {
				Docs []json.RawMessage `json:"docs"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
				t.Fatal(err)
			}
			if len(res.Docs) != tt.want {
				t.Errorf("server-side selector %s returned %d documents, want %d", body, len(res.Docs), tt.want)
			}
		})
	}
}

// TestWatchSurvivesServerLoss checks that a Watch whose server goes away
// keeps its channel open until its context ends, and that Close still
// returns.
func TestWatchSurvivesServerLoss(t *testing.T) {
	var dbURL string
	var s *Store
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan store.Change
	t.Run("server", func(t *testing.T) {
		base := couchtest.Start(t)
		dbURL = base + "/lost"
		var err error
		s, err = Open(ctx, dbURL)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		ch, err = s.Watch(ctx)
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
	})
	// The subtest's cleanup has killed the server, so the feed is broken
	// and being retried.
	if _, err := s.Get(ctx, "x"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get without a server error = %v", err)
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("Watch channel still open after its context ended")
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, storetest.BenchConfig{
		Open:        func(tb testing.TB) store.Store { return openTest(tb) },
		Docs:        200,
		Parallelism: 8,
	})
}
