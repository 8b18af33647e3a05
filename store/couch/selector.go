package couch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/houssem/cmbs/store"
)

// dialect is the Mango variant a server speaks.
type dialect struct {
	// pouch is set for PouchDB Server, whose $elemMatch misses values in
	// arrays that start with an object, and fails on null inside selector
	// arrays.
	pouch bool
}

// buildSelector turns q into a Mango selector that matches at least every
// document store.Match accepts; Find checks each result with store.Match.
// Conditions Mango cannot express exactly are loosened, never tightened.
func (d dialect) buildSelector(q store.Query) (map[string]any, error) {
	idRange := map[string]any{"$gt": nil}
	if q.Prefix != "" {
		idRange = map[string]any{"$gte": q.Prefix, "$lt": q.Prefix + idRangeEnd}
	}
	clauses := []any{map[string]any{"_id": idRange}}
	for i, c := range q.Where {
		cs, err := d.condClauses(c)
		if err != nil {
			return nil, fmt.Errorf("condition %d: %w", i, err)
		}
		clauses = append(clauses, cs...)
	}
	return map[string]any{"$and": clauses}, nil
}

func (d dialect) condClauses(c store.Cond) ([]any, error) {
	if len(c.Field) == 0 {
		return nil, fmt.Errorf("empty field path")
	}
	switch c.Op {
	case store.Exists:
		return field(c.Field, map[string]any{"$exists": true}), nil
	case store.Eq:
		v, err := store.NormalizeValue(c.Value)
		if err != nil {
			return nil, err
		}
		return eqClauses(c.Field, v), nil
	case store.Contains:
		v, err := store.NormalizeValue(c.Value)
		if err != nil {
			return nil, err
		}
		switch {
		case v == nil || awkward(v):
			return field(c.Field, map[string]any{"$type": "array"}), nil
		case d.pouch:
			return field(c.Field, map[string]any{"$all": []any{v}}), nil
		default:
			// $all would compare numbers as Erlang terms in CouchDB,
			// where 7 and 7.0 differ.
			return field(c.Field, map[string]any{"$elemMatch": map[string]any{"$eq": v}}), nil
		}
	default:
		return nil, fmt.Errorf("unknown operator %d", c.Op)
	}
}

// eqClauses selects documents whose field at path equals v. An object is
// compared key by key, leaving Match to reject extra keys; an awkward array
// is narrowed by its length only.
func eqClauses(path []string, v any) []any {
	if plainEq(v) {
		return field(path, map[string]any{"$eq": v})
	}
	if x, ok := v.(map[string]any); ok {
		out := field(path, map[string]any{"$type": "object"})
		for k, sub := range x {
			out = append(out, eqClauses(append(slices.Clone(path), k), sub)...)
		}
		return out
	}
	return field(path, map[string]any{"$size": len(v.([]any))})
}

// plainEq reports whether an Eq condition on the decoded JSON value v is
// sent as {"$eq": v}: anything but objects and awkward arrays.
func plainEq(v any) bool {
	switch v.(type) {
	case map[string]any:
		return false
	case []any:
		return !awkward(v)
	}
	return true
}

// awkward reports whether a decoded JSON value is or holds an object, or
// holds a null inside an array. Mango compares objects key by key in order,
// so equal objects written with different key orders differ; PouchDB fails
// on nulls inside selector arrays. Such values are not sent as operands.
func awkward(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return true
	case []any:
		for _, el := range x {
			if el == nil || awkward(el) {
				return true
			}
		}
	}
	return false
}

// field returns the one-clause list {path: cond}, or nothing when Mango
// cannot name the path, which loosens the selector.
func field(path []string, cond map[string]any) []any {
	name, ok := mangoField(path)
	if !ok {
		return nil
	}
	return []any{map[string]any{name: cond}}
}

// mangoField joins a path into a Mango field name, escaping dots inside
// keys. Keys Mango cannot name reliably are refused: empty keys, keys with
// a backslash (the escape character itself) and keys starting with '$'
// (operators).
func mangoField(path []string) (string, bool) {
	parts := make([]string, len(path))
	for i, k := range path {
		if k == "" || strings.Contains(k, `\`) || strings.HasPrefix(k, "$") {
			return "", false
		}
		parts[i] = strings.ReplaceAll(k, ".", `\.`)
	}
	return strings.Join(parts, "."), true
}
