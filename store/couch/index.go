package couch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/houssem/cmbs/store"
)

// Why Find names its index: every selector holds an _id range (the prefix,
// or everything), and both CouchDB and PouchDB Server then plan on the
// primary index, which serves that range as well as any field index serves
// its condition, so they scan every document under the prefix instead of
// looking the field up. Find therefore picks a JSON index itself and sends it
// as use_index; the _id range stays in the selector and is checked on the
// documents the index yields.
//
// A JSON index only holds documents that have all of its fields, so Find
// names an index only when the query has an Eq condition on every one of
// its fields, each sent to the server as a plain $eq: a document outside the
// index cannot match such a query, and the $eq gives the server a key range.
// That is also what both servers require of a use_index they honour (CouchDB
// otherwise ignores it with a warning, PouchDB Server fails the query).

// mangoIndex is a JSON index on the database that Find may name.
type mangoIndex struct {
	ddoc   string   // design document id, "_design/..."
	name   string   // index name within ddoc
	fields []string // Mango field names, in index order
}

// indexDef is the part of an index definition that decides whether Find may
// name it.
type indexDef struct {
	Fields                []json.RawMessage `json:"fields"`
	PartialFilterSelector json.RawMessage   `json:"partial_filter_selector"`
}

// hintable turns the server's index list into the indexes Find may name:
// JSON indexes without a partial filter, which would leave out documents a
// query matches. Definitions it cannot read are skipped: an index only
// speeds queries up.
func hintable(list []kivik.Index) []mangoIndex {
	var out []mangoIndex
	for _, ix := range list {
		if ix.Type != "json" || ix.DesignDoc == "" || ix.Name == "" {
			continue
		}
		raw, err := json.Marshal(ix.Definition)
		if err != nil {
			continue
		}
		var def indexDef
		if json.Unmarshal(raw, &def) != nil {
			continue
		}
		partial := len(def.PartialFilterSelector) > 0 && string(def.PartialFilterSelector) != "null"
		if partial || len(def.Fields) == 0 {
			continue
		}
		fields, ok := sortFields(def.Fields)
		if !ok {
			continue
		}
		out = append(out, mangoIndex{ddoc: ix.DesignDoc, name: ix.Name, fields: fields})
	}
	return out
}

// sortFields reads an index's fields, given in sort syntax: "field" or
// {"field": "asc"}.
func sortFields(raw []json.RawMessage) ([]string, bool) {
	fields := make([]string, 0, len(raw))
	for _, r := range raw {
		var name string
		if json.Unmarshal(r, &name) == nil {
			fields = append(fields, name)
			continue
		}
		var obj map[string]string
		if json.Unmarshal(r, &obj) != nil || len(obj) != 1 {
			return nil, false
		}
		for name := range obj {
			fields = append(fields, name)
		}
	}
	return fields, true
}

// loadIndexes lists the database's indexes and makes them the ones Find
// chooses from.
func (s *Store) loadIndexes(ctx context.Context) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	list, err := s.db.GetIndexes(ctx)
	if err != nil {
		return fmt.Errorf("list indexes: %w", mapErr(err))
	}
	indexes := hintable(list)
	s.indexes.Store(&indexes)
	return nil
}

// knownIndexes returns the indexes listed last.
func (s *Store) knownIndexes() []mangoIndex {
	if p := s.indexes.Load(); p != nil {
		return *p
	}
	return nil
}

// eqFields maps the Mango field of every Eq condition the selector sends as
// a plain $eq to the position of its first such condition in where.
func eqFields(where []store.Cond) map[string]int {
	out := map[string]int{}
	for i, c := range where {
		if c.Op != store.Eq {
			continue
		}
		name, ok := mangoField(c.Field)
		if !ok {
			continue
		}
		v, err := store.NormalizeValue(c.Value)
		if err != nil || !plainEq(v) {
			continue
		}
		if _, seen := out[name]; !seen {
			out[name] = i
		}
	}
	return out
}

// chooseIndex returns the index Find names for a query with conditions
// where, if one can serve it: every field of the index must have a plain Eq
// condition. The index covering the most conditions wins, then the one
// whose first condition comes earliest in where, as callers list their most
// selective conditions first, then the first by design document and name.
func chooseIndex(indexes []mangoIndex, where []store.Cond) (mangoIndex, bool) {
	eqs := eqFields(where)
	if len(eqs) == 0 {
		return mangoIndex{}, false
	}
	type candidate struct {
		idx   mangoIndex
		first int
	}
	var best *candidate
	for _, ix := range indexes {
		first := len(where)
		usable := true
		for _, f := range ix.fields {
			pos, ok := eqs[f]
			if !ok {
				usable = false
				break
			}
			first = min(first, pos)
		}
		if !usable {
			continue
		}
		c := candidate{ix, first}
		if best == nil || better(c.idx, c.first, best.idx, best.first) {
			best = &c
		}
	}
	if best == nil {
		return mangoIndex{}, false
	}
	return best.idx, true
}

// better orders chooseIndex's candidates.
func better(a mangoIndex, aFirst int, b mangoIndex, bFirst int) bool {
	if c := cmp.Compare(len(b.fields), len(a.fields)); c != 0 {
		return c < 0
	}
	if aFirst != bFirst {
		return aFirst < bFirst
	}
	return slices.Compare([]string{a.ddoc, a.name}, []string{b.ddoc, b.name}) < 0
}

// useIndex is the use_index value naming ix.
func (ix mangoIndex) useIndex() []string {
	return []string{ix.ddoc, ix.name}
}
