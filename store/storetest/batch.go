package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/houssem/cmbs/store"
)

func put(id, rev, body string) store.Write {
	return store.Put(store.Doc{ID: id, Rev: rev, Body: json.RawMessage(body)})
}

// testWrite: a batch of creates, updates and deletes commits whole, and
// returns revisions the next writes use.
func testWrite(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	w := watcher{t, ch}
	upd := mustPut(t, s, "w/upd", "", `{"v":0}`)
	del := mustPut(t, s, "w/del", "", `{"v":0}`)
	w.next()
	w.next()
	revs, err := s.Write(ctx, []store.Write{
		put("w/new", "", `{"v":1}`),
		put("w/upd", upd, `{"v":2}`),
		store.Remove("w/del", del),
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(revs) != 3 || revGen(t, revs[0]) != 1 || revGen(t, revs[1]) != 2 || revs[2] != "" {
		t.Fatalf("Write revisions = %q, want [1-… 2-… \"\"]", revs)
	}
	for id, want := range map[string]string{"w/new": `{"v":1}`, "w/upd": `{"v":2}`} {
		doc, err := s.Get(ctx, id)
		if err != nil || !sameJSON(t, doc.Body, want) {
			t.Errorf("after Write, Get(%q) = %s, %v; want %s", id, doc.Body, err, want)
		}
	}
	if _, err := s.Get(ctx, "w/del"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Write, Get of the deleted document: %v, want ErrNotFound", err)
	}
	seen := map[string]bool{}
	for range 3 {
		c := w.next()
		seen[c.ID] = true
		if c.ID == "w/del" && !c.Deleted {
			t.Errorf("change for the deleted document: %+v", c)
		}
	}
	if len(seen) != 3 {
		t.Errorf("Watch saw %v, want the three documents of the batch", seen)
	}
	if _, err := s.Write(ctx, []store.Write{put("w/upd", revs[1], `{"v":3}`), put("w/new", revs[0], `{"v":3}`)}); err != nil {
		t.Fatalf("Write at the revisions the last Write returned: %v", err)
	}
	if revs, err := s.Write(ctx, nil); err != nil || len(revs) != 0 {
		t.Errorf("empty Write = %q, %v", revs, err)
	}
}

// testWriteAtomic: a batch with one failing write writes nothing, and says
// which write failed.
func testWriteAtomic(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rev := mustPut(t, s, "a/existing", "", `{"v":0}`)
	stale := rev
	rev = mustPut(t, s, "a/existing", rev, `{"v":1}`)
	tests := []struct {
		name  string
		bad   store.Write
		index int
		want  error
	}{
		{"create over an existing document", put("a/existing", "", `{"v":9}`), 2, store.ErrConflict},
		{"stale revision", put("a/existing", stale, `{"v":9}`), 2, store.ErrConflict},
		{"update of a missing document", put("a/missing", "1-abc", `{"v":9}`), 2, store.ErrConflict},
		{"delete of a missing document", store.Remove("a/missing", "1-abc"), 2, store.ErrNotFound},
		{"delete at a stale revision", store.Remove("a/existing", stale), 2, store.ErrConflict},
		{"invalid body", put("a/bad", "", `[1]`), 2, store.ErrInvalid},
		{"reserved id", put(store.ReservedPrefix+"x", "", `{}`), 2, store.ErrInvalid},
		{"id twice", put("a/one", "", `{}`), 2, store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Write(ctx, []store.Write{put("a/one", "", `{"v":1}`), put("a/two", "", `{"v":2}`), tt.bad, put("a/three", "", `{}`)})
			var we *store.WriteError
			if !errors.As(err, &we) || we.Index != tt.index || !errors.Is(err, tt.want) {
				t.Fatalf("Write = %v, want a WriteError at %d wrapping %v", err, tt.index, tt.want)
			}
			for _, id := range []string{"a/one", "a/two", "a/three", "a/missing", "a/bad"} {
				if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("a failed Write left %q behind (Get: %v)", id, err)
				}
			}
			doc, err := s.Get(ctx, "a/existing")
			if err != nil || doc.Rev != rev || !sameJSON(t, doc.Body, `{"v":1}`) {
				t.Errorf("a failed Write changed a/existing: %+v, %v", doc, err)
			}
		})
	}
}

// testWriteConcurrent: batches racing for the same documents never both
// win, and the winner's batch is whole.
func testWriteConcurrent(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers = 8
	var wg sync.WaitGroup
	wins := make(chan int, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"writer":%d}`, i)
			if _, err := s.Write(ctx, []store.Write{put("c/x", "", body), put("c/y", "", body)}); err == nil {
				wins <- i
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners []int
	for i := range wins {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("%d batches creating the same documents succeeded, want 1", len(winners))
	}
	want := fmt.Sprintf(`{"writer":%d}`, winners[0])
	for _, id := range []string{"c/x", "c/y"} {
		doc, err := s.Get(ctx, id)
		if err != nil || !sameJSON(t, doc.Body, want) {
			t.Errorf("%s = %s, %v; want the winner's %s", id, doc.Body, err, want)
		}
	}
}

// testScan: pages of Scan visit the documents under a prefix in id order,
// each once, and writes between pages do not disturb the documents that
// stay.
func testScan(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	for i, id := range listIDs {
		mustPut(t, s, id, "", fmt.Sprintf(`{"i":%d}`, i))
	}
	for _, prefix := range []string{"", "a", "a/", "a/日本", "entity:/compute/", "zz", "c"} {
		var want []string
		for _, id := range listIDs {
			if strings.HasPrefix(id, prefix) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		for _, limit := range []int{1, 2, 3, 100, 0} {
			var got []string
			after := ""
			for range len(listIDs) + 2 {
				docs, err := s.Scan(ctx, prefix, after, limit)
				if err != nil {
					t.Fatalf("Scan(%q, %q, %d): %v", prefix, after, limit, err)
				}
				if limit > 0 && len(docs) > limit {
					t.Fatalf("Scan(%q, %q, %d) returned %d documents", prefix, after, limit, len(docs))
				}
				if len(docs) == 0 {
					break
				}
				got = append(got, ids(docs)...)
				after = docs[len(docs)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Errorf("Scan(%q) in pages of %d = %q, want %q", prefix, limit, got, want)
			}
		}
	}
	// after need not be a stored id, nor under the prefix.
	docs, err := s.Scan(ctx, "a/", "a/11", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(docs); len(got) == 0 || got[0] != "a/2" {
		t.Errorf("Scan after an absent id = %q, want it to start at a/2", got)
	}
	if docs, err := s.Scan(ctx, "b", "a", 1); err != nil || len(docs) != 1 || docs[0].ID != "b" {
		t.Errorf("Scan with after before the prefix = %q, %v; want [b]", ids(docs), err)
	}

	// Writes between pages: the documents present throughout are seen
	// once each.
	for i := range 30 {
		mustPut(t, s, fmt.Sprintf("q/%03d", i), "", `{}`)
	}
	seen := map[string]int{}
	after := ""
	for page := 0; ; page++ {
		docs, err := s.Scan(ctx, "q/", after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) == 0 {
			break
		}
		for _, d := range docs {
			seen[d.ID]++
		}
		after = docs[len(docs)-1].ID
		if page >= 5 {
			continue
		}
		mustPut(t, s, fmt.Sprintf("q/%03d.%d", page, page), "", `{}`) // behind the cursor
		mustPut(t, s, fmt.Sprintf("q/%03d", 100+page), "", `{}`)      // ahead of it
		d, err := s.Get(ctx, fmt.Sprintf("q/%03d", 29-page))          // ahead, removed
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, d.ID, d.Rev); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		if id := fmt.Sprintf("q/%03d", i); seen[id] != 1 {
			t.Errorf("%s seen %d times, want once", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", id, n)
		}
	}
	for i := range 5 {
		if id := fmt.Sprintf("q/%03d", 100+i); seen[id] != 1 {
			t.Errorf("%s, written ahead of the cursor, seen %d times, want once", id, seen[id])
		}
	}
}

// testGetMany: GetMany returns the documents that exist, whatever the
// backend offers.
func testGetMany(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	ra := mustPut(t, s, "g/a", "", `{"v":"a"}`)
	rb := mustPut(t, s, "g/b", "", `{"v":"b"}`)
	docs, err := store.GetMany(ctx, s, []string{"g/a", "g/missing", "g/b", "_bad"})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(docs) != 2 || docs["g/a"].Rev != ra || docs["g/b"].Rev != rb || !sameJSON(t, docs["g/b"].Body, `{"v":"b"}`) {
		t.Errorf("GetMany = %v", docs)
	}
	if docs, err := store.GetMany(ctx, s, nil); err != nil || len(docs) != 0 {
		t.Errorf("GetMany of nothing = %v, %v", docs, err)
	}
}
