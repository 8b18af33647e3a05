package occi

import (
	"regexp"
	"sort"
	"strings"

	"github.com/houssem/cmbs/store"
)

// AttrDef is one attribute definition of a kind, mixin or action.
type AttrDef struct {
	// Name is the dotted name; Path the keys it is nested under, which
	// differ from splitting Name where a key holds a dot ("l3.1_socket").
	Name     string
	Path     []string
	Type     string
	Required bool
	Mutable  bool
	Default  any
	Pattern  string
	// Description says what the attribute holds.
	Description string
	// HasDefault distinguishes an absent default from a null one.
	HasDefault bool
	// pattern is Pattern compiled, once per schema (see newSchema).
	pattern *regexp.Regexp
}

// specKeys are the members that mark an object in a category's attributes
// as a definition rather than a level of the dotted name.
var specKeys = []string{"type", "mutable", "required", "default", "pattern", "description", "minimum", "maximum"}

func isDefinition(m map[string]any) bool {
	for _, k := range specKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		if _, nested := v.(map[string]any); !nested {
			return true
		}
	}
	return false
}

// Definitions flattens nested attribute definitions into dotted names,
// sorted by name.
func Definitions(nested map[string]any) []AttrDef {
	var out []AttrDef
	var walk func(prefix []string, m map[string]any)
	walk = func(prefix []string, m map[string]any) {
		for k, v := range m {
			path := append(append([]string{}, prefix...), k)
			sub, ok := v.(map[string]any)
			if !ok {
				// A bare value names an attribute with no constraints.
				out = append(out, AttrDef{Name: strings.Join(path, "."), Path: path, Mutable: true})
				continue
			}
			if isDefinition(sub) || len(sub) == 0 {
				d := defFrom(strings.Join(path, "."), sub)
				d.Path = path
				out = append(out, d)
				continue
			}
			walk(path, sub)
		}
	}
	walk(nil, nested)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func defFrom(name string, m map[string]any) AttrDef {
	d := AttrDef{Name: name, Mutable: true}
	if t, ok := m["type"].(string); ok {
		d.Type = t
	}
	if b, ok := asBool(m["required"]); ok {
		d.Required = b
	}
	if b, ok := asBool(m["mutable"]); ok {
		d.Mutable = b
	}
	if p, ok := m["pattern"].(string); ok {
		d.Pattern = p
	}
	if desc, ok := m["description"].(string); ok {
		d.Description = desc
	}
	if v, ok := m["default"]; ok {
		d.Default, d.HasDefault = v, true
	}
	return d
}

// asBool reads JSON booleans and the "true"/"false" strings (any case) that
// the original's files use in places.
func asBool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// AsBool interprets an attribute value as a boolean: JSON booleans and the
// strings "true"/"false" in any case. ok is false for anything else.
func AsBool(v any) (value, ok bool) { return asBool(v) }

func lookupPath(m map[string]any, path []string) (any, bool) { return store.Lookup(m, path) }

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func deletePath(m map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, path[len(path)-1])
}

// deepMerge copies src into dst: objects merge key by key, anything else
// replaces. Defined attributes whose value is an object (message contents,
// for one) are replaced whole, never merged, so isLeaf decides.
func deepMerge(dst, src map[string]any, prefix string, isLeaf func(string) bool) {
	for k, v := range src {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		sv, srcObj := v.(map[string]any)
		dv, dstObj := dst[k].(map[string]any)
		if srcObj && dstObj && !isLeaf(name) {
			deepMerge(dv, sv, name, isLeaf)
			continue
		}
		dst[k] = deepCopy(v)
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// FlattenValues lists an entity's attribute values by dotted name. A name
// that is defined (isLeaf) stops the descent, so object-valued attributes
// stay whole; undefined objects are descended into.
func FlattenValues(attrs map[string]any, isLeaf func(string) bool) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !isLeaf(name) {
				walk(name, sub)
				continue
			}
			out[name] = v
		}
	}
	walk("", attrs)
	return out
}

func splitName(name string) []string { return strings.Split(name, ".") }
