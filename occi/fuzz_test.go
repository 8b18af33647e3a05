package occi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseRequest feeds arbitrary bodies through what the server does with
// a request document before touching the store: the query interface parse,
// the entity parse, attribute normalisation, schema building, defaults and
// validation. None of it may panic, and accepted documents must survive a
// re-encoding.
func FuzzParseRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"resources":[{"attributes":{"a.b.c":1,"a":{"b":{"d":[1,{"x":null}]}}}}]}`))
	f.Add([]byte(`{"kinds":[{"term":"t","scheme":"s:","attributes":{"x":{"pattern":"(","type":"number","default":"","required":true}}}]}`))
	s := &Server{aliases: Aliases{Attributes: []AttrAlias{{From: []string{"a", "b"}, To: []string{"a", "c"}}}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if cats, err := ParseCategories(data); err == nil {
			for _, c := range cats {
				sc := newSchema(c)
				e := &Entity{Attributes: map[string]any{}}
				sc.fillDefaults(e)
				_, _ = validator{strict: true}.check(sc, e)
				_, _ = validator{}.check(sc, e)
				_ = renderCategory(c)
			}
		}
		var in entitiesInput
		if err := decodeJSON(data, &in); err != nil {
			return
		}
		for _, ti := range in.entities() {
			attrs := s.normalizeAttrs(ti.in.Attributes)
			sc := newSchema(&Category{Attributes: attrs})
			e := &Entity{Attributes: attrs}
			_ = FlattenValues(attrs, sc.isLeaf)
			_, _ = validator{strict: true}.check(sc, e)
			_ = checkImmutable(sc, e, &Entity{Attributes: deepCopy(attrs).(map[string]any)})
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("normalised attributes do not encode: %v", err)
			}
			_ = s.filterConds(ti.in, ti.field)
		}
	})
}
