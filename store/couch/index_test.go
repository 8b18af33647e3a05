package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// indexedDocs is how many documents the index benchmarks search.
const indexedDocs = 3000

// fillIndexed writes n documents shaped like OCCI entities: one in ten is a
// link with a source, the others are resources of one of three kinds. It
// writes in bulk, which the store does not offer, to keep setup short.
func fillIndexed(tb testing.TB, s *Store, n int) {
	tb.Helper()
	ctx := context.Background()
	const batch = 500
	for start := 0; start < n; start += batch {
		var docs []any
		for i := start; i < min(start+batch, n); i++ {
			docs = append(docs, indexedDoc(i))
		}
		results, err := s.db.BulkDocs(ctx, docs)
		if err != nil {
			tb.Fatalf("BulkDocs: %v", err)
		}
		for _, r := range results {
			if r.Error != nil {
				tb.Fatalf("BulkDocs %q: %v", r.ID, r.Error)
			}
		}
	}
}

// indexedDoc is document i of fillIndexed, with its _id.
func indexedDoc(i int) map[string]any {
	if i%10 == 0 {
		return map[string]any{
			"_id":    fmt.Sprintf("/link/l%05d", i),
			"doc":    "entity",
			"kind":   "link",
			"source": fmt.Sprintf("/compute/r%05d", i+1),
			"target": fmt.Sprintf("/compute/r%05d", i+2),
		}
	}
	return map[string]any{
		"_id":  fmt.Sprintf("/compute/r%05d", i),
		"doc":  "entity",
		"kind": []string{"compute", "storage", "network"}[i%3],
	}
}

// BenchmarkFindIndexed finds one link by its indexed source among
// indexedDocs documents, as the OCCI server does for every resource GET,
// with and without an id prefix.
func BenchmarkFindIndexed(b *testing.B) {
	s := openTest(b)
	defer cmbstest.NoError(b, s.Close)
	ctx := context.Background()
	fillIndexed(b, s, indexedDocs)
	for _, idx := range []store.Index{
		{Name: "bench-source", Fields: [][]string{{"source"}}},
		{Name: "bench-kind", Fields: [][]string{{"kind"}}},
		{Name: "bench-doc-location", Fields: [][]string{{"doc"}, {"location"}}},
	} {
		if err := s.EnsureIndex(ctx, idx); err != nil {
			b.Fatal(err)
		}
	}
	// The first query on an index builds it; the benchmarks time lookups.
	if _, err := s.Find(ctx, store.Query{Where: []store.Cond{{Field: []string{"source"}, Op: store.Eq, Value: "none"}}}); err != nil {
		b.Fatal(err)
	}
	source := func(i int) store.Cond {
		return store.Cond{Field: []string{"source"}, Op: store.Eq, Value: fmt.Sprintf("/compute/r%05d", (i*10)%indexedDocs+1)}
	}
	entity := store.Cond{Field: []string{"doc"}, Op: store.Eq, Value: "entity"}
	tests := []struct {
		name  string
		query func(i int) store.Query
	}{
		{"eq", func(i int) store.Query { return store.Query{Where: []store.Cond{source(i)}} }},
		{"eq+prefix", func(i int) store.Query { return store.Query{Prefix: "/", Where: []store.Cond{source(i)}} }},
		{"links-of", func(i int) store.Query { return store.Query{Prefix: "/", Where: []store.Cond{entity, source(i)}} }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				docs, err := s.Find(ctx, tt.query(i))
				if err != nil {
					b.Fatal(err)
				}
				if len(docs) != 1 {
					b.Fatalf("Find returned %d documents, want 1", len(docs))
				}
				i++
			}
		})
	}
}

// hintDocs exercise indexed fields that are missing, null, numbers written
// two ways, arrays, dotted keys and ids on both sides of a prefix.
var hintDocs = map[string]string{
	"/compute/a":  `{"doc":"entity","kind":"compute","location":"/compute/a","n":2,"tags":["x","y"],"attributes":{"occi.core.id":"a"}}`,
	"/compute/b":  `{"doc":"entity","kind":"compute","n":2.0,"flag":null,"tags":["x"],"attributes":{"occi.core.id":"b"}}`,
	"/compute/c":  `{"doc":"entity","kind":"compute","n":2.5,"flag":false,"attributes":{"occi":{"core":{"id":"a"}}}}`,
	"/storage/a":  `{"doc":"entity","kind":"storage","location":"/storage/a","n":2,"tags":["x","y"],"source":"/compute/a"}`,
	"/link/l1":    `{"doc":"entity","kind":"link","source":"/compute/a","target":"/compute/b"}`,
	"/link/l2":    `{"doc":"entity","kind":"link","source":"/compute/b","target":"/compute/a"}`,
	"/link/l3":    `{"doc":"entity","kind":["link"],"source":"/compute/a"}`,
	"/-/compute":  `{"doc":"category","location":"/compute/","kind":"compute"}`,
	"/-/storage":  `{"doc":"category","location":"/storage/"}`,
	"/no-fields":  `{"doc":"entity"}`,
	"other/a":     `{"doc":"entity","kind":"compute","source":"/compute/a","n":2}`,
	"/compute/ab": `{"doc":"entity","kind":"compute","source":"/compute/a","tags":{"x":true},"flag":null}`,
}

// hintIndexes are the indexes TestHintedFind creates.
var hintIndexes = []store.Index{
	{Name: "h-kind", Fields: [][]string{{"kind"}}},
	{Name: "h-source", Fields: [][]string{{"source"}}},
	{Name: "h-doc-location", Fields: [][]string{{"doc"}, {"location"}}},
	{Name: "h-n", Fields: [][]string{{"n"}}},
	{Name: "h-flag", Fields: [][]string{{"flag"}}},
	{Name: "h-tags", Fields: [][]string{{"tags"}}},
	{Name: "h-id", Fields: [][]string{{"attributes", "occi.core.id"}}},
}

func putAll(t *testing.T, s *Store, docs map[string]string) {
	t.Helper()
	for id, body := range docs {
		if _, err := s.Put(context.Background(), store.Doc{ID: id, Body: json.RawMessage(body)}); err != nil {
			t.Fatalf("Put %q: %v", id, err)
		}
	}
}

// scan is the reference answer to q: store.Match over the documents under
// the prefix.
func scan(t *testing.T, s *Store, q store.Query) []string {
	t.Helper()
	docs, err := s.List(context.Background(), q.Prefix)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, d := range docs {
		ok, err := store.Match(d.Body, q.Where)
		if err != nil {
			t.Fatalf("Match %q: %v", d.ID, err)
		}
		if ok {
			out = append(out, d.ID)
		}
	}
	return out
}

func docIDs(docs []store.Doc) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.ID)
	}
	return out
}

// explainIndex asks the server which index it plans q on.
func explainIndex(t *testing.T, dbURL string, q findQuery) string {
	t.Helper()
	body, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(dbURL+"/_explain", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("_explain: %v", err)
	}
	defer cmbstest.NoError(t, resp.Body.Close)
	var plan struct {
		Index struct {
			Name string `json:"name"`
		} `json:"index"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&plan); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("_explain %s: %s, %v", body, resp.Status, err)
	}
	return plan.Index.Name
}

// TestHintedFind checks that queries naming an index return exactly what
// unhinted queries and a scan return, that the index named is the expected
// one and that the server plans on it.
func TestHintedFind(t *testing.T) {
	ctx := context.Background()
	dbURL := couchtest.NewDBURL(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	putAll(t, s, hintDocs)
	for _, idx := range hintIndexes {
		if err := s.EnsureIndex(ctx, idx); err != nil {
			t.Fatalf("EnsureIndex %q: %v", idx.Name, err)
		}
	}
	f := func(path ...string) []string { return path }
	eq := func(v any, path ...string) store.Cond { return store.Cond{Field: path, Op: store.Eq, Value: v} }
	entity := eq("entity", "doc")
	tests := []struct {
		name  string
		q     store.Query
		index string // the index Find names, "" for none
		want  []string
	}{
		{"eq", store.Query{Where: []store.Cond{eq("/compute/a", "source")}}, "h-source",
			[]string{"/compute/ab", "/link/l1", "/link/l3", "/storage/a", "other/a"}},
		{"eq under a prefix", store.Query{Prefix: "/", Where: []store.Cond{eq("/compute/a", "source")}}, "h-source",
			[]string{"/compute/ab", "/link/l1", "/link/l3", "/storage/a"}},
		{"links of a resource", store.Query{Prefix: "/", Where: []store.Cond{entity, eq("/compute/a", "source")}}, "h-source",
			[]string{"/compute/ab", "/link/l1", "/link/l3", "/storage/a"}},
		{"narrow prefix", store.Query{Prefix: "/link/", Where: []store.Cond{eq("/compute/a", "source")}}, "h-source",
			[]string{"/link/l1", "/link/l3"}},
		{"prefix that is an id", store.Query{Prefix: "/compute/a", Where: []store.Cond{eq("compute", "kind")}}, "h-kind",
			[]string{"/compute/a", "/compute/ab"}},
		{"string does not equal an array", store.Query{Where: []store.Cond{eq("link", "kind")}}, "h-kind",
			[]string{"/link/l1", "/link/l2"}},
		{"array", store.Query{Where: []store.Cond{eq([]string{"link"}, "kind")}}, "h-kind", []string{"/link/l3"}},
		{"first condition wins a tie", store.Query{Where: []store.Cond{eq("/compute/a", "source"), eq("link", "kind")}}, "h-source",
			[]string{"/link/l1"}},
		{"tie the other way", store.Query{Where: []store.Cond{eq("link", "kind"), eq("/compute/a", "source")}}, "h-kind",
			[]string{"/link/l1"}},
		{"composite", store.Query{Where: []store.Cond{eq("category", "doc"), eq("/compute/", "location")}}, "h-doc-location",
			[]string{"/-/compute"}},
		{"composite beats single", store.Query{Where: []store.Cond{eq("entity", "doc"), eq("compute", "kind"), eq("/compute/a", "location")}}, "h-doc-location",
			[]string{"/compute/a"}},
		{"composite needs every field", store.Query{Prefix: "/-/", Where: []store.Cond{eq("category", "doc")}}, "",
			[]string{"/-/compute", "/-/storage"}},
		{"number written two ways", store.Query{Where: []store.Cond{eq(2.0, "n")}}, "h-n",
			[]string{"/compute/a", "/compute/b", "/storage/a", "other/a"}},
		{"int", store.Query{Prefix: "/compute/", Where: []store.Cond{eq(2, "n")}}, "h-n", []string{"/compute/a", "/compute/b"}},
		{"null is not missing", store.Query{Where: []store.Cond{eq(nil, "flag")}}, "h-flag", []string{"/compute/ab", "/compute/b"}},
		{"false", store.Query{Where: []store.Cond{eq(false, "flag")}}, "h-flag", []string{"/compute/c"}},
		{"array value", store.Query{Where: []store.Cond{eq([]string{"x", "y"}, "tags")}}, "h-tags", []string{"/compute/a", "/storage/a"}},
		{"dotted key", store.Query{Where: []store.Cond{eq("a", "attributes", "occi.core.id")}}, "h-id", []string{"/compute/a"}},
		{"object value is not hinted", store.Query{Where: []store.Cond{eq(map[string]any{"x": true}, "tags")}}, "", []string{"/compute/ab"}},
		{"contains is not hinted", store.Query{Where: []store.Cond{{Field: f("tags"), Op: store.Contains, Value: "y"}}}, "",
			[]string{"/compute/a", "/storage/a"}},
		{"exists is not hinted", store.Query{Prefix: "/compute/", Where: []store.Cond{{Field: f("flag"), Op: store.Exists}}}, "",
			[]string{"/compute/ab", "/compute/b", "/compute/c"}},
		{"no match", store.Query{Where: []store.Cond{eq("/nowhere", "source")}}, "h-source", nil},
		{"no match under the prefix", store.Query{Prefix: "/storage/", Where: []store.Cond{eq("/compute/b", "target")}}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scan(t, s, tt.q); !slices.Equal(got, tt.want) {
				t.Fatalf("bad test: scan = %q, want %q", got, tt.want)
			}
			idx, hinted := chooseIndex(s.knownIndexes(), tt.q.Where)
			if hinted != (tt.index != "") || idx.name != tt.index {
				t.Fatalf("chooseIndex = %q, %v; want %q", idx.name, hinted, tt.index)
			}
			docs, err := s.Find(ctx, tt.q)
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if got := docIDs(docs); !slices.Equal(got, tt.want) {
				t.Errorf("Find = %q, want %q", got, tt.want)
			}
			sel, err := s.dialect.buildSelector(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := s.findWith(ctx, tt.q, sel, mangoIndex{}, false)
			if err != nil {
				t.Fatalf("unhinted find: %v", err)
			}
			if got := docIDs(plain); !slices.Equal(got, tt.want) {
				t.Errorf("unhinted find = %q, want %q", got, tt.want)
			}
			if hinted {
				plan := explainIndex(t, dbURL, findQuery{Selector: sel, Limit: 10, UseIndex: idx.useIndex()})
				if plan != tt.index {
					t.Errorf("server plans on %q, want %q", plan, tt.index)
				}
			}
		})
	}
}

// TestHintedFindPages checks hinted queries whose results span pages.
func TestHintedFindPages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithPageSize(7))
	defer cmbstest.NoError(t, s.Close)
	fillIndexed(t, s, 300)
	if err := s.EnsureIndex(ctx, store.Index{Name: "kind", Fields: [][]string{{"kind"}}}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "/", "/compute/", "/compute/r001"} {
		q := store.Query{Prefix: prefix, Where: []store.Cond{{Field: []string{"kind"}, Op: store.Eq, Value: "storage"}}}
		if _, hinted := chooseIndex(s.knownIndexes(), q.Where); !hinted {
			t.Fatal("query not hinted")
		}
		docs, err := s.Find(ctx, q)
		if err != nil {
			t.Fatalf("Find: %v", err)
		}
		if got, want := docIDs(docs), scan(t, s, q); !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("prefix %q: Find returned %d documents, want %d", prefix, len(got), len(want))
		}
	}
}

// TestIndexesKnownAtOpen checks that a store opened on a database learns
// the indexes made before it, and keeps finding when one disappears
// behind its back.
func TestIndexesKnownAtOpen(t *testing.T) {
	ctx := context.Background()
	dbURL := couchtest.NewDBURL(t)
	first, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cmbstest.NoError(t, first.Close)
	putAll(t, first, hintDocs)
	if err := first.EnsureIndex(ctx, store.Index{Name: "h-source", Fields: [][]string{{"source"}}}); err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer cmbstest.NoError(t, second.Close)
	q := store.Query{Prefix: "/", Where: []store.Cond{{Field: []string{"source"}, Op: store.Eq, Value: "/compute/a"}}}
	idx, hinted := chooseIndex(second.knownIndexes(), q.Where)
	if !hinted || idx.name != "h-source" {
		t.Fatalf("second store chooses %q, %v; want h-source", idx.name, hinted)
	}
	want := scan(t, second, q)

	// PouchDB Server fails DELETE /db/_index, so the index goes with its
	// design document.
	ddoc := rawGet(t, dbURL, idx.ddoc)
	rev, _ := ddoc["_rev"].(string)
	req, err := http.NewRequest(http.MethodDelete, dbURL+"/"+idx.ddoc+"?rev="+url.QueryEscape(rev), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delete index: %v", err)
	}
	cmbstest.NoError(t, resp.Body.Close)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete index: %s", resp.Status)
	}
	docs, err := second.Find(ctx, q)
	if err != nil {
		t.Fatalf("Find after the index went: %v", err)
	}
	if got := docIDs(docs); !slices.Equal(got, want) {
		t.Errorf("Find after the index went = %q, want %q", got, want)
	}
	if _, hinted := chooseIndex(second.knownIndexes(), q.Where); hinted {
		t.Error("the store still names the deleted index")
	}
}

func TestHintable(t *testing.T) {
	def := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	list := []kivik.Index{
		{Name: "_all_docs", Type: "special", Definition: def(`{"fields":[{"_id":"asc"}]}`)},
		{DesignDoc: "_design/a", Name: "objects", Type: "json", Definition: def(`{"fields":[{"doc":"asc"},{"location":"desc"}]}`)},
		{DesignDoc: "_design/b", Name: "strings", Type: "json", Definition: def(`{"fields":["kind"]}`)},
		{DesignDoc: "_design/c", Name: "partial", Type: "json", Definition: def(`{"fields":["kind"],"partial_filter_selector":{"doc":"entity"}}`)},
		{DesignDoc: "_design/d", Name: "null partial", Type: "json", Definition: def(`{"fields":["source"],"partial_filter_selector":null}`)},
		{DesignDoc: "_design/e", Name: "text", Type: "text", Definition: def(`{"fields":[{"kind":"string"}]}`)},
		{DesignDoc: "_design/f", Name: "no fields", Type: "json", Definition: def(`{"fields":[]}`)},
		{DesignDoc: "_design/g", Name: "odd field", Type: "json", Definition: def(`{"fields":[{"a":"asc","b":"asc"}]}`)},
		{DesignDoc: "_design/h", Name: "odd definition", Type: "json", Definition: def(`{"fields":"kind"}`)},
	}
	got := hintable(list)
	want := []mangoIndex{
		{ddoc: "_design/a", name: "objects", fields: []string{"doc", "location"}},
		{ddoc: "_design/b", name: "strings", fields: []string{"kind"}},
		{ddoc: "_design/d", name: "null partial", fields: []string{"source"}},
	}
	if !slices.EqualFunc(got, want, func(a, b mangoIndex) bool {
		return a.ddoc == b.ddoc && a.name == b.name && slices.Equal(a.fields, b.fields)
	}) {
		t.Errorf("hintable = %+v, want %+v", got, want)
	}
}

func TestChooseIndex(t *testing.T) {
	indexes := []mangoIndex{
		{ddoc: "_design/1", name: "kind", fields: []string{"kind"}},
		{ddoc: "_design/2", name: "source", fields: []string{"source"}},
		{ddoc: "_design/3", name: "doc-location", fields: []string{"doc", "location"}},
		{ddoc: "_design/0", name: "kind-again", fields: []string{"kind"}},
		{ddoc: "_design/4", name: "dotted", fields: []string{`attributes.occi\.core\.id`}},
	}
	eq := func(field string, v any) store.Cond {
		return store.Cond{Field: []string{field}, Op: store.Eq, Value: v}
	}
	tests := []struct {
		name  string
		where []store.Cond
		want  string
	}{
		{"none", nil, ""},
		{"unindexed", []store.Cond{eq("other", "x")}, ""},
		{"single", []store.Cond{eq("source", "x")}, "source"},
		{"same fields go by design document", []store.Cond{eq("kind", "x")}, "kind-again"},
		{"earliest condition", []store.Cond{eq("doc", "entity"), eq("source", "x"), eq("kind", "k")}, "source"},
		{"most fields", []store.Cond{eq("kind", "k"), eq("location", "/l"), eq("doc", "category")}, "doc-location"},
		{"partial composite", []store.Cond{eq("doc", "category")}, ""},
		{"dotted key", []store.Cond{{Field: []string{"attributes", "occi.core.id"}, Op: store.Eq, Value: "a"}}, "dotted"},
		{"nested path is not the dotted key", []store.Cond{{Field: []string{"attributes", "occi", "core", "id"}, Op: store.Eq, Value: "a"}}, ""},
		{"contains", []store.Cond{{Field: []string{"kind"}, Op: store.Contains, Value: "k"}}, ""},
		{"exists", []store.Cond{{Field: []string{"kind"}, Op: store.Exists}}, ""},
		{"object", []store.Cond{eq("kind", map[string]any{"a": 1})}, ""},
		{"array holding null", []store.Cond{eq("kind", []any{nil})}, ""},
		{"array", []store.Cond{eq("kind", []any{"a", 1})}, "kind-again"},
		{"null", []store.Cond{eq("kind", nil)}, "kind-again"},
		{"unencodable value", []store.Cond{eq("kind", func() {})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := chooseIndex(indexes, tt.where)
			if ok != (tt.want != "") || got.name != tt.want {
				t.Errorf("chooseIndex = %q, %v; want %q", got.name, ok, tt.want)
			}
		})
	}
}
