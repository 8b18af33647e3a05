package occi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input checks that keep hostile or broken requests from being stored in
// a form nobody asked for: text that is not UTF-8 (which JSON decoding
// would quietly turn into U+FFFD), category locations that are not plain
// paths, and ids longer than the server takes.

// maxIDLength is the longest entity id, in bytes.
const maxIDLength = 255

// checkUTF8JSON refuses a JSON document holding bytes that are not UTF-8,
// naming the member they are in.
func checkUTF8JSON(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	bad := invalidAt(data)
	where, inKey := jsonPathAt(data, bad)
	what := "the value of " + fieldName(where)
	if inKey {
		what = "a member name in " + fieldName(where)
	}
	return BadRequest(where, "%s is not valid UTF-8 (byte %d of the body); send text in UTF-8", what, bad)
}

// invalidAt is the offset of the first byte of data that is not part of a
// valid UTF-8 sequence.
func invalidAt(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// jsonPathAt walks the tokens of data to the one covering offset and
// returns its path (resources[0].attributes.title), and whether the offset
// is in a member name rather than a value. A document that does not parse
// that far gives the path reached.
func jsonPathAt(data []byte, offset int) (path string, inKey bool) {
	var stack []*jsonFrame
	pathOf := func(n int) string {
		var b strings.Builder
		for _, f := range stack[:n] {
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		end := int(dec.InputOffset())
		if err != nil {
			return pathOf(len(stack)), false
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].advance()
			}
			continue
		}
		if top != nil && top.obj && top.wantsKey {
			top.key = tok.(string)
			top.wantsKey = false
			if offset < end {
				return pathOf(len(stack) - 1), true
			}
			continue
		}
		if offset < end {
			return pathOf(len(stack)), false
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{obj: true, wantsKey: true})
		case json.Delim('['):
			stack = append(stack, &jsonFrame{})
		default:
			if top != nil {
				top.advance()
			}
		}
	}
}

// jsonFrame is one object or array jsonPathAt is in: the member or
// element it is at.
type jsonFrame struct {
	obj      bool
	key      string
	index    int
	wantsKey bool
}

// advance moves a frame past one value.
func (f *jsonFrame) advance() {
	if f.obj {
		f.wantsKey = true
	} else {
		f.index++
	}
}

// checkUTF8Text refuses a text rendering's line (or header value) that is
// not UTF-8, naming the attribute it sets when it is an X-OCCI-Attribute.
func checkUTF8Text(where, line string) error {
	if utf8.ValidString(line) {
		return nil
	}
	field := where
	if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), hdrAttribute) {
		line = value
	}
	if attr, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && utf8.ValidString(attr) && attrNamePattern.MatchString(attr) {
		field = attr
	}
	return BadRequest(field, "%s is not valid UTF-8; send text in UTF-8", where)
}

// reservedLocations cannot hold kinds or mixins: the query interface and
// the service's own endpoints live there.
var reservedLocations = []string{"/-/", "/.well-known/", "/health/", "/metrics/", "/events/", "/ui/"}

// checkLocation refuses a kind or mixin location that is not a clean
// absolute path: entities live below it and their URLs must mean what
// they say to every client, proxy and file system path an operator maps
// them to.
func checkLocation(loc string) error {
	switch {
	case !utf8.ValidString(loc):
		return fmt.Errorf("location %q is not valid UTF-8", loc)
	case strings.ContainsAny(loc, "?#%\\"):
		return fmt.Errorf("location %q holds one of ? # %% \\; a location is a plain path such as /compute/", clip(loc))
	case strings.IndexFunc(loc, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("location %q holds white space or a control character", clip(loc))
	}
	for _, seg := range strings.Split(strings.Trim(loc, "/"), "/") {
		switch seg {
		case "":
			return fmt.Errorf("location %q has an empty segment (//)", clip(loc))
		case ".", "..":
			return fmt.Errorf("location %q has a %q segment; a location is a clean absolute path", clip(loc), seg)
		}
	}
	for _, r := range reservedLocations {
		if strings.HasPrefix(loc, r) {
			return fmt.Errorf("location %s is reserved: %s belongs to the server", clip(loc), r)
		}
	}
	return nil
}

// checkID refuses an entity id that is too long, without quoting it, or
// that holds other characters than letters, digits and _.:~@-.
func checkID(field, id string) error {
	if len(id) > maxIDLength {
		return BadRequest(field, "the id is %d bytes long; ids are at most %d bytes", len(id), maxIDLength)
	}
	if !idPattern.MatchString(id) {
		return BadRequest(field, "id %q may hold only letters, digits and _.:~@- and start with a letter or digit", id)
	}
	return nil
}

// checkMixinList refuses a mixin listed twice in one entity.
func checkMixinList(field string, mixins []string) error {
	first := map[string]int{}
	for i, m := range mixins {
		m = strings.TrimSpace(m)
		if j, dup := first[m]; dup {
			return BadRequest(fmt.Sprintf("%s.mixins[%d]", field, i), "mixin %s appears twice (first as mixins[%d]); list each mixin once", m, j)
		}
		first[m] = i
	}
	return nil
}

// checkEntityLists refuses a resources or links list holding anything but
// objects: a null entity is no entity, not one made of defaults.
func checkEntityLists(raw map[string]json.RawMessage) error {
	for _, key := range []string{"resources", "links"} {
		list, ok := raw[key]
		if !ok {
			continue
		}
		var items []json.RawMessage
		if json.Unmarshal(list, &items) != nil {
			continue // not a list: decoding names the member
		}
		for i, item := range items {
			if t := bytes.TrimSpace(item); len(t) == 0 || t[0] != '{' {
				return BadRequest(fmt.Sprintf("%s[%d]", key, i), "%s[%d] must be an object describing a %s, not %s", key, i, strings.TrimSuffix(key, "s"), clip(string(t)))
			}
		}
	}
	return nil
}
