package config

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// schemaJSON is the JSON Schema (draft 2020-12) of a config file. It is the
// reference for every key: `cmbs config schema` prints it and every file is
// checked against it before its values are used.
//
//go:embed schema.json
var schemaJSON []byte

// schemaURL is the schema's $id, under which it is compiled.
const schemaURL = "https://houssem.org/cmbs/config.schema.json"

// Schema returns the JSON Schema of config files.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// FileError lists every problem found in one config file. Load, Flags.Load
// and CheckFile return it when a file breaks the schema; CheckFile also for
// the checks of Validate.
type FileError struct {
	// Path is the file as given.
	Path string
	// Problems are ordered by line, then field.
	Problems []*FieldError
}

// Error names the file and lists each problem on a line of its own, in the
// form of Problem.
func (e *FileError) Error() string {
	var sb strings.Builder
	n := len(e.Problems)
	fmt.Fprintf(&sb, "config file %s: %d problem", e.Path, n)
	if n != 1 {
		sb.WriteString("s")
	}
	for _, p := range e.Problems {
		sb.WriteString("\n  ")
		sb.WriteString(e.Problem(p))
	}
	return sb.String()
}

// Problem formats one problem as FILE:LINE: field: reason, the form
// compilers use, so editors can jump to it; FILE: field: reason when the
// line is unknown.
func (e *FileError) Problem(p *FieldError) string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, p.Line, p)
	}
	return fmt.Sprintf("%s: %s", e.Path, p)
}

// Unwrap gives the problems to errors.Is and errors.As.
func (e *FileError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

func sortProblems(ps []*FieldError) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Field < ps[j].Field
	})
}

// document is a parsed config file: its JSON-compatible value, the line of
// each key path, and the problems conversion itself found (duplicate keys,
// values JSON cannot hold).
type document struct {
	value    any
	lines    map[string]int
	problems []*FieldError
}

// line returns the line of a key path, or of its nearest ancestor present
// in the file, or 0.
func (d *document) line(field string) int {
	for {
		if n, ok := d.lines[field]; ok {
			return n
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return 0
		}
		field = field[:i]
	}
}

// parseDocument converts a YAML (or JSON) node into the values
// encoding/json would produce, which is what the schema describes: mappings
// with string keys, sequences, strings, numbers, booleans and null. YAML's
// timestamps and binaries stay strings, anchors are resolved and merge keys
// (<<) are applied.
func parseDocument(root *yaml.Node) *document {
	d := &document{lines: map[string]int{}}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return d
		}
		root = root.Content[0]
	}
	if root.Kind == 0 {
		return d
	}
	d.value = d.convert(root, "", 0)
	return d
}

// maxDepth bounds alias expansion, which YAML lets refer to itself.
const maxDepth = 64

func (d *document) convert(n *yaml.Node, path string, depth int) any {
	if depth > maxDepth {
		d.problems = append(d.problems, &FieldError{Field: orRoot(path), Reason: "nested too deeply (a recursive alias?)", Line: n.Line})
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return d.convert(n.Alias, path, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			out = append(out, d.convert(item, p, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		d.mapping(n, path, depth, out, map[string]int{})
		return out
	case yaml.ScalarNode:
		return d.scalar(n)
	}
	return nil
}

// mapping adds the pairs of n to out; seen holds the line of each key
// already set, to report duplicates.
func (d *document) mapping(n *yaml.Node, path string, depth int, out map[string]any, seen map[string]int) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		d.pair(k, v, path, depth, out, seen)
	}
	// Keys written in the mapping win over merged ones, whatever the order.
	for _, m := range merges {
		depth = d.merge(m, path, depth, out, seen)
	}
}

// pair adds the key k with the value v to out, unless the mapping set k
// already.
func (d *document) pair(k, v *yaml.Node, path string, depth int, out map[string]any, seen map[string]int) {
	key := k.Value
	p := key
	if path != "" {
		p = path + "." + key
	}
	if first, dup := seen[key]; dup {
		d.problems = append(d.problems, &FieldError{Field: p, Reason: fmt.Sprintf("duplicate key (first set on line %d)", first), Line: k.Line})
		return
	}
	seen[key] = k.Line
	d.lines[p] = k.Line
	out[key] = d.convert(v, p, depth+1)
}

// merge adds to out the keys of the mappings the merge key << m refers to
// (one, or a sequence of them) that out does not hold yet. It returns
// depth grown by the aliases it followed, which bound alias chains.
func (d *document) merge(m *yaml.Node, path string, depth int, out map[string]any, seen map[string]int) int {
	src := m
	for src.Kind == yaml.AliasNode && depth < maxDepth {
		src, depth = src.Alias, depth+1
	}
	var sources []*yaml.Node
	switch src.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{src}
	case yaml.SequenceNode:
		sources = src.Content
	}
	for _, s := range sources {
		for s.Kind == yaml.AliasNode && depth < maxDepth {
			s, depth = s.Alias, depth+1
		}
		if s.Kind != yaml.MappingNode {
			d.problems = append(d.problems, &FieldError{Field: orRoot(path), Reason: "merge key << must refer to mappings", Line: m.Line})
			continue
		}
		merged := map[string]any{}
		d.mapping(s, path, depth+1, merged, map[string]int{})
		for k, v := range merged {
			if _, set := seen[k]; !set {
				seen[k] = s.Line
				out[k] = v
			}
		}
	}
	return depth
}

func (d *document) scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil {
			// JSON has no infinities: .inf stays the string it was.
			if !math.IsInf(f, 0) && !math.IsNaN(f) {
				return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
			}
		}
	}
	// Strings, and timestamps and binaries kept as written.
	return n.Value
}

func orRoot(path string) string {
	if path == "" {
		return "(file)"
	}
	return path
}

// schemaChecker validates documents against the compiled schema.
type schemaChecker struct {
	schema *jsonschema.Schema
	doc    any
	print  *message.Printer
}

// newSchemaChecker compiles the embedded schema. It is compiled per use
// rather than kept in a package variable: it takes well under a millisecond
// and a config is read once per process.
func newSchemaChecker() (*schemaChecker, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	return &schemaChecker{schema: sch, doc: doc, print: message.NewPrinter(language.English)}, nil
}

// check returns the problems of d: those found while converting it, then
// every schema violation, each at the key path it concerns.
func (sc *schemaChecker) check(d *document) []*FieldError {
	problems := append([]*FieldError(nil), d.problems...)
	if d.value == nil {
		// An empty file sets nothing.
		return problems
	}
	err := sc.schema.Validate(d.value)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		sc.collect(ve, d, &problems)
	} else if err != nil {
		problems = append(problems, &FieldError{Field: "(file)", Reason: err.Error()})
	}
	return problems
}

// collect walks the error tree down to its leaves, the violations
// themselves; the inner nodes only say that a subschema failed.
func (sc *schemaChecker) collect(ve *jsonschema.ValidationError, d *document, out *[]*FieldError) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			sc.collect(c, d, out)
		}
		return
	}
	for _, v := range sc.violations(ve, d.value) {
		*out = append(*out, &FieldError{Field: orRoot(v.field), Reason: v.reason, Line: d.line(v.field)})
	}
}

// violation is what is wrong with one field of the file.
type violation struct{ field, reason string }

// violations says in the file's terms what a leaf of the error tree found
// wrong: one violation, or one per key for unknown and missing keys.
func (sc *schemaChecker) violations(ve *jsonschema.ValidationError, value any) []violation {
	field := fieldPath(value, ve.InstanceLocation)
	one := func(reason string) []violation { return []violation{{field, reason}} }
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		return sc.unknownKeys(ve, field, k.Properties)
	case *kind.Required:
		var out []violation
		for _, m := range k.Missing {
			out = append(out, violation{join(field, m), "required"})
		}
		return out
	case *kind.Type:
		return one(fmt.Sprintf("want %s, got %s", strings.Join(k.Want, " or "), k.Got))
	case *kind.Pattern:
		if expect := sc.keyword(ve.SchemaURL, "x-expect"); expect != "" {
			return one(fmt.Sprintf("%q is not %s", k.Got, expect))
		}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return one(fmt.Sprintf("%s is not one of %s", display(k.Got), strings.Join(want, ", ")))
	case *kind.MinItems:
		if k.Want == 1 {
			return one("must not be empty")
		}
		return one(fmt.Sprintf("must list at least %d items", k.Want))
	case *kind.MinLength:
		return one(fmt.Sprintf("must be at least %d character(s) long", k.Want))
	case *kind.UniqueItems:
		item := func(i int) string {
			return fieldPath(value, append(append([]string{}, ve.InstanceLocation...), strconv.Itoa(i)))
		}
		return []violation{{item(k.Duplicates[1]), "repeats " + item(k.Duplicates[0])}}
	}
	return one(ve.ErrorKind.LocalizedString(sc.print))
}

// unknownKeys reports each of keys as unknown in the mapping at field,
// naming the keys the schema there knows.
func (sc *schemaChecker) unknownKeys(ve *jsonschema.ValidationError, field string, keys []string) []violation {
	reason := "unknown key"
	if known := sc.knownKeys(ve.SchemaURL); len(known) > 0 {
		reason += "; known keys are " + strings.Join(known, ", ")
	}
	out := make([]violation, 0, len(keys))
	for _, p := range keys {
		out = append(out, violation{join(field, p), reason})
	}
	return out
}

// display shows a value of the file as JSON would: strings quoted.
func display(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldPath turns a JSON pointer's tokens into the key path FieldError
// uses: member.sockets.l1, member.start[0].
func fieldPath(v any, tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		switch cur := v.(type) {
		case []any:
			sb.WriteString("[" + t + "]")
			if i, err := strconv.Atoi(t); err == nil && i >= 0 && i < len(cur) {
				v = cur[i]
			} else {
				v = nil
			}
		case map[string]any:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(t)
			v = cur[t]
		default:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(t)
			v = nil
		}
	}
	return sb.String()
}

// schemaAt returns the subschema a schema URL's fragment points to.
func (sc *schemaChecker) schemaAt(u string) map[string]any {
	_, frag, _ := strings.Cut(u, "#")
	v := sc.doc
	for _, tok := range strings.Split(frag, "/")[1:] {
		tok, _ = url.PathUnescape(tok)
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[tok]
	}
	m, _ := v.(map[string]any)
	return m
}

func (sc *schemaChecker) keyword(schemaURL, name string) string {
	s, _ := sc.schemaAt(schemaURL)[name].(string)
	return s
}

// knownKeys lists the properties a schema declares, sorted.
func (sc *schemaChecker) knownKeys(schemaURL string) []string {
	props, _ := sc.schemaAt(schemaURL)["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
