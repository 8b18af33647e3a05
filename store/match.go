package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Match reports whether the JSON object body satisfies every condition in
// where. It is the reference semantics for queries: Find's scan fallback uses
// it directly, and backends with native queries must agree with it.
//
// Values are compared as JSON: numbers by numeric value (2 equals 2.0 and
// 2e0), objects regardless of key order, arrays element by element. A field
// path walks object keys only; a key may contain dots, since each path
// element is one key. An empty where matches every body.
func Match(body json.RawMessage, where []Cond) (bool, error) {
	if len(where) == 0 {
		return true, nil
	}
	root, err := decodeJSON(body)
	if err != nil {
		return false, fmt.Errorf("match: decode body: %w", err)
	}
	for i, c := range where {
		ok, err := matchCond(root, c)
		if err != nil {
			return false, fmt.Errorf("match: condition %d: %w", i, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func matchCond(root any, c Cond) (bool, error) {
	if len(c.Field) == 0 {
		return false, errors.New("empty field path")
	}
	v, present := Lookup(root, c.Field)
	switch c.Op {
	case Exists:
		return present, nil
	case Eq:
		want, err := NormalizeValue(c.Value)
		if err != nil {
			return false, err
		}
		return present && jsonEqual(v, want), nil
	case Contains:
		want, err := NormalizeValue(c.Value)
		if err != nil {
			return false, err
		}
		arr, ok := v.([]any)
		if !present || !ok {
			return false, nil
		}
		for _, el := range arr {
			if jsonEqual(el, want) {
				return true, nil
			}
		}
		return false, nil
	default:
		return false, fmt.Errorf("unknown operator %d", c.Op)
	}
}

// NormalizeValue turns a Go value into its decoded JSON form: nil, bool,
// string, json.Number, []any or map[string]any. Backends use it to reason
// about a Cond's Value the same way Match does.
func NormalizeValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode condition value: %w", err)
	}
	return decodeJSON(raw)
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number
// so that their text survives for exact comparison.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// Lookup walks path through nested JSON objects (as decoded into any) and
// returns the value there. Each path element is one key, dots included.
func Lookup(root any, path []string) (any, bool) {
	cur := root
	for _, key := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = obj[key]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numberEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// numberEqual compares integers exactly when both are integers that fit in
// 64 bits, and otherwise as IEEE doubles, which is what CouchDB and PouchDB
// do.
func numberEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	ai, aerr := strconv.ParseInt(string(a), 10, 64)
	bi, berr := strconv.ParseInt(string(b), 10, 64)
	if aerr == nil && berr == nil {
		return ai == bi
	}
	af, aerr := strconv.ParseFloat(string(a), 64)
	bf, berr := strconv.ParseFloat(string(b), 64)
	if !floatOK(aerr) || !floatOK(berr) {
		return false
	}
	return af == bf
}

// floatOK accepts out-of-range numbers, which ParseFloat rounds to ±Inf or
// zero, so that two spellings of the same huge number still compare equal.
func floatOK(err error) bool {
	if err == nil {
		return true
	}
	var ne *strconv.NumError
	return errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)
}
