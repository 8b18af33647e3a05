package occi

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Validation modes. Required attributes, immutable attributes, unknown
// categories and malformed documents are refused in both. Lenient mode (the
// default) treats an attribute's declared type and pattern as advisory: a
// value that breaks them is stored as sent and the server logs a warning,
// because the original's own request files break them ("True" against
// true|false, socket URLs against a hostname pattern, "" for an Object).
// Strict mode refuses such values with 400 naming the attribute.
type validator struct {
	strict bool
}

// schema is the attribute definitions that apply to one entity: its kind's
// and its mixins', by dotted name.
type schema map[string]AttrDef

func newSchema(cats ...*Category) schema {
	s := schema{}
	for _, c := range cats {
		if c == nil {
			continue
		}
		for _, d := range Definitions(c.Attributes) {
			first, dup := s[d.Name]
			switch {
			case !dup:
				s[d.Name] = d
			case !first.HasDefault && d.HasDefault:
				// A mixin's default (a resource template's size) applies
				// where the kind declares the attribute without one.
				first.Default, first.HasDefault = d.Default, true
				s[d.Name] = first
			}
		}
	}
	// Patterns are compiled once here, not at every check: schemas are
	// kept with the categories they come from (see resolveSchema).
	for name, d := range s {
		if d.Pattern == "" {
			continue
		}
		if re, err := compilePattern(d.Pattern); err == nil {
			d.pattern = re
			s[name] = d
		}
	}
	return s
}

func (s schema) isLeaf(name string) bool {
	_, ok := s[name]
	return ok
}

// emptyDefault reads the original's "" default on an Array or Object
// attribute as the empty array or object it stands for.
func emptyDefault(d AttrDef) any {
	if s, ok := d.Default.(string); ok && s == "" {
		switch normType(d.Type) {
		case "array":
			return []any{}
		case "object":
			return map[string]any{}
		}
	}
	return deepCopy(d.Default)
}

// fillDefaults sets every defined attribute that has a default and no value.
func (s schema) fillDefaults(e *Entity) {
	for _, d := range s {
		if !d.HasDefault || d.Default == nil {
			continue
		}
		if _, ok := lookupPath(e.Attributes, d.Path); !ok {
			if e.Attributes == nil {
				e.Attributes = map[string]any{}
			}
			setPath(e.Attributes, d.Path, emptyDefault(d))
		}
	}
}

// check validates e's attribute values against s. It returns the warnings
// lenient mode lets through; strict mode turns them into the error.
func (v validator) check(s schema, e *Entity) ([]string, error) {
	for name, d := range s {
		if !d.Required {
			continue
		}
		if val, ok := lookupPath(e.Attributes, d.Path); !ok || val == nil {
			return nil, BadRequest(name, "missing required attribute %s", name)
		}
	}
	var warnings []string
	for name, val := range FlattenValues(e.Attributes, s.isLeaf) {
		d, ok := s[name]
		if !ok {
			continue
		}
		if d.HasDefault && reflect.DeepEqual(val, emptyDefault(d)) {
			// A category's own default is not the client's to answer for,
			// even where it breaks the category's pattern.
			continue
		}
		if msg := conforms(d, val); msg != "" {
			if v.strict {
				return nil, BadRequest(name, "attribute %s: %s", name, msg)
			}
			warnings = append(warnings, fmt.Sprintf("attribute %s: %s", name, msg))
		}
	}
	return warnings, nil
}

// checkImmutable refuses changes to attributes declared immutable.
func checkImmutable(s schema, old, updated *Entity) error {
	for name, d := range s {
		if d.Mutable {
			continue
		}
		ov, oldOK := lookupPath(old.Attributes, d.Path)
		nv, newOK := lookupPath(updated.Attributes, d.Path)
		if !newOK {
			continue
		}
		if !oldOK || !reflect.DeepEqual(ov, nv) {
			return BadRequest(name, "attribute %s is immutable", name)
		}
	}
	return nil
}

func normType(t string) string {
	switch strings.ToLower(t) {
	case "string":
		return "string"
	case "number", "float", "double", "integer", "int":
		return "number"
	case "boolean", "bool":
		return "boolean"
	case "array", "list":
		return "array"
	case "object", "hash", "map", "dict":
		return "object"
	}
	return ""
}

// conforms explains how val breaks d's type or pattern, or returns "".
func conforms(d AttrDef, val any) string {
	if why := typeMismatch(d.Type, val); why != "" {
		return why
	}
	if d.Pattern == "" {
		return ""
	}
	return patternMismatch(d, val)
}

// typeMismatch explains how val is not of the declared type typ, or
// returns "" (also for a type cmbs does not check).
func typeMismatch(typ string, val any) string {
	var ok bool
	switch normType(typ) {
	case "string":
		_, ok = val.(string)
	case "number":
		var f float64
		if f, ok = val.(float64); ok {
			if t := strings.ToLower(typ); (t == "integer" || t == "int") && f != float64(int64(f)) {
				return "want an integer"
			}
		}
	case "boolean":
		_, ok = val.(bool)
	case "array":
		_, ok = val.([]any)
	case "object":
		_, ok = val.(map[string]any)
	default:
		return ""
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("want %s, got %s", article(normType(typ)), jsonType(val))
}

// article is "a type" or "an type", as English has it.
func article(typ string) string {
	if strings.ContainsRune("aeiou", rune(typ[0])) {
		return "an " + typ
	}
	return "a " + typ
}

// patternMismatch explains how val, a string or the strings of an array,
// does not match d's pattern, or returns "". The pattern is the one
// newSchema compiled, or compiled here for a definition made otherwise.
func patternMismatch(d AttrDef, val any) string {
	re := d.pattern
	if re == nil {
		var err error
		if re, err = compilePattern(d.Pattern); err != nil {
			return err.Error()
		}
	}
	var values []string
	switch t := val.(type) {
	case string:
		values = []string{t}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	}
	for _, s := range values {
		if !re.MatchString(s) {
			return fmt.Sprintf("value %q does not match pattern %s", s, d.Pattern)
		}
	}
	return ""
}

// compilePattern anchors an OCCI pattern: it must match the whole value.
func compilePattern(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", p, err)
	}
	return re, nil
}

func jsonType(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if t == "" {
			return "an empty string"
		}
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
