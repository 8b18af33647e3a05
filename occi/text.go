package occi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The OCCI text rendering's header names, as the spec spells them. Names
// are matched without regard to case, as HTTP header names are.
const (
	hdrCategory  = "Category"
	hdrLink      = "Link"
	hdrAttribute = "X-OCCI-Attribute"
	hdrLocation  = "X-OCCI-Location"
)

var textHeaders = []string{hdrCategory, hdrLink, hdrAttribute, hdrLocation}

// textDoc is a request in text/plain, text/occi or text/uri-list: its
// lines sorted by header, each remembering where it came from so a refusal
// can name it.
type textDoc struct {
	categories []textCategory
	links      []textLink
	attrs      []textAttr
	locations  []textLocation
}

func (d *textDoc) empty() bool {
	return len(d.categories) == 0 && len(d.links) == 0 && len(d.attrs) == 0 && len(d.locations) == 0
}

// textCategory is one Category value.
type textCategory struct {
	where               string
	term, scheme, class string
	title, location     string
	rel, actions        []string
	attrs               []attrSpec
	// has* tell a parameter given empty from one not given, which
	// PUT on the query interface needs: absent leaves the stored value.
	hasRel, hasAttrs, hasActions bool
}

func (c textCategory) id() string { return c.scheme + c.term }

// attrSpec is one member of a Category's attributes="…" list.
type attrSpec struct {
	name                string
	immutable, required bool
}

// textLink is one Link value: an action or a link to another resource.
type textLink struct {
	where      string
	target     string
	rel        []string
	self       string
	categories []string
	attrs      []textAttr
}

// textAttr is one attribute, name=value.
type textAttr struct {
	where string
	name  string
	value any
}

type textLocation struct {
	where string
	url   string
}

var (
	attrNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)
	numberPattern   = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

var categoryParams = map[string]bool{"scheme": true, "class": true, "title": true, "rel": true, "location": true, "attributes": true, "actions": true}

// parseTextBody reads a text/plain body. Lines are "Name: value"; a line
// starting with white space that does not start a known header continues
// the previous one, as folded HTTP headers do.
func parseTextBody(body string) (*textDoc, error) {
	type logical struct {
		n    int
		text string
	}
	var lines []logical
	for i, l := range strings.Split(body, "\n") {
		l = strings.TrimRight(l, "\r")
		if err := checkUTF8Text(fmt.Sprintf("line %d", i+1), l); err != nil {
			return nil, err
		}
		trimmed := strings.TrimSpace(l)
		if trimmed == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(lines) > 0 && !startsHeader(trimmed) {
			lines[len(lines)-1].text += " " + trimmed
			continue
		}
		lines = append(lines, logical{i + 1, trimmed})
	}
	doc := &textDoc{}
	for _, l := range lines {
		where := fmt.Sprintf("line %d", l.n)
		name, value, ok := strings.Cut(l.text, ":")
		if !ok {
			return nil, BadRequest(where, "%q is not a \"Name: value\" line", clip(l.text))
		}
		canonical := headerName(strings.TrimSpace(name))
		if canonical == "" {
			return nil, BadRequest(where, "unknown header %q; a text/plain body holds Category, Link, X-OCCI-Attribute and X-OCCI-Location lines", clip(name))
		}
		if err := doc.add(canonical, where, value); err != nil {
			return nil, err
		}
	}
	return doc, doc.checkDuplicates()
}

// parseTextHeaders reads the OCCI headers of a text/occi request. Several
// values may share one header, separated by commas.
func parseTextHeaders(h http.Header) (*textDoc, error) {
	doc := &textDoc{}
	for _, name := range textHeaders {
		for i, v := range h.Values(name) {
			where := name + " header"
			if len(h.Values(name)) > 1 {
				where = fmt.Sprintf("%s header %d", name, i+1)
			}
			if err := checkUTF8Text(where, v); err != nil {
				return nil, err
			}
			if err := doc.add(name, where, v); err != nil {
				return nil, err
			}
		}
	}
	return doc, doc.checkDuplicates()
}

// parseURIList reads a text/uri-list body: one URL a line, # comments.
func parseURIList(body string) (*textDoc, error) {
	doc := &textDoc{}
	for i, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		where := fmt.Sprintf("line %d", i+1)
		if err := checkUTF8Text(where, l); err != nil {
			return nil, err
		}
		if err := checkURL(where, l); err != nil {
			return nil, err
		}
		doc.locations = append(doc.locations, textLocation{where, l})
	}
	return doc, nil
}

func startsHeader(line string) bool {
	name, _, ok := strings.Cut(line, ":")
	return ok && headerName(strings.TrimSpace(name)) != ""
}

func headerName(name string) string {
	for _, h := range textHeaders {
		if strings.EqualFold(h, name) {
			return h
		}
	}
	return ""
}

// clip shortens what an error quotes back.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	cut := 77
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (d *textDoc) add(name, where, value string) error {
	items := splitList(value)
	if len(items) == 0 {
		return BadRequest(where, "%s has no value", name)
	}
	for _, item := range items {
		switch name {
		case hdrCategory:
			c, err := parseCategoryValue(where, item)
			if err != nil {
				return err
			}
			d.categories = append(d.categories, c)
		case hdrLink:
			l, err := parseLinkValue(where, item)
			if err != nil {
				return err
			}
			d.links = append(d.links, l)
		case hdrAttribute:
			a, err := parseAttributeValue(where, item)
			if err != nil {
				return err
			}
			d.attrs = append(d.attrs, a)
		case hdrLocation:
			if err := checkURL(where, item); err != nil {
				return err
			}
			d.locations = append(d.locations, textLocation{where, item})
		}
	}
	return nil
}

// checkDuplicates refuses a category or an attribute given twice.
func (d *textDoc) checkDuplicates() error {
	cats := map[string]string{}
	for _, c := range d.categories {
		if first, dup := cats[c.id()]; dup {
			return BadRequest(c.where, "Category %s appears twice (first at %s)", c.id(), first)
		}
		cats[c.id()] = c.where
	}
	attrs := map[string]string{}
	for _, a := range d.attrs {
		if first, dup := attrs[a.name]; dup {
			return BadRequest(a.where, "attribute %s appears twice (first at %s)", a.name, first)
		}
		attrs[a.name] = a.where
	}
	return nil
}

func checkURL(where, u string) error {
	if strings.ContainsAny(u, " \t\"<>") || !(strings.HasPrefix(u, "/") || strings.Contains(u, "://")) {
		return BadRequest(where, "%q is not a URL or an absolute path", clip(u))
	}
	return nil
}

// splitParams splits a header value at the semicolons outside quoted
// strings and <URIs>.
func splitParams(where, s string) ([]string, error) {
	var out []string
	start := 0
	inQuote, escaped, inAngle := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inQuote = false
			}
		case inAngle:
			if c == '>' {
				inAngle = false
			}
		case c == '"':
			inQuote = true
		case c == '<':
			inAngle = true
		case c == ';':
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if inQuote {
		return nil, BadRequest(where, "unterminated quoted string in %q", clip(s))
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}

// param splits name=value and checks the name: known, lower case, once.
func param(where, what, p string, known map[string]bool, seen map[string]bool) (string, string, error) {
	k, v, ok := strings.Cut(p, "=")
	k = strings.TrimSpace(k)
	lk := strings.ToLower(k)
	switch {
	case k == "":
		return "", "", BadRequest(where, "%s has a parameter without a name: %q", what, clip(p))
	case !ok:
		return "", "", BadRequest(where, "parameter %s of %s has no value", k, what)
	case known != nil && !known[lk]:
		return "", "", BadRequest(where, "unknown parameter %q of %s", k, what)
	case known != nil && k != lk:
		return "", "", BadRequest(where, "parameter %q of %s must be written in lower case: %s", k, what, lk)
	case seen[lk]:
		return "", "", BadRequest(where, "parameter %s of %s appears twice", lk, what)
	}
	seen[lk] = true
	val, err := unquoteParam(where, lk, strings.TrimSpace(v))
	return lk, val, err
}

// unquoteParam reads a parameter value: a quoted string, or a bare token.
func unquoteParam(where, name, v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		s, rest, err := unquote(v)
		if err != nil {
			return "", BadRequest(where, "parameter %s: %v", name, err)
		}
		if strings.TrimSpace(rest) != "" {
			return "", BadRequest(where, "parameter %s: text after the closing quote: %q", name, clip(rest))
		}
		return s, nil
	}
	if v == "" {
		return "", BadRequest(where, "parameter %s has no value", name)
	}
	if strings.ContainsAny(v, " \t\"") {
		return "", BadRequest(where, "parameter %s: %q must be quoted", name, clip(v))
	}
	return v, nil
}

// unquote reads the quoted string at the start of s, with backslash
// escapes, and returns what follows it.
func unquote(s string) (string, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i >= len(s) {
				return "", "", fmt.Errorf("unterminated quoted string %s", clip(s))
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 < len(s) {
					if r, err := strconv.ParseUint(s[i+1:i+5], 16, 16); err == nil {
						b.WriteRune(rune(r))
						i += 4
						continue
					}
				}
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated quoted string %s", clip(s))
}

// quote renders s as a quoted string that unquote reads back.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// parseCategoryValue reads term; scheme="…"; class="…"; and the optional
// title, rel, location, attributes and actions.
func parseCategoryValue(where, s string) (textCategory, error) {
	parts, err := splitParams(where, s)
	if err != nil {
		return textCategory{}, err
	}
	c := textCategory{where: where, term: parts[0]}
	if c.term == "" || strings.ContainsAny(c.term, "=\" \t") {
		return c, BadRequest(where, "Category %q must start with its term", clip(s))
	}
	what := "Category " + c.term
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		k, v, err := param(where, what, p, categoryParams, seen)
		if err != nil {
			return c, err
		}
		switch k {
		case "scheme":
			c.scheme = v
		case "class":
			c.class = v
		case "title":
			c.title = v
		case "rel":
			c.rel, c.hasRel = strings.Fields(v), true
		case "location":
			c.location = v
		case "actions":
			c.actions, c.hasActions = strings.Fields(v), true
		case "attributes":
			if c.attrs, err = parseAttrSpecs(where, what, v); err != nil {
				return c, err
			}
			c.hasAttrs = true
		}
	}
	switch {
	case c.scheme == "":
		return c, BadRequest(where, "%s has no scheme", what)
	case strings.ContainsAny(c.scheme, " \t") || !strings.Contains(c.scheme, ":"):
		return c, BadRequest(where, "the scheme of %s, %q, is not a URI", what, c.scheme)
	case c.class == "":
		return c, BadRequest(where, "%s has no class", what)
	case c.class != ClassKind && c.class != ClassMixin && c.class != ClassAction:
		lc := strings.ToLower(c.class)
		if lc == ClassKind || lc == ClassMixin || lc == ClassAction {
			return c, BadRequest(where, "class %q of %s must be written in lower case: %s", c.class, what, lc)
		}
		return c, BadRequest(where, "class %q of %s is not kind, mixin or action", c.class, what)
	}
	return c, nil
}

// parseAttrSpecs reads "a.b c.d{immutable} e{required immutable}".
func parseAttrSpecs(where, what, s string) ([]attrSpec, error) {
	var out []attrSpec
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '{' {
			j++
		}
		spec := attrSpec{name: s[i:j]}
		if !attrNamePattern.MatchString(spec.name) {
			return nil, BadRequest(where, "attribute name %q in the attributes of %s is not a dotted name", clip(spec.name), what)
		}
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return nil, BadRequest(where, "attribute %s of %s: unclosed {", spec.name, what)
			}
			for _, p := range strings.Fields(s[j+1 : j+end]) {
				switch p {
				case "immutable":
					spec.immutable = true
				case "required":
					spec.required = true
				case "mutable":
				default:
					return nil, BadRequest(where, "attribute %s of %s: unknown property %q (immutable or required)", spec.name, what, p)
				}
			}
			j += end + 1
		}
		out = append(out, spec)
		i = j
	}
	return out, nil
}

// parseAttributeValue reads name=value. Values are quoted strings,
// numbers, true, false, or JSON arrays and objects.
func parseAttributeValue(where, s string) (textAttr, error) {
	name, raw, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	raw = strings.TrimSpace(raw)
	if name == "" {
		return textAttr{}, BadRequest(where, "attribute %q has no name", clip(s))
	}
	if !attrNamePattern.MatchString(name) {
		return textAttr{}, BadRequest(where, "%q is not an attribute name", clip(name))
	}
	if !ok || raw == "" || raw == ";" {
		return textAttr{}, BadRequest(where, "attribute %s has no value", name)
	}
	v, err := parseValue(where, name, raw)
	return textAttr{where: where, name: name, value: v}, err
}

func parseValue(where, name, raw string) (any, error) {
	if strings.HasPrefix(raw, `"`) {
		s, rest, err := unquote(raw)
		if err != nil {
			return nil, BadRequest(where, "attribute %s: %v", name, err)
		}
		if rest = strings.TrimSpace(rest); rest != "" && rest != ";" {
			return nil, BadRequest(where, "attribute %s: text after the closing quote: %q", name, clip(rest))
		}
		return s, nil
	}
	raw = strings.TrimSpace(strings.TrimSuffix(raw, ";"))
	switch {
	case raw == "true":
		return true, nil
	case raw == "false":
		return false, nil
	case numberPattern.MatchString(raw):
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, BadRequest(where, "attribute %s: number %s is out of range", name, raw)
		}
		return f, nil
	case strings.HasPrefix(raw, "[") || strings.HasPrefix(raw, "{"):
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, BadRequest(where, "attribute %s: malformed JSON value: %v", name, err)
		}
		return v, nil
	}
	return nil, BadRequest(where, "attribute %s: value %q must be a quoted string, a number, true, false or a JSON array or object", name, clip(raw))
}

// parseLinkValue reads <URI>; rel="…"; self="…"; category="…"; and
// attributes.
func parseLinkValue(where, s string) (textLink, error) {
	l := textLink{where: where}
	if !strings.HasPrefix(s, "<") {
		return l, BadRequest(where, "Link %q must start with <URI>", clip(s))
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return l, BadRequest(where, "Link %q: unclosed <", clip(s))
	}
	l.target = strings.TrimSpace(s[1:end])
	if l.target == "" {
		return l, BadRequest(where, "Link %q has an empty URI", clip(s))
	}
	rest := strings.TrimSpace(s[end+1:])
	if rest != "" && !strings.HasPrefix(rest, ";") {
		return l, BadRequest(where, "Link %q: expected ; after <%s>", clip(s), l.target)
	}
	parts, err := splitParams(where, strings.TrimPrefix(rest, ";"))
	if err != nil {
		return l, err
	}
	what := "Link <" + l.target + ">"
	seen := map[string]bool{}
	hasRel := false
	for _, p := range parts {
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		switch lk := strings.TrimSpace(k); lk {
		case "rel", "self", "category":
			_, v, err := param(where, what, p, map[string]bool{lk: true}, seen)
			if err != nil {
				return l, err
			}
			switch lk {
			case "rel":
				l.rel, hasRel = strings.Fields(v), true
			case "self":
				l.self = v
			case "category":
				l.categories = strings.Fields(v)
			}
		default:
			a, err := parseAttributeValue(where, p)
			if err != nil {
				return l, err
			}
			if seen[a.name] {
				return l, BadRequest(where, "attribute %s of %s appears twice", a.name, what)
			}
			seen[a.name] = true
			l.attrs = append(l.attrs, a)
		}
	}
	if !hasRel || len(l.rel) == 0 {
		return l, BadRequest(where, "%s has no rel", what)
	}
	return l, nil
}

// textOut is an answer in a text rendering: header lines in order.
type textOut struct {
	lines [][2]string
}

func (t *textOut) add(name, value string) { t.lines = append(t.lines, [2]string{name, value}) }

// write sends the lines in the body (text/plain), as headers with an empty
// body (text/occi), or, for text/uri-list, the locations alone.
func (t *textOut) write(w http.ResponseWriter, rend rendering, status int) error {
	switch rend {
	case renderHeaders:
		h := w.Header()
		for _, l := range t.lines {
			// Set the key as the spec spells it: Header.Add would write
			// X-Occi-Attribute.
			h[l[0]] = append(h[l[0]], l[1])
		}
		h.Set("Content-Type", mediaTextOCCI)
		w.WriteHeader(status)
		return nil
	case renderURIList:
		var buf bytes.Buffer
		for _, l := range t.lines {
			if l[0] == hdrLocation {
				buf.WriteString(l[1] + "\n")
			}
		}
		w.Header().Set("Content-Type", mediaURIList)
		w.WriteHeader(status)
		_, err := w.Write(buf.Bytes())
		return err
	default:
		var buf bytes.Buffer
		for _, l := range t.lines {
			buf.WriteString(l[0] + ": " + l[1] + "\n")
		}
		w.Header().Set("Content-Type", mediaTextPlain)
		w.WriteHeader(status)
		_, err := w.Write(buf.Bytes())
		return err
	}
}

// renderValue writes an attribute value: strings quoted, numbers and
// booleans bare, arrays and objects as JSON. Nil has no rendering.
func renderValue(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		return quote(t), true
	case bool:
		return strconv.FormatBool(t), true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSpace(buf.String()), true
}

// categoryValue renders a category: term, scheme, class and title, and
// with full the rest of its definition, as the query interface shows it.
// Its location is the path, as in every rendering: OCCI clients build a
// kind's URL as endpoint + location, so an absolute URL there would be
// joined twice. Entity locations stay absolute.
func categoryValue(c *Category, full bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; scheme=%s; class=%s", c.Term, quote(c.Scheme), quote(c.Class))
	if c.Title != "" {
		fmt.Fprintf(&b, "; title=%s", quote(c.Title))
	}
	if !full {
		return b.String()
	}
	if len(c.Related) > 0 {
		fmt.Fprintf(&b, "; rel=%s", quote(strings.Join(c.Related, " ")))
	}
	if c.Location != "" {
		fmt.Fprintf(&b, "; location=%s", quote(c.Location))
	}
	if defs := Definitions(c.Attributes); len(defs) > 0 {
		names := make([]string, 0, len(defs))
		for _, d := range defs {
			var props []string
			if !d.Mutable {
				props = append(props, "immutable")
			}
			if d.Required {
				props = append(props, "required")
			}
			if len(props) > 0 {
				names = append(names, d.Name+"{"+strings.Join(props, " ")+"}")
			} else {
				names = append(names, d.Name)
			}
		}
		fmt.Fprintf(&b, "; attributes=%s", quote(strings.Join(names, " ")))
	}
	if len(c.Actions) > 0 {
		fmt.Fprintf(&b, "; actions=%s", quote(strings.Join(c.Actions, " ")))
	}
	return b.String()
}

// attrLines renders attributes, sorted by name, as name=value.
func attrLines(flat map[string]any) []string {
	names := make([]string, 0, len(flat))
	for n := range flat {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		if v, ok := renderValue(flat[n]); ok {
			out = append(out, n+"="+v)
		}
	}
	return out
}
