package occi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
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

// fuzzRequest is a request carrying data in the rendering x reads, as the
// readers see it once endpoint has negotiated.
func fuzzRequest(data []byte, in rendering, hdr http.Header) *http.Request {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(data))
	for k, v := range hdr {
		r.Header[k] = v
	}
	return withExchange(r, &exchange{in: in})
}

// readAll runs every reader of a request rendering over the same input:
// entities, categories, a category filter and an action.
func readAll(t *testing.T, s *Server, mk func() *http.Request) {
	t.Helper()
	if in, _, err := readEntities(mk()); err == nil {
		for _, ti := range in.entities() {
			_ = s.normalizeAttrs(ti.in.Attributes)
			_ = s.filterConds(ti.in, ti.field)
		}
	}
	if doc, _, err := readCategories(mk()); err == nil {
		for _, c := range doc.all() {
			_ = renderCategory12(c)
			_ = categoryValue(c, true)
		}
	}
	_, _, _ = readCategoryFilter(mk())
	_, _, _ = s.readAction(mk())
}

// checkAttrRoundTrip renders each parsed attribute as the server answers
// it and parses it again: the value must come back unchanged.
func checkAttrRoundTrip(t *testing.T, attrs []textAttr) {
	t.Helper()
	for _, a := range attrs {
		if s, ok := a.value.(string); ok && !utf8.ValidString(s) {
			continue
		}
		v, ok := renderValue(a.value)
		if !ok {
			continue
		}
		back, err := parseAttributeValue("fuzz", a.name+"="+v)
		if err != nil {
			t.Fatalf("%s=%s does not parse back: %v", a.name, v, err)
		}
		if !reflect.DeepEqual(back.value, a.value) {
			t.Fatalf("%s: %#v rendered %s reads back as %#v", a.name, a.value, v, back.value)
		}
	}
}

func goldenBodies(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", dir, "*.http"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if _, body, ok := strings.Cut(string(data), "\n\n"); ok {
			f.Add([]byte(body))
		}
	}
}

// FuzzTextPlain feeds arbitrary text/plain bodies (and text/uri-list ones)
// through the line parser and every reader. Nothing may panic, and every
// attribute value must survive the server's rendering of it.
func FuzzTextPlain(f *testing.F) {
	goldenBodies(f, "text-plain")
	goldenBodies(f, "uri-list")
	f.Add([]byte("Category: a;\n  scheme=\"http://x#\";\n\tclass=kind\nLink: <a>; rel=\"b\"; c=[1,{\"d\":\"e\"}]\nX-OCCI-Attribute: s=\"\\u00e9\\\\\", n=-0.0e-0\n"))
	s := &Server{publicURL: &url.URL{Scheme: "http", Host: "fuzz"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseTextBody(string(data))
		if err == nil {
			checkAttrRoundTrip(t, doc.attrs)
			for _, l := range doc.links {
				checkAttrRoundTrip(t, l.attrs)
			}
		} else if statusOf(err) != http.StatusBadRequest {
			t.Fatalf("parse error is not a 400: %v", err)
		}
		_, _ = parseURIList(string(data))
		readAll(t, s, func() *http.Request { return fuzzRequest(data, renderText, nil) })
		readAll(t, s, func() *http.Request { return fuzzRequest(data, renderURIList, nil) })
	})
}

// FuzzTextOCCI feeds arbitrary text/occi headers, one "Name: value" a line
// of the input, through the header parser and every reader.
func FuzzTextOCCI(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "text-occi", "*.http"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("category: a; scheme=\"http://x#\"; class=\"mixin\", b; scheme=\"http://x#\"; class=\"mixin\"\nX-OCCI-Location: /a, http://h/b\n"))
	s := &Server{publicURL: &url.URL{Scheme: "http", Host: "fuzz"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		hdr := http.Header{}
		for _, line := range strings.Split(string(data), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && !strings.ContainsAny(name, " \t\r") && name != "" {
				hdr.Add(name, strings.TrimSpace(value))
			}
		}
		doc, err := parseTextHeaders(hdr)
		if err == nil {
			checkAttrRoundTrip(t, doc.attrs)
		} else if statusOf(err) != http.StatusBadRequest {
			t.Fatalf("parse error is not a 400: %v", err)
		}
		readAll(t, s, func() *http.Request { return fuzzRequest(nil, renderHeaders, hdr) })
	})
}

// FuzzJSON feeds arbitrary JSON documents, of either shape, through every
// reader, and renders what the query interface reads in OCCI 1.2 JSON.
func FuzzJSON(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	goldenBodies(f, "json12")
	f.Add([]byte(`{"kind":"k#x","attributes":{"occi.core.id":"a","occi":{"core":{"title":"t"}}},"links":[{"target":{"location":"/b"}},"x"]}`))
	f.Add([]byte(`{"action":"a#b","attributes":{"x.y":1}}`))
	s := &Server{publicURL: &url.URL{Scheme: "http", Host: "fuzz"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		readAll(t, s, func() *http.Request { return fuzzRequest(data, renderPyOCNI, nil) })
		if cats, err := ParseCategories(data); err == nil {
			_ = renderModel12(cats)
		}
	})
}
