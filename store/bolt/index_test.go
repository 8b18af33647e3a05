package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.etcd.io/bbolt"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
)

// reference answers q as store.Find's fallback does, by listing the
// prefix and filtering with store.Match: the answer Find must give, index
// or not.
func reference(t testing.TB, s *Store, q store.Query) ([]store.Doc, error) {
	t.Helper()
	docs, err := s.List(context.Background(), q.Prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", q.Prefix, err)
	}
	var out []store.Doc
	for _, d := range docs {
		ok, err := store.Match(d.Body, q.Where)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// usesIndex reports whether Find reads q through an index.
func usesIndex(t testing.TB, s *Store, q store.Query) bool {
	t.Helper()
	var used bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		set, err := s.indexes(tx)
		used = err == nil && len(plan(set, q)) > 0
		return err
	})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return used
}

// checkEntries compares the index entries with those recomputed from the
// stored documents, and checks that the indexes are marked current.
func checkEntries(t testing.TB, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		set, err := s.indexes(tx)
		if err != nil {
			return err
		}
		docs := tx.Bucket(docsBucket)
		entries := tx.Bucket(indexBucket)
		if len(set.all) > 0 && entries.Sequence() != docs.Sequence() {
			t.Errorf("indexes current as of sequence %d, documents at %d", entries.Sequence(), docs.Sequence())
		}
		var want, got []string
		err = docs.ForEach(func(id, v []byte) error {
			_, body, err := decodeRecord(v)
			if err != nil {
				return err
			}
			keys, err := indexEntries(body, set.all)
			if err != nil {
				return err
			}
			for _, ks := range keys {
				for _, e := range ks {
					want = append(want, string(slices.Concat(e, id)))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := entries.ForEach(func(key, _ []byte) error {
			got = append(got, string(key))
			return nil
		}); err != nil {
			return err
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("index entries are %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("check entries: %v", err)
	}
}

// sameDocs fails t unless Find's answer equals the reference.
func sameDocs(t testing.TB, what string, got, want []store.Doc) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: Find = %q, want %q", what, ids(got), ids(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Rev != want[i].Rev || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Fatalf("%s: document %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func ids(docs []store.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

// randomValues are the raw JSON values documents and queries draw from:
// spellings of one number, numbers only their doubles tell apart, strings
// that look like numbers, a string too long to key verbatim, arrays with
// repeated, null, nested and object elements, objects.
func randomValues() []string {
	long, _ := json.Marshal(strings.Repeat("x", maxInlineString+10))
	longer, _ := json.Marshal(strings.Repeat("x", maxInlineString+11))
	return []string{
		`"a"`, `"b"`, `"c"`, `""`, `"2"`, string(long), string(longer),
		`2`, `2.0`, `2e0`, `-0`, `0`, `0.0`, `2.5`, `1e400`, `9007199254740993`, `9007199254740992`,
		`true`, `false`, `null`,
		`[]`, `[2]`, `[2.0,"a"]`, `["a","a",null]`, `[[2]]`, `[{"x":1},"b"]`, `[true,"c",2.5]`,
		`{"x":1}`, `{}`,
	}
}

// randomFields are the fields of random documents; all but free and zzz
// are indexed from the start, free midway.
var randomFields = [][]string{{"kind"}, {"n"}, {"tags"}, {"a", "b"}, {"doc"}, {"loc"}, {"free"}, {"zzz"}, {"a"}}

type randomizer struct {
	r      *rand.Rand
	values []string
}

func (g randomizer) value() json.RawMessage {
	return json.RawMessage(g.values[g.r.IntN(len(g.values))])
}

// body returns a document where each field is present three times in
// four; "a" is an object holding "b", or now and then a plain value.
func (g randomizer) body() json.RawMessage {
	fields := map[string]json.RawMessage{}
	for _, f := range []string{"kind", "n", "tags", "doc", "loc", "free"} {
		if g.r.IntN(4) > 0 {
			fields[f] = g.value()
		}
	}
	switch g.r.IntN(4) {
	case 0:
		fields["a"] = g.value()
	case 1, 2:
		inner := map[string]json.RawMessage{"b": g.value()}
		raw, err := json.Marshal(inner)
		if err != nil {
			panic(err)
		}
		fields["a"] = raw
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return raw
}

func (g randomizer) cond() store.Cond {
	c := store.Cond{Field: randomFields[g.r.IntN(len(randomFields))]}
	switch n := g.r.IntN(20); {
	case n < 10:
		c.Op = store.Eq
	case n < 17:
		c.Op = store.Contains
	default:
		c.Op = store.Exists
		return c
	}
	// Go values as callers pass them, besides raw JSON.
	switch g.r.IntN(8) {
	case 0:
		c.Value = 2
	case 1:
		c.Value = 2.0
	case 2:
		c.Value = "a"
	default:
		c.Value = g.value()
	}
	return c
}

func (g randomizer) query() store.Query {
	q := store.Query{Prefix: []string{"", "", "d/", "d/1", "e/", "x/"}[g.r.IntN(6)]}
	switch g.r.IntN(5) {
	case 0:
		// The fields of an index on several, both compared with Eq.
		pair := [][][]string{{{"doc"}, {"loc"}}, {{"kind"}, {"n"}}}[g.r.IntN(2)]
		for _, f := range pair {
			q.Where = append(q.Where, store.Cond{Field: f, Op: store.Eq, Value: g.value()})
		}
	default:
		for range 1 + g.r.IntN(3) {
			q.Where = append(q.Where, g.cond())
		}
	}
	return q
}

// describe renders q with its values as JSON, for failure messages.
func describe(q store.Query) string {
	var b strings.Builder
	fmt.Fprintf(&b, "prefix %q", q.Prefix)
	for _, c := range q.Where {
		v, err := json.Marshal(c.Value)
		if err != nil {
			v = []byte(err.Error())
		}
		fmt.Fprintf(&b, ", %q %s %s", c.Field, [...]string{"eq", "contains", "exists"}[c.Op], v)
	}
	return b.String()
}

// TestIndexedFindMatchesScan writes, rewrites and deletes random
// documents, adds indexes before and after documents exist, reopens the
// file, and checks after each round that Find answers random queries
// exactly as a scan does and that the entries are those of the documents.
func TestIndexedFindMatchesScan(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			g := randomizer{r: rand.New(rand.NewPCG(seed, seed)), values: randomValues()}
			s, path := openTemp(t)
			defer func() { cmbstest.NoError(t, s.Close) }()
			ensure := func(idx ...store.Index) {
				t.Helper()
				for _, i := range idx {
					if err := s.EnsureIndex(ctx, i); err != nil {
						t.Fatalf("EnsureIndex(%q): %v", i.Name, err)
					}
				}
			}
			ensure(
				store.Index{Name: "kind", Fields: [][]string{{"kind"}}},
				store.Index{Name: "n", Fields: [][]string{{"n"}}},
				store.Index{Name: "tags", Fields: [][]string{{"tags"}}},
				store.Index{Name: "ab", Fields: [][]string{{"a", "b"}}},
				store.Index{Name: "doc-loc", Fields: [][]string{{"doc"}, {"loc"}}},
				// Same fields as "kind": the entries are shared.
				store.Index{Name: "kind-again", Fields: [][]string{{"kind"}}},
			)
			var ids []string
			for i := range 40 {
				ids = append(ids, fmt.Sprintf("d/%d", i))
			}
			for i := range 20 {
				ids = append(ids, fmt.Sprintf("e/%d", i))
			}
			revs := map[string]string{}
			const rounds, writes, queries = 10, 30, 60
			var indexed, total int
			for round := range rounds {
				switch round {
				case 4:
					// Built over the documents already there.
					ensure(
						store.Index{Name: "free", Fields: [][]string{{"free"}}},
						store.Index{Name: "kind-n", Fields: [][]string{{"kind"}, {"n"}}},
					)
				case 6:
					if err := s.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					var err error
					if s, err = Open(path); err != nil {
						t.Fatalf("reopen: %v", err)
					}
				}
				for range writes {
					id := ids[g.r.IntN(len(ids))]
					rev, exists := revs[id]
					switch {
					case exists && g.r.IntN(4) == 0:
						if err := s.Delete(ctx, id, rev); err != nil {
							t.Fatalf("Delete(%q): %v", id, err)
						}
						delete(revs, id)
					default:
						newRev, err := s.Put(ctx, store.Doc{ID: id, Rev: rev, Body: g.body()})
						if err != nil {
							t.Fatalf("Put(%q): %v", id, err)
						}
						revs[id] = newRev
					}
				}
				checkEntries(t, s)
				for range queries {
					q := g.query()
					want, wantErr := reference(t, s, q)
					got, err := s.Find(ctx, q)
					if (err != nil) != (wantErr != nil) {
						t.Fatalf("Find(%s) error = %v, scan error = %v", describe(q), err, wantErr)
					}
					sameDocs(t, fmt.Sprintf("round %d, %s", round, describe(q)), got, want)
					total++
					if usesIndex(t, s, q) {
						indexed++
					}
				}
			}
			// Most queries compare an indexed field; make sure the
			// comparison above exercised the indexes, not only scans.
			if indexed < total/3 {
				t.Errorf("only %d of %d queries used an index", indexed, total)
			}
		})
	}
}

func TestPlanUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	for _, idx := range []store.Index{
		{Name: "kind", Fields: [][]string{{"kind"}}},
		{Name: "mixins", Fields: [][]string{{"mixins"}}},
		{Name: "member", Fields: [][]string{{"attributes", "cmbs.member"}}},
		{Name: "doc-location", Fields: [][]string{{"doc"}, {"location"}}},
	} {
		if err := s.EnsureIndex(ctx, idx); err != nil {
			t.Fatalf("EnsureIndex: %v", err)
		}
	}
	f := func(path ...string) []string { return path }
	eq := func(v any, path ...string) store.Cond { return store.Cond{Field: path, Op: store.Eq, Value: v} }
	tests := []struct {
		name  string
		where []store.Cond
		want  bool
	}{
		{"eq string", []store.Cond{eq("compute", "kind")}, true},
		{"eq number", []store.Cond{eq(2, "kind")}, true},
		{"eq null", []store.Cond{eq(nil, "kind")}, true},
		{"contains", []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: "m"}}, true},
		{"dotted key", []store.Cond{eq(true, "attributes", "cmbs.member")}, true},
		{"dotted key is not a path", []store.Cond{eq(true, "attributes", "cmbs", "member")}, false},
		{"eq array", []store.Cond{eq([]string{"m"}, "mixins")}, false},
		{"contains object", []store.Cond{{Field: f("mixins"), Op: store.Contains, Value: map[string]any{}}}, false},
		{"exists", []store.Cond{{Field: f("kind"), Op: store.Exists}}, false},
		{"unindexed", []store.Cond{eq("x", "title")}, false},
		{"one field of several", []store.Cond{eq("entity", "doc")}, false},
		{"every field of several", []store.Cond{eq("/compute/", "location"), eq("category", "doc")}, true},
		{"contains on one of several", []store.Cond{eq("/compute/", "location"), {Field: f("doc"), Op: store.Contains, Value: "category"}}, false},
		{"indexed among others", []store.Cond{eq("entity", "doc"), {Field: f("title"), Op: store.Exists}, eq("compute", "kind")}, true},
		{"unknown operator", []store.Cond{eq("compute", "kind"), {Field: f("x"), Op: store.Op(99)}}, false},
		{"empty path", []store.Cond{eq("compute", "kind"), eq("x")}, false},
		{"value JSON cannot hold", []store.Cond{eq("compute", "kind"), eq(func() {}, "title")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usesIndex(t, s, store.Query{Where: tt.where}); got != tt.want {
				t.Errorf("uses an index = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIndexedFindErrors checks that conditions store.Match rejects fail
// Find as they fail the scan, even beside an indexed condition.
func TestIndexedFindErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	if err := s.EnsureIndex(ctx, store.Index{Name: "kind", Fields: [][]string{{"kind"}}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(`{"kind":"compute"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	kind := store.Cond{Field: []string{"kind"}, Op: store.Eq, Value: "compute"}
	// A string no body holds, which lets a scan skip bodies undecoded.
	absent := store.Cond{Field: []string{"kind"}, Op: store.Eq, Value: "storage"}
	for _, bad := range []store.Cond{
		{Field: []string{"x"}, Op: store.Op(99)},
		{Op: store.Eq, Value: "x"},
		{Field: []string{"x"}, Op: store.Eq, Value: func() {}},
	} {
		for _, where := range [][]store.Cond{{kind, bad}, {bad, kind}, {bad, absent}} {
			q := store.Query{Where: where}
			if _, err := reference(t, s, q); err == nil {
				t.Fatalf("scan of %+v succeeded; the test needs a failing condition", where)
			}
			if docs, err := s.Find(ctx, q); err == nil {
				t.Errorf("Find(%+v) = %q, want an error", where, ids(docs))
			}
		}
	}
}

func TestIndexSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	kind := store.Index{Name: "kind", Fields: [][]string{{"kind"}}}
	if err := s.EnsureIndex(ctx, kind); err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"compute", "network", "compute"} {
		if _, err := s.Put(ctx, store.Doc{ID: fmt.Sprintf("e/%d", i), Body: json.RawMessage(fmt.Sprintf(`{"kind":%q}`, k))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	q := store.Query{Prefix: "e/", Where: []store.Cond{{Field: []string{"kind"}, Op: store.Eq, Value: "compute"}}}
	if !usesIndex(t, s, q) {
		t.Errorf("the index did not survive reopening")
	}
	docs, err := s.Find(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(docs), []string{"e/0", "e/2"}; !slices.Equal(got, want) {
		t.Errorf("Find after reopen = %q, want %q", got, want)
	}
	if err := s.EnsureIndex(ctx, kind); err != nil {
		t.Errorf("ensuring the same index after reopen: %v", err)
	}
	other := store.Index{Name: "kind", Fields: [][]string{{"kind"}, {"location"}}}
	if err := s.EnsureIndex(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("redefining an index error = %v, want ErrConflict", err)
	}
	checkEntries(t, s)
}

func TestIndexCoversExistingDocuments(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	bodies := map[string]string{
		"e/1": `{"kind":"compute","source":"/r/1","mixins":["m1","m2"]}`,
		"e/2": `{"kind":"compute","source":"/r/2","mixins":["m2"]}`,
		"e/3": `{"kind":"network","source":"/r/1","mixins":"m1"}`,
		"f/1": `{"kind":"compute","source":"/r/1"}`,
	}
	for id, body := range bodies {
		if _, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, idx := range []store.Index{
		{Name: "kind-source", Fields: [][]string{{"kind"}, {"source"}}},
		{Name: "mixins", Fields: [][]string{{"mixins"}}},
	} {
		if err := s.EnsureIndex(ctx, idx); err != nil {
			t.Fatal(err)
		}
	}
	checkEntries(t, s)
	eq := func(field string, v any) store.Cond {
		return store.Cond{Field: []string{field}, Op: store.Eq, Value: v}
	}
	tests := []struct {
		q    store.Query
		want []string
	}{
		{store.Query{Where: []store.Cond{eq("kind", "compute"), eq("source", "/r/1")}}, []string{"e/1", "f/1"}},
		{store.Query{Prefix: "e/", Where: []store.Cond{eq("source", "/r/1"), eq("kind", "compute")}}, []string{"e/1"}},
		{store.Query{Where: []store.Cond{{Field: []string{"mixins"}, Op: store.Contains, Value: "m2"}}}, []string{"e/1", "e/2"}},
		{store.Query{Where: []store.Cond{{Field: []string{"mixins"}, Op: store.Contains, Value: "m1"}}}, []string{"e/1"}},
		{store.Query{Where: []store.Cond{eq("mixins", "m1")}}, []string{"e/3"}},
	}
	for _, tt := range tests {
		if !usesIndex(t, s, tt.q) {
			t.Errorf("%+v does not use an index", tt.q)
		}
		docs, err := s.Find(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(docs); !slices.Equal(got, tt.want) {
			t.Errorf("Find(%+v) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

// TestStaleIndexRebuiltOnOpen writes to the file as a build of cmbs
// without indexes would, bypassing them, and expects Open to notice and
// rebuild.
func TestStaleIndexRebuiltOnOpen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.EnsureIndex(ctx, store.Index{Name: "kind", Fields: [][]string{{"kind"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "e/1", Body: json.RawMessage(`{"kind":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		docs := tx.Bucket(docsBucket)
		for id, body := range map[string]string{"e/1": `{"kind":"b"}`, "e/2": `{"kind":"a"}`} {
			if err := docs.Put([]byte(id), encodeRecord("9-old", []byte(body))); err != nil {
				return err
			}
			if _, err := docs.NextSequence(); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	s, err = Open(path, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, s.Close)
	checkEntries(t, s)
	for kind, want := range map[string][]string{"a": {"e/2"}, "b": {"e/1"}} {
		docs, err := s.Find(ctx, store.Query{Where: []store.Cond{{Field: []string{"kind"}, Op: store.Eq, Value: kind}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(docs); !slices.Equal(got, want) {
			t.Errorf("kind %s: Find = %q, want %q", kind, got, want)
		}
	}
	if e := hook.LastEntry(); e == nil || e.Level != logrus.WarnLevel || !strings.Contains(e.Message, "rebuilt the indexes") {
		t.Errorf("no warning about the rebuild; entries: %v", hook.AllEntries())
	}
}

func TestEnsureIndexRefusesInvalid(t *testing.T) {
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	for _, idx := range []store.Index{
		{Fields: [][]string{{"kind"}}},
		{Name: "none"},
		{Name: "empty path", Fields: [][]string{{"kind"}, {}}},
	} {
		if err := s.EnsureIndex(context.Background(), idx); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("EnsureIndex(%+v) error = %v, want ErrInvalid", idx, err)
		}
	}
}

// TestLongValuesAndIDs checks strings and tuples too long to key
// verbatim, and the longest id Put accepts.
func TestLongValuesAndIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	for _, idx := range []store.Index{
		{Name: "v", Fields: [][]string{{"v"}}},
		{Name: "v-w", Fields: [][]string{{"v"}, {"w"}}},
	} {
		if err := s.EnsureIndex(ctx, idx); err != nil {
			t.Fatal(err)
		}
	}
	// long is keyed by its hash; medium verbatim, but the two together
	// are too long and keyed by the hash of the pair.
	long := strings.Repeat("é", maxInlineString)
	medium := strings.Repeat("w", maxInlineString-20)
	if key := entryKey(nil, entryWhole, long, medium); key[1] != tagTuple {
		t.Fatalf("the pair is keyed verbatim, %q", key)
	}
	body := func(v, w string) json.RawMessage {
		raw, err := json.Marshal(map[string]string{"v": v, "w": w})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	longID := "/" + strings.Repeat("i", maxIDLen-1)
	for id, b := range map[string]json.RawMessage{
		"a":    body(long, medium),
		"b":    body(long+"x", medium),
		longID: body(long, medium),
	} {
		if _, err := s.Put(ctx, store.Doc{ID: id, Body: b}); err != nil {
			t.Fatalf("Put(%.20q…): %v", id, err)
		}
	}
	if _, err := s.Put(ctx, store.Doc{ID: longID + "i", Body: body("x", "y")}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Put of a %d-byte id error = %v, want ErrInvalid", len(longID)+1, err)
	}
	checkEntries(t, s)
	eq := func(field, v string) store.Cond { return store.Cond{Field: []string{field}, Op: store.Eq, Value: v} }
	for _, tt := range []struct {
		where []store.Cond
		want  []string
	}{
		{[]store.Cond{eq("v", long)}, []string{longID, "a"}},
		{[]store.Cond{eq("v", long+"x")}, []string{"b"}},
		{[]store.Cond{eq("v", long), eq("w", medium)}, []string{longID, "a"}},
		{[]store.Cond{eq("v", long+"x"), eq("w", medium)}, []string{"b"}},
		{[]store.Cond{eq("v", long+"x"), eq("w", medium+"w")}, nil},
		{[]store.Cond{eq("v", long+"y")}, nil},
	} {
		q := store.Query{Where: tt.where}
		if !usesIndex(t, s, q) {
			t.Errorf("query %d does not use an index", len(tt.where))
		}
		docs, err := s.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(docs); !slices.Equal(got, tt.want) {
			t.Errorf("Find = %.40q, want %.40q", got, tt.want)
		}
	}
}

// TestNumbersShareKeys pins the number normalisation entries rely on.
func TestNumbersShareKeys(t *testing.T) {
	same := [][]string{
		{"2", "2.0", "2e0", "20e-1", "2.000"},
		{"0", "-0", "0.0", "-0.0", "0e5"},
		{"1e400", "2e400"},
		{"9007199254740993", "9007199254740992"},
	}
	key := func(n string) string { return string(entryKey(nil, entryWhole, json.Number(n))) }
	for _, group := range same {
		for _, n := range group[1:] {
			if key(n) != key(group[0]) {
				t.Errorf("%s and %s have different keys", group[0], n)
			}
		}
	}
	for _, pair := range [][2]any{
		{json.Number("2"), "2"}, {json.Number("2"), json.Number("2.5")}, {json.Number("1"), true},
		{nil, false}, {"", nil}, {json.Number("-1e400"), json.Number("1e400")},
	} {
		if key := entryKey(nil, entryWhole, pair[0]); bytes.Equal(key, entryKey(nil, entryWhole, pair[1])) {
			t.Errorf("%#v and %#v share the key %q", pair[0], pair[1], key)
		}
	}
}

// loadDocs writes docs in one transaction, so that benchmarks over many
// documents start quickly.
func loadDocs(tb testing.TB, s *Store, docs []store.Doc) {
	tb.Helper()
	writes := make([]store.Write, len(docs))
	for i, d := range docs {
		writes[i] = store.Put(d)
	}
	if _, err := s.Write(context.Background(), writes); err != nil {
		tb.Fatalf("load: %v", err)
	}
}

// BenchmarkFind compares Find by an indexed field with the same Find on a
// store without the index, over 10,000 documents: kind matches 100 of
// them, source 2.
func BenchmarkFind(b *testing.B) {
	const n = 10000
	docs := make([]store.Doc, n)
	for i := range docs {
		body, err := json.Marshal(map[string]any{
			"doc":        "entity",
			"kind":       fmt.Sprintf("http://schemas.ogf.org/occi/infrastructure#k%02d", i%100),
			"source":     fmt.Sprintf("/compute/%d", i/2),
			"target":     fmt.Sprintf("/network/%d", i%7),
			"attributes": map[string]any{"occi.core.id": fmt.Sprint(i), "occi.compute.cores": 2},
			"mixins":     []string{"a", "b"},
		})
		if err != nil {
			b.Fatal(err)
		}
		docs[i] = store.Doc{ID: fmt.Sprintf("/link/%06d", i), Body: body}
	}
	ctx := context.Background()
	stores := map[string]*Store{}
	for _, name := range []string{"indexed", "scan"} {
		s, _ := openTemp(b)
		b.Cleanup(func() { cmbstest.NoError(b, s.Close) })
		if name == "indexed" {
			for _, f := range []string{"kind", "source"} {
				if err := s.EnsureIndex(ctx, store.Index{Name: f, Fields: [][]string{{f}}}); err != nil {
					b.Fatal(err)
				}
			}
		}
		loadDocs(b, s, docs)
		stores[name] = s
	}
	queries := []struct {
		name  string
		field string
		value string
		want  int
	}{
		{"kind", "kind", "http://schemas.ogf.org/occi/infrastructure#k07", n / 100},
		{"source", "source", "/compute/1234", 2},
	}
	for _, q := range queries {
		for _, name := range []string{"indexed", "scan"} {
			b.Run(q.name+"/"+name, func(b *testing.B) {
				s := stores[name]
				query := store.Query{Prefix: "/link/", Where: []store.Cond{
					{Field: []string{"doc"}, Op: store.Eq, Value: "entity"},
					{Field: []string{q.field}, Op: store.Eq, Value: q.value},
				}}
				for b.Loop() {
					got, err := s.Find(ctx, query)
					if err != nil {
						b.Fatal(err)
					}
					if len(got) != q.want {
						b.Fatalf("Find returned %d documents, want %d", len(got), q.want)
					}
				}
			})
		}
	}
}

// BenchmarkPutIndexed creates OCCI-shaped entities with and without the
// indexes the OCCI server asks for, to show what maintaining them costs a
// write.
func BenchmarkPutIndexed(b *testing.B) {
	occi := []store.Index{
		{Name: "cmbs-category-location", Fields: [][]string{{"doc"}, {"location"}}},
		{Name: "cmbs-entity-kind", Fields: [][]string{{"kind"}}},
		{Name: "cmbs-entity-source", Fields: [][]string{{"source"}}},
		{Name: "cmbs-entity-target", Fields: [][]string{{"target"}}},
	}
	for _, tc := range []struct {
		name    string
		indexes []store.Index
	}{{"none", nil}, {"occi", occi}} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := openTemp(b)
			defer cmbstest.NoError(b, s.Close)
			ctx := context.Background()
			for _, idx := range tc.indexes {
				if err := s.EnsureIndex(ctx, idx); err != nil {
					b.Fatal(err)
				}
			}
			defer reportPages(b, s)()
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("/compute/%09d", i)
				body, err := json.Marshal(map[string]any{
					"doc": "entity", "location": id, "kind": "http://schemas.ogf.org/occi/infrastructure#compute",
					"attributes": map[string]any{"occi.core.id": fmt.Sprint(i), "occi.compute.cores": 2},
				})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Put(ctx, store.Doc{ID: id, Body: body}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// TestDecodeMembers: the members an index needs are decoded, the others
// skipped, whatever they hold.
func TestDecodeMembers(t *testing.T) {
	body := []byte(`{"a":{"x":[1,{"y":"}]"}]},"kind":"compute","k\"q":"v","n":-1.5e3,"t":true,"z":null,"list":["a","b"]}`)
	got, err := decodeMembers(body, map[string]bool{"kind": true, "n": true, "z": true, "list": true, "k\"q": true, "missing": true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"kind": "compute", "n": json.Number("-1.5e3"), "z": nil, "list": []any{"a", "b"}, "k\"q": "v"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeMembers = %#v, want %#v", got, want)
	}
	for _, bad := range []string{`[1]`, `{"a"}`, `{"a":`, `{"a":"x}`, `{`} {
		if _, err := decodeMembers([]byte(bad), map[string]bool{"a": true}); err == nil {
			t.Errorf("decodeMembers(%s) accepted", bad)
		}
	}
}
