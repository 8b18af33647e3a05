// Package storetest is the conformance suite every store.Store backend runs,
// so that the embedded and CouchDB backends behave the same for callers.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/store"
)

// waitTimeout bounds every wait for an asynchronous event, such as a change
// arriving on a Watch channel. It is a deadline for failure, not a timing
// assertion: healthy runs finish far sooner.
const waitTimeout = 15 * time.Second

// revPattern is the CouchDB revision shape both backends produce.
var revPattern = regexp.MustCompile(`^([1-9][0-9]*)-[0-9a-f]+$`)

// Run runs the conformance suite. open must return a new, empty store for
// each call; the suite closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	opener := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"GetMissing", testGetMissing},
		{"Update", testUpdate},
		{"StaleRev", testStaleRev},
		{"CreateTwice", testCreateTwice},
		{"Delete", testDelete},
		{"Invalid", testInvalid},
		{"List", testList},
		{"Find", testFind},
		{"FindMany", testFindMany},
		{"Watch", testWatch},
		{"WatchMany", testWatchMany},
		{"WatchOrder", testWatchOrder},
		{"WatchSince", testWatchSince},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentDistinct", testConcurrentDistinct},
		{"Write", testWrite},
		{"WriteAtomic", testWriteAtomic},
		{"WriteConcurrent", testWriteConcurrent},
		{"Scan", testScan},
		{"GetMany", testGetMany},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, opener(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s store.Store, id, rev, body string) string {
	t.Helper()
	newRev, err := s.Put(ctxFor(t), store.Doc{ID: id, Rev: rev, Body: json.RawMessage(body)})
	if err != nil {
		t.Fatalf("Put(%q, rev %q): %v", id, rev, err)
	}
	return newRev
}

func revGen(t *testing.T, rev string) int {
	t.Helper()
	m := revPattern.FindStringSubmatch(rev)
	if m == nil {
		t.Fatalf("revision %q is not of the form N-hex", rev)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("revision %q: %v", rev, err)
	}
	return n
}

// sameJSON compares bodies by value: backends may reorder keys or respell
// numbers.
func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("body %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func testCreateGet(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	body := `{"kind":"compute","n":2.5,"attributes":{"occi.core.id":"x","list":[1,"a",null]},"empty":{}}`
	rev := mustPut(t, s, "doc1", "", body)
	if g := revGen(t, rev); g != 1 {
		t.Errorf("first revision %q has generation %d, want 1", rev, g)
	}
	doc, err := s.Get(ctx, "doc1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if doc.ID != "doc1" || doc.Rev != rev {
		t.Errorf("Get = {%q %q}, want {%q %q}", doc.ID, doc.Rev, "doc1", rev)
	}
	if !sameJSON(t, doc.Body, body) {
		t.Errorf("Get body = %s, want %s", doc.Body, body)
	}
	rev2 := mustPut(t, s, "doc2", "", "")
	doc, err = s.Get(ctx, "doc2")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if doc.Rev != rev2 || !sameJSON(t, doc.Body, `{}`) {
		t.Errorf("Get of a document put without body = %+v, want rev %q and {}", doc, rev2)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "present", "", `{}`)
	for _, id := range []string{"absent", "presen", "present/", "", "_design/x", "_all_docs"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", id, err)
		}
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rev1 := mustPut(t, s, "doc", "", `{"v":1}`)
	rev2 := mustPut(t, s, "doc", rev1, `{"v":2,"added":[true]}`)
	if rev2 == rev1 {
		t.Fatalf("update kept revision %q", rev1)
	}
	if g1, g2 := revGen(t, rev1), revGen(t, rev2); g2 != g1+1 {
		t.Errorf("generation went from %d to %d, want +1", g1, g2)
	}
	rev3 := mustPut(t, s, "doc", rev2, `{"v":2,"added":[true]}`)
	if rev3 == rev2 || revGen(t, rev3) != 3 {
		t.Errorf("rewriting the same body gave revision %q after %q", rev3, rev2)
	}
	doc, err := s.Get(ctx, "doc")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if doc.Rev != rev3 || !sameJSON(t, doc.Body, `{"v":2,"added":[true]}`) {
		t.Errorf("Get = %+v, want rev %q", doc, rev3)
	}
}

func testStaleRev(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rev1 := mustPut(t, s, "doc", "", `{"v":1}`)
	rev2 := mustPut(t, s, "doc", rev1, `{"v":2}`)
	tests := []struct {
		name string
		id   string
		rev  string
	}{
		{"previous revision", "doc", rev1},
		{"unknown revision", "doc", "2-0123456789abcdef0123456789abcdef"},
		{"future generation", "doc", "9-0123456789abcdef0123456789abcdef"},
		{"malformed revision", "doc", "garbage"},
		{"revision on a missing document", "nodoc", rev2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Put(ctx, store.Doc{ID: tt.id, Rev: tt.rev, Body: json.RawMessage(`{"v":3}`)})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("Put(%q, rev %q) error = %v, want ErrConflict", tt.id, tt.rev, err)
			}
		})
	}
	doc, err := s.Get(ctx, "doc")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if doc.Rev != rev2 || !sameJSON(t, doc.Body, `{"v":2}`) {
		t.Errorf("after conflicts Get = %+v, want rev %q body {\"v\":2}", doc, rev2)
	}
	if _, err := s.Get(ctx, "nodoc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a conflicting Put created the document: Get error = %v", err)
	}
}

func testCreateTwice(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rev := mustPut(t, s, "doc", "", `{"v":1}`)
	_, err := s.Put(ctx, store.Doc{ID: "doc", Body: json.RawMessage(`{"v":2}`)})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create error = %v, want ErrConflict", err)
	}
	doc, err := s.Get(ctx, "doc")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if doc.Rev != rev || !sameJSON(t, doc.Body, `{"v":1}`) {
		t.Errorf("second create changed the document: %+v", doc)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	if err := s.Delete(ctx, "missing", "1-0123456789abcdef0123456789abcdef"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete of a missing document error = %v, want ErrNotFound", err)
	}
	rev1 := mustPut(t, s, "doc", "", `{"v":1}`)
	rev2 := mustPut(t, s, "doc", rev1, `{"v":2}`)
	for _, rev := range []string{rev1, "", "garbage", "2-0123456789abcdef0123456789abcdef"} {
		if err := s.Delete(ctx, "doc", rev); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Delete with revision %q error = %v, want ErrConflict", rev, err)
		}
	}
	if err := s.Delete(ctx, "doc", rev2); err != nil {
		t.Fatalf("Delete with current revision: %v", err)
	}
	if _, err := s.Get(ctx, "doc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "doc", rev2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete error = %v, want ErrNotFound", err)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "doc", Rev: rev2, Body: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Put with the deleted revision error = %v, want ErrConflict", err)
	}
	rev3 := mustPut(t, s, "doc", "", `{"v":"again"}`)
	doc, err := s.Get(ctx, "doc")
	if err != nil {
		t.Fatalf("Get after re-create: %v", err)
	}
	if doc.Rev != rev3 || !sameJSON(t, doc.Body, `{"v":"again"}`) {
		t.Errorf("Get after re-create = %+v, want rev %q", doc, rev3)
	}
	docs, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(docs) != 1 || docs[0].ID != "doc" {
		t.Errorf("List after delete and re-create = %v, want [doc]", ids(docs))
	}
}

func testInvalid(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	tests := []struct {
		name string
		doc  store.Doc
	}{
		{"empty id", store.Doc{Body: json.RawMessage(`{}`)}},
		{"reserved id", store.Doc{ID: "_design/x", Body: json.RawMessage(`{}`)}},
		{"array body", store.Doc{ID: "a", Body: json.RawMessage(`[1,2]`)}},
		{"string body", store.Doc{ID: "a", Body: json.RawMessage(`"x"`)}},
		{"broken body", store.Doc{ID: "a", Body: json.RawMessage(`{"x":`)}},
		{"reserved key", store.Doc{ID: "a", Body: json.RawMessage(`{"_attachments":{}}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Put(ctx, tt.doc); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Put error = %v, want ErrInvalid", err)
			}
		})
	}
	if docs, err := s.List(ctx, ""); err != nil || len(docs) != 0 {
		t.Errorf("invalid Puts left documents behind: %v, %v", ids(docs), err)
	}
}

func ids(docs []store.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

// listIDs are chosen so that prefixes share characters, and ids hold '/',
// ':' and characters outside ASCII, including ones outside the BMP.
var listIDs = []string{
	"a", "a/1", "a/10", "a/2", "a:1", "a:b:c", "ab", "abc", "a/é", "a/日本", "a/日本/x",
	"a/😀", "a/ü/x", "B", "b", "b/a", "entity:/compute/1", "entity:/compute/10",
	"entity:/compute/2", "entity:/network/1", "category:http://x/y#z", "zz",
}

func testList(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	revs := map[string]string{}
	for i, id := range listIDs {
		revs[id] = mustPut(t, s, id, "", fmt.Sprintf(`{"i":%d}`, i))
	}
	index := map[string]int{}
	for i, id := range listIDs {
		index[id] = i
	}
	prefixes := []string{"", "a", "a/", "a/1", "a:", "ab", "a/日", "a/日本/", "b", "B", "entity:/compute/", "entity:/", "category:http://x/", "zz", "zzz", "c", "é"}
	for _, prefix := range prefixes {
		t.Run(fmt.Sprintf("prefix %q", prefix), func(t *testing.T) {
			var want []string
			for _, id := range listIDs {
				if strings.HasPrefix(id, prefix) {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			docs, err := s.List(ctx, prefix)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got := ids(docs); !slices.Equal(got, want) {
				t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
			}
			for _, d := range docs {
				if d.Rev != revs[d.ID] {
					t.Errorf("List(%q): %q has rev %q, want %q", prefix, d.ID, d.Rev, revs[d.ID])
				}
				if !sameJSON(t, d.Body, fmt.Sprintf(`{"i":%d}`, index[d.ID])) {
					t.Errorf("List(%q): %q has body %s", prefix, d.ID, d.Body)
				}
			}
		})
	}
}

// findDocs exercise nested fields, numbers, arrays and keys with dots.
var findDocs = map[string]string{
	"e/1": `{"kind":"compute","n":2,"attributes":{"occi.core.id":"one","cmbs":{"member":{"local":true,"port":5555}}},"mixins":["m1","m2"],"links":[{"target":"e/2","weight":1.5},{"target":"e/3","weight":1}]}`,
	"e/2": `{"kind":"compute","n":2.5,"attributes":{"occi.core.id":"two","cmbs":{"member":{"local":false}}},"mixins":["m2"],"links":[],"nulls":[null,1]}`,
	"e/3": `{"kind":"network","n":3,"attributes":{"occi.core.id":"three"},"mixins":[{"scheme":"s#","term":"t"},["nested"],null,7],"flag":null}`,
	"e/4": `{"kind":"network","attributes":{"occi":{"core":{"id":"four"}}},"mixins":"m1","odd":{"a\\b":1,"$x":[2],"":"empty"}}`,
	"f/1": `{"kind":"compute","n":2,"mixins":["m1"],"attributes":{"occi.core.id":"one"}}`,
}

func testFind(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	for id, body := range findDocs {
		mustPut(t, s, id, "", body)
	}
	f := func(path ...string) []string { return path }
	tests := []struct {
		name string
		q    store.Query
		want []string
	}{
		{"prefix only", store.Query{Prefix: "e/"}, []string{"e/1", "e/2", "e/3", "e/4"}},
		{"everything", store.Query{}, []string{"e/1", "e/2", "e/3", "e/4", "f/1"}},
		{"eq string", store.Query{Prefix: "e/", Where: []store.Cond{{Field: f("kind"), Op: store.Eq, Value: "compute"}}}, []string{"e/1", "e/2"}},
		{"eq across prefixes", store.Query{Where: []store.Cond{{Field: f("kind"), Op: store.Eq, Value: "compute"}}}, []string{"e/1", "e/2", "f/1"}},
		{"eq int", store.Query{Prefix: "e/", Where: []store.Cond{{Field: f("n"), Op: store.Eq, Value: 2}}}, []string{"e/1"}},
		{"eq float equal to int", store.Query{Where: []store.Cond{{Field: f("n"), Op: store.Eq, Value: 2.0}}}, []string{"e/1", "f/1"}},
		{"eq fraction", store.Query{Where: []store.Cond{{Field: f("n"), Op: store.Eq, Value: 2.5}}}, []string{"e/2"}},
		{"eq nested bool", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs", "member", "local"), Op: store.Eq, Value: true}}}, []string{"e/1"}},
		{"eq nested false", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs", "member", "local"), Op: store.Eq, Value: false}}}, []string{"e/2"}},
		{"eq key with dots", store.Query{Where: []store.Cond{{Field: f("attributes", "occi.core.id"), Op: store.Eq, Value: "one"}}}, []string{"e/1", "f/1"}},
		{"eq nested path is not a dotted key", store.Query{Where: []store.Cond{{Field: f("attributes", "occi", "core", "id"), Op: store.Eq, Value: "four"}}}, []string{"e/4"}},
		{"dotted key does not walk objects", store.Query{Where: []store.Cond{{Field: f("attributes", "occi.core.id"), Op: store.Eq, Value: "four"}}}, nil},
		{"eq null", store.Query{Where: []store.Cond{{Field: f("flag"), Op: store.Eq, Value: nil}}}, []string{"e/3"}},
		{"eq object any key order", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs", "member"), Op: store.Eq, Value: json.RawMessage(`{"port":5555,"local":true}`)}}}, []string{"e/1"}},
		{"eq object needs all keys", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs", "member"), Op: store.Eq, Value: map[string]any{"local": true}}}}, nil},
		{"eq array", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Eq, Value: []string{"m2"}}}}, []string{"e/2"}},
		{"eq empty array", store.Query{Where: []store.Cond{{Field: f("links"), Op: store.Eq, Value: []any{}}}}, []string{"e/2"}},
		{"eq array of objects", store.Query{Where: []store.Cond{{Field: f("links"), Op: store.Eq, Value: json.RawMessage(`[{"weight":1.5,"target":"e/2"},{"target":"e/3","weight":1.0}]`)}}}, []string{"e/1"}},
		{"contains string", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: "m1"}}}, []string{"e/1", "f/1"}},
		{"contains in prefix", store.Query{Prefix: "e/", Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: "m2"}}}, []string{"e/1", "e/2"}},
		{"contains number", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: 7.0}}}, []string{"e/3"}},
		{"contains null", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: nil}}}, []string{"e/3"}},
		{"contains object", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: map[string]string{"term": "t", "scheme": "s#"}}}}, []string{"e/3"}},
		{"contains array", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: []string{"nested"}}}}, []string{"e/3"}},
		{"contains object among objects", store.Query{Where: []store.Cond{{Field: f("links"), Op: store.Contains, Value: map[string]any{"target": "e/3", "weight": 1}}}}, []string{"e/1"}},
		{"contains partial object", store.Query{Where: []store.Cond{{Field: f("links"), Op: store.Contains, Value: map[string]any{"target": "e/3"}}}}, nil},
		{"eq array holding null", store.Query{Where: []store.Cond{{Field: f("nulls"), Op: store.Eq, Value: []any{nil, 1}}}}, []string{"e/2"}},
		{"contains after a null", store.Query{Where: []store.Cond{{Field: f("nulls"), Op: store.Contains, Value: 1}}}, []string{"e/2"}},
		{"contains array holding null", store.Query{Where: []store.Cond{{Field: f("nulls"), Op: store.Contains, Value: []any{nil}}}}, nil},
		{"key with a backslash", store.Query{Where: []store.Cond{{Field: f("odd", `a\b`), Op: store.Eq, Value: 1}}}, []string{"e/4"}},
		{"key starting with a dollar", store.Query{Where: []store.Cond{{Field: f("odd", "$x"), Op: store.Contains, Value: 2}}}, []string{"e/4"}},
		{"empty key", store.Query{Where: []store.Cond{{Field: f("odd", ""), Op: store.Eq, Value: "empty"}}}, []string{"e/4"}},
		{"object with odd keys", store.Query{Where: []store.Cond{{Field: f("odd"), Op: store.Eq, Value: map[string]any{`a\b`: 1, "$x": []int{2}, "": "empty"}}}}, []string{"e/4"}},
		{"contains on a scalar field", store.Query{Where: []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: "m1"}}, Prefix: "e/4"}, nil},
		{"exists", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs"), Op: store.Exists}}}, []string{"e/1", "e/2"}},
		{"exists deep", store.Query{Where: []store.Cond{{Field: f("attributes", "cmbs", "member", "port"), Op: store.Exists}}}, []string{"e/1"}},
		{"exists null field", store.Query{Where: []store.Cond{{Field: f("flag"), Op: store.Exists}}}, []string{"e/3"}},
		{"exists dotted key", store.Query{Where: []store.Cond{{Field: f("attributes", "occi.core.id"), Op: store.Exists}}}, []string{"e/1", "e/2", "e/3", "f/1"}},
		{"all conditions", store.Query{Prefix: "e/", Where: []store.Cond{
			{Field: f("kind"), Op: store.Eq, Value: "compute"},
			{Field: f("mixins"), Op: store.Contains, Value: "m1"},
			{Field: f("attributes", "occi.core.id"), Op: store.Exists},
		}}, []string{"e/1"}},
		{"two conditions on one field", store.Query{Where: []store.Cond{
			{Field: f("mixins"), Op: store.Contains, Value: "m1"},
			{Field: f("mixins"), Op: store.Contains, Value: "m2"},
		}}, []string{"e/1"}},
		{"no match", store.Query{Where: []store.Cond{{Field: f("kind"), Op: store.Eq, Value: "storage"}}}, nil},
		{"prefix without documents", store.Query{Prefix: "g/", Where: []store.Cond{{Field: f("kind"), Op: store.Exists}}}, nil},
	}
	run := func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				docs, err := store.Find(ctx, s, tt.q)
				if err != nil {
					t.Fatalf("Find: %v", err)
				}
				if got := ids(docs); !slices.Equal(got, tt.want) {
					t.Fatalf("Find = %q, want %q", got, tt.want)
				}
				for _, d := range docs {
					if !sameJSON(t, d.Body, findDocs[d.ID]) {
						t.Errorf("%q has body %s, want %s", d.ID, d.Body, findDocs[d.ID])
					}
					if d.Rev == "" {
						t.Errorf("%q has no revision", d.ID)
					}
				}
			})
		}
	}
	t.Run("unindexed", run)
	for _, idx := range []store.Index{
		{Name: "kind", Fields: [][]string{{"kind"}}},
		{Name: "dotted", Fields: [][]string{{"attributes", "occi.core.id"}, {"n"}}},
		{Name: "member", Fields: [][]string{{"attributes", "cmbs", "member", "local"}}},
	} {
		if err := store.EnsureIndex(ctx, s, idx); err != nil {
			t.Fatalf("EnsureIndex(%q): %v", idx.Name, err)
		}
		if err := store.EnsureIndex(ctx, s, idx); err != nil {
			t.Fatalf("EnsureIndex(%q) a second time: %v", idx.Name, err)
		}
	}
	t.Run("indexed", run)
	if docs, err := s.List(ctx, ""); err != nil || len(docs) != len(findDocs) {
		t.Errorf("indexes showed up as documents: List = %q, %v", ids(docs), err)
	}
}

// testFindMany checks that results larger than a server's page are complete.
func testFindMany(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const n = 120
	var want []string
	for i := range n {
		id := fmt.Sprintf("m/%03d", i)
		mustPut(t, s, id, "", fmt.Sprintf(`{"i":%d,"even":%t}`, i, i%2 == 0))
		if i%2 == 0 {
			want = append(want, id)
		}
	}
	mustPut(t, s, "n/0", "", `{"even":true}`)
	docs, err := store.Find(ctx, s, store.Query{Prefix: "m/", Where: []store.Cond{{Field: []string{"even"}, Op: store.Eq, Value: true}}})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if got := ids(docs); !slices.Equal(got, want) {
		t.Fatalf("Find returned %d documents %q, want %d", len(got), got, len(want))
	}
	docs, err = store.Find(ctx, s, store.Query{Prefix: "m/"})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if len(docs) != n {
		t.Fatalf("Find by prefix returned %d documents, want %d", len(docs), n)
	}
	list, err := s.List(ctx, "m/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != n {
		t.Fatalf("List returned %d documents, want %d", len(list), n)
	}
}

// watcher collects changes from a Watch channel for a test.
type watcher struct {
	t  *testing.T
	ch <-chan store.Change
}

// next returns the next change, failing the test at the deadline.
func (w watcher) next() store.Change {
	w.t.Helper()
	select {
	case c, ok := <-w.ch:
		if !ok {
			w.t.Fatal("Watch channel closed early")
		}
		return c
	case <-time.After(waitTimeout):
		w.t.Fatal("no change arrived before the deadline")
		return store.Change{}
	}
}

// closed waits until the channel is closed, discarding changes.
func (w watcher) closed() {
	w.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-w.ch:
			if !ok {
				return
			}
		case <-deadline:
			w.t.Fatal("Watch channel still open at the deadline")
		}
	}
}

func testWatch(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "before", "", `{}`)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	w := watcher{t, ch}
	// The write made before Watch must not show up, so the first change is
	// the one made after.
	rev1 := mustPut(t, s, "doc", "", `{"v":1}`)
	if c := w.next(); !sameChange(c, store.Change{ID: "doc", Rev: rev1}) {
		t.Errorf("create change = %+v, want {doc %s false}", c, rev1)
	}
	rev2 := mustPut(t, s, "doc", rev1, `{"v":2}`)
	if c := w.next(); !sameChange(c, store.Change{ID: "doc", Rev: rev2}) {
		t.Errorf("update change = %+v, want {doc %s false}", c, rev2)
	}
	if err := s.Delete(ctx, "doc", rev2); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	c := w.next()
	if c.ID != "doc" || !c.Deleted || c.Rev == "" || c.Rev == rev2 {
		t.Errorf("delete change = %+v, want doc deleted with a new revision", c)
	}
	cancel()
	w.closed()
}

// sameChange compares what every backend reports of a change, leaving out
// its Seq, which only resumers give.
func sameChange(a, b store.Change) bool {
	return a.ID == b.ID && a.Rev == b.Rev && a.Deleted == b.Deleted
}

// testWatchSince checks store.Resumer on the backends that implement it:
// a feed read again from a change's Seq reports what came after that
// change, and only that; a feed from "" is a Watch. Backends without it
// fail store.WatchSince with errors.ErrUnsupported (wrappers, which
// implement it whatever they wrap, included).
func testWatchSince(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "before", "", `{}`)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := store.WatchSince(wctx, s, "")
	if _, ok := s.(store.Resumer); !ok || errors.Is(err, errors.ErrUnsupported) {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("WatchSince on a backend that cannot resume = %v, want errors.ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("WatchSince: %v", err)
	}
	w := watcher{t, ch}
	var seqs []string
	var revs []string
	for i := range 4 {
		revs = append(revs, mustPut(t, s, fmt.Sprintf("s/%d", i), "", `{}`))
		c := w.next()
		if c.ID != fmt.Sprintf("s/%d", i) || c.Seq == "" {
			t.Fatalf("change %d = %+v, want s/%d with a Seq", i, c, i)
		}
		seqs = append(seqs, c.Seq)
	}
	cancel()
	w.closed()

	// Written while no one watched: an update of s/3 and a delete of s/2.
	rev3 := mustPut(t, s, "s/3", revs[3], `{"v":2}`)
	if err := s.Delete(ctx, "s/2", revs[2]); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	ch, err = store.WatchSince(rctx, s, seqs[1])
	if err != nil {
		t.Fatalf("WatchSince(%q): %v", seqs[1], err)
	}
	w = watcher{t, ch}
	// After s/1: s/2 (now deleted) and s/3 (at its latest revision), each
	// once, in the order of their last changes.
	got := []store.Change{w.next(), w.next()}
	if got[0].ID != "s/3" || got[0].Rev != rev3 || got[0].Deleted || got[1].ID != "s/2" || !got[1].Deleted {
		t.Errorf("resumed after s/1: %+v, want s/3 at %s then s/2 deleted", got, rev3)
	}
	rev0 := mustPut(t, s, "s/0", revs[0], `{"v":2}`)
	if c := w.next(); !sameChange(c, store.Change{ID: "s/0", Rev: rev0}) {
		t.Errorf("live change after the replay = %+v, want s/0 at %s", c, rev0)
	}
	rcancel()
	w.closed()
}

func testWatchMany(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const watchers, docs = 3, 20
	var ws []watcher
	for range watchers {
		ch, err := s.Watch(ctx)
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		ws = append(ws, watcher{t, ch})
	}
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range docs {
		wg.Go(func() {
			id := fmt.Sprintf("w/%d", i)
			rev, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(`{}`)})
			if err != nil {
				t.Errorf("Put(%q): %v", id, err)
				return
			}
			mu.Lock()
			want[id] = rev
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, w := range ws {
		got := map[string]string{}
		for len(got) < docs {
			c := w.next()
			if _, dup := got[c.ID]; dup {
				t.Errorf("watcher %d: %q reported twice", i, c.ID)
			}
			got[c.ID] = c.Rev
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("watcher %d saw %v, want %v", i, got, want)
		}
	}
}

// testWatchOrder checks that each document's changes arrive in the order
// they were made, while several writers commit at once. A backend may skip
// intermediate revisions (CouchDB's feed reports only a document's latest)
// but must never go back.
func testWatchOrder(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers, updates = 4, 15
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	final := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("o/%d", w)
			rev := ""
			for i := range updates {
				var err error
				rev, err = s.Put(ctx, store.Doc{ID: id, Rev: rev, Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
				if err != nil {
					t.Errorf("Put(%q): %v", id, err)
					return
				}
			}
			mu.Lock()
			final[id] = rev
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	w := watcher{t, ch}
	last := map[string]int{}
	done := 0
	for done < writers {
		c := w.next()
		gen := revGen(t, c.Rev)
		if gen <= last[c.ID] {
			t.Fatalf("%q went from generation %d back to %d", c.ID, last[c.ID], gen)
		}
		last[c.ID] = gen
		if c.Rev == final[c.ID] {
			done++
		}
	}
}

// testConcurrentUpdate races writers on the same revision: exactly one must
// win each round and the others must see ErrConflict.
func testConcurrentUpdate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers, rounds = 8, 5
	rev := mustPut(t, s, "race", "", `{"round":0}`)
	for round := 1; round <= rounds; round++ {
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			winners   []string
			conflicts int
		)
		for w := range writers {
			wg.Go(func() {
				body := fmt.Sprintf(`{"round":%d,"writer":%d}`, round, w)
				newRev, err := s.Put(ctx, store.Doc{ID: "race", Rev: rev, Body: json.RawMessage(body)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, newRev)
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Errorf("Put: %v", err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d winners and %d conflicts, want 1 and %d", round, len(winners), conflicts, writers-1)
		}
		doc, err := s.Get(ctx, "race")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if doc.Rev != winners[0] || revGen(t, doc.Rev) != round+1 {
			t.Fatalf("round %d: stored rev %q, winner %q", round, doc.Rev, winners[0])
		}
		rev = doc.Rev
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
	)
	for w := range writers {
		wg.Go(func() {
			_, err := s.Put(ctx, store.Doc{ID: "new", Body: json.RawMessage(fmt.Sprintf(`{"writer":%d}`, w))})
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, w)
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d creators won, want 1", len(winners))
	}
	doc, err := s.Get(ctx, "new")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameJSON(t, doc.Body, fmt.Sprintf(`{"writer":%d}`, winners[0])) {
		t.Errorf("stored body %s is not the winner's (%d)", doc.Body, winners[0])
	}
}

// testConcurrentDistinct has writers on different documents, which must all
// succeed.
func testConcurrentDistinct(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("d/%d/%d", w, i)
				rev, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(`{"v":1}`)})
				if err != nil {
					t.Errorf("Put(%q): %v", id, err)
					return
				}
				if _, err := s.Put(ctx, store.Doc{ID: id, Rev: rev, Body: json.RawMessage(`{"v":2}`)}); err != nil {
					t.Errorf("update %q: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	docs, err := s.List(ctx, "d/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(docs) != writers*each {
		t.Fatalf("List returned %d documents, want %d", len(docs), writers*each)
	}
	for _, d := range docs {
		if !sameJSON(t, d.Body, `{"v":2}`) || revGen(t, d.Rev) != 2 {
			t.Errorf("%q = %s at %q, want {\"v\":2} at generation 2", d.ID, d.Body, d.Rev)
		}
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rev := mustPut(t, s, "doc", "", `{}`)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	watcher{t, ch}.closed()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "doc"); return err }},
		{"Put", func() error {
			_, err := s.Put(ctx, store.Doc{ID: "doc", Rev: rev, Body: json.RawMessage(`{}`)})
			return err
		}},
		{"Delete", func() error { return s.Delete(ctx, "doc", rev) }},
		{"List", func() error { _, err := s.List(ctx, ""); return err }},
		{"Find", func() error { _, err := store.Find(ctx, s, store.Query{}); return err }},
		{"EnsureIndex", func() error {
			if _, ok := s.(store.Indexer); !ok {
				return store.ErrClosed
			}
			return store.EnsureIndex(ctx, s, store.Index{Name: "x", Fields: [][]string{{"x"}}})
		}},
		{"Watch", func() error { _, err := s.Watch(ctx); return err }},
		{"Close", s.Close},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close error = %v, want ErrClosed", c.name, err)
		}
	}
}
