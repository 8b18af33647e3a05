package couch

import (
	"encoding/json"
	"testing"

	"github.com/houssem/cmbs/store"
)

// TestBuildSelector pins the Mango each dialect sends. The conformance suite
// runs against PouchDB Server only, so this is where CouchDB's selectors are
// checked.
func TestBuildSelector(t *testing.T) {
	couch, pouch := dialect{}, dialect{pouch: true}
	f := func(path ...string) []string { return path }
	tests := []struct {
		name string
		d    dialect
		q    store.Query
		want string
	}{
		{"no prefix", couch, store.Query{}, `{"$and":[{"_id":{"$gt":null}}]}`},
		{"prefix range", couch, store.Query{Prefix: "e/"}, `{"$and":[{"_id":{"$gte":"e/","$lt":"e/\ufff0"}}]}`},
		{"eq dotted key", couch, store.Query{Where: []store.Cond{{Field: f("attributes", "occi.core.id"), Op: store.Eq, Value: "x"}}},
			`{"$and":[{"_id":{"$gt":null}},{"attributes.occi\\.core\\.id":{"$eq":"x"}}]}`},
		{"eq number", couch, store.Query{Where: []store.Cond{{Field: f("n"), Op: store.Eq, Value: json.Number("2.50")}}},
			`{"$and":[{"_id":{"$gt":null}},{"n":{"$eq":2.50}}]}`},
		{"eq object by keys", couch, store.Query{Where: []store.Cond{{Field: f("m"), Op: store.Eq, Value: map[string]any{"a": 1}}}},
			`{"$and":[{"_id":{"$gt":null}},{"m":{"$type":"object"}},{"m.a":{"$eq":1}}]}`},
		{"eq array of scalars", couch, store.Query{Where: []store.Cond{{Field: f("a"), Op: store.Eq, Value: []int{1, 2}}}},
			`{"$and":[{"_id":{"$gt":null}},{"a":{"$eq":[1,2]}}]}`},
		{"eq array holding null", pouch, store.Query{Where: []store.Cond{{Field: f("a"), Op: store.Eq, Value: []any{nil, 2}}}},
			`{"$and":[{"_id":{"$gt":null}},{"a":{"$size":2}}]}`},
		{"contains on CouchDB", couch, store.Query{Where: []store.Cond{{Field: f("a", "b"), Op: store.Contains, Value: "x"}}},
			`{"$and":[{"_id":{"$gt":null}},{"a.b":{"$elemMatch":{"$eq":"x"}}}]}`},
		{"contains on PouchDB", pouch, store.Query{Where: []store.Cond{{Field: f("a", "b"), Op: store.Contains, Value: "x"}}},
			`{"$and":[{"_id":{"$gt":null}},{"a.b":{"$all":["x"]}}]}`},
		{"contains object", couch, store.Query{Where: []store.Cond{{Field: f("a"), Op: store.Contains, Value: map[string]int{"k": 1}}}},
			`{"$and":[{"_id":{"$gt":null}},{"a":{"$type":"array"}}]}`},
		{"contains null", pouch, store.Query{Where: []store.Cond{{Field: f("a"), Op: store.Contains, Value: nil}}},
			`{"$and":[{"_id":{"$gt":null}},{"a":{"$type":"array"}}]}`},
		{"exists", couch, store.Query{Where: []store.Cond{{Field: f("a", "b.c"), Op: store.Exists}}},
			`{"$and":[{"_id":{"$gt":null}},{"a.b\\.c":{"$exists":true}}]}`},
		{"unnameable path is left to Match", couch, store.Query{Where: []store.Cond{{Field: f("$a"), Op: store.Exists}}},
			`{"$and":[{"_id":{"$gt":null}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := tt.d.buildSelector(tt.q)
			if err != nil {
				t.Fatalf("buildSelector: %v", err)
			}
			got, err := encodeJSON(sel)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			if gs, ws := mustJSON(t, g), mustJSON(t, w); gs != ws {
				t.Errorf("selector = %s\nwant       %s", got, tt.want)
			}
		})
	}
}

func TestBuildSelectorErrors(t *testing.T) {
	for _, c := range []store.Cond{
		{Op: store.Exists},
		{Field: []string{"a"}, Op: store.Op(99)},
		{Field: []string{"a"}, Op: store.Eq, Value: func() {}},
	} {
		if _, err := (dialect{}).buildSelector(store.Query{Where: []store.Cond{c}}); err == nil {
			t.Errorf("buildSelector accepted %+v", c)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
