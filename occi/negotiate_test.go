package occi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		accept []string
		want12 bool
		full   bool
		want   rendering
		err    bool
	}{
		{name: "no Accept is pyOCNI JSON", want: renderPyOCNI},
		{name: "no Accept after a 1.2 request", want12: true, want: renderJSON12},
		{name: "any", accept: []string{"*/*"}, want: renderPyOCNI},
		{name: "any after a 1.2 request", accept: []string{"*/*"}, want12: true, want: renderJSON12},
		{name: "occi+json", accept: []string{"application/occi+json"}, want: renderPyOCNI},
		{name: "json alias", accept: []string{"application/json"}, want: renderPyOCNI},
		{name: "version 1.2", accept: []string{"application/occi+json; version=1.2"}, want: renderJSON12},
		{name: "json with version 1.2", accept: []string{"application/json;version=1.2"}, want: renderJSON12},
		{name: "another version is pyOCNI", accept: []string{"application/occi+json; version=1.1"}, want12: true, want: renderPyOCNI},
		{name: "text/plain", accept: []string{"text/plain"}, want: renderText},
		{name: "text/occi", accept: []string{"text/occi"}, want: renderHeaders},
		{name: "text/*", accept: []string{"text/*"}, want: renderText},
		{name: "uri-list for locations", accept: []string{"text/uri-list"}, want: renderURIList},
		{name: "uri-list cannot carry an entity", accept: []string{"text/uri-list"}, full: true, err: true},
		{name: "uri-list falls back", accept: []string{"text/uri-list, text/plain;q=0.5"}, full: true, want: renderText},
		{name: "quality decides", accept: []string{"text/plain;q=0.4, text/occi;q=0.9"}, want: renderHeaders},
		{name: "client order breaks ties", accept: []string{"text/occi, text/plain"}, want: renderHeaders},
		{name: "specific range wins", accept: []string{"text/plain;q=0, */*"}, want: renderPyOCNI},
		{name: "zero quality refuses", accept: []string{"text/plain;q=0"}, err: true},
		{name: "several headers", accept: []string{"text/html", "text/occi"}, want: renderHeaders},
		{name: "problem+json", accept: []string{"application/problem+json"}, want: renderPyOCNI},
		{name: "nothing acceptable", accept: []string{"text/html"}, err: true},
		{name: "unparseable", accept: []string{"garbage;;"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, a := range tc.accept {
				r.Header.Add("Accept", a)
			}
			x := newExchange(r)
			x.want12 = tc.want12
			got, err := x.answer(tc.full)
			if tc.err {
				if err == nil || statusOf(err) != http.StatusNotAcceptable {
					t.Fatalf("answer = %v, %v; want 406", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("answer = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestReadContentType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ct, body string
		hdr            []string
		want           rendering
		want12         bool
		status         int
	}{
		{name: "none", want: renderPyOCNI},
		{name: "none with a body is JSON", body: "{}", want: renderPyOCNI},
		{name: "none with OCCI headers is text/occi", hdr: []string{"X-OCCI-Attribute", "a=1"}, want: renderHeaders},
		{name: "occi+json", ct: "application/occi+json", body: "{}", want: renderPyOCNI},
		{name: "version 1.2", ct: "application/occi+json; version=1.2", body: "{}", want: renderPyOCNI, want12: true},
		{name: "text/plain", ct: "text/plain; charset=utf-8", body: "x", want: renderText},
		{name: "text/occi without body", ct: "text/occi", want: renderHeaders},
		{name: "uri-list", ct: "text/uri-list", body: "/a", want: renderURIList},
		{name: "unknown with a body", ct: "text/html", body: "<p>", status: http.StatusUnsupportedMediaType},
		{name: "unknown without a body", ct: "text/html", want: renderPyOCNI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.body != "" {
				r = httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			} else {
				r = httptest.NewRequest("GET", "/", nil)
			}
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				r.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			x := newExchange(r)
			err := x.readContentType(r)
			if tc.status != 0 {
				if statusOf(err) != tc.status {
					t.Fatalf("error %v, want status %d", err, tc.status)
				}
				return
			}
			if err != nil || x.in != tc.want || x.want12 != tc.want12 {
				t.Fatalf("in %v want12 %v err %v; want %v %v", x.in, x.want12, err, tc.want, tc.want12)
			}
		})
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		`a, b ,,c`:                           {"a", "b", "c"},
		`t="x, y", u=[1,2], v={"a":1,"b":2}`: {`t="x, y"`, "u=[1,2]", `v={"a":1,"b":2}`},
		`</a?x=1,2>; rel="r", </b>`:          {`</a?x=1,2>; rel="r"`, "</b>"},
		`q="esc\"aped, still", z`:            {`q="esc\"aped, still"`, "z"},
		``:                                   nil,
	} {
		if got := splitList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `with "quotes" and \ backslash`, "line\nbreak\ttab\r", "\x01ctl", "ünïcödé ✓"} {
		q := quote(s)
		got, rest, err := unquote(q)
		if err != nil || rest != "" || got != s {
			t.Errorf("unquote(quote(%q)) = %q, %q, %v", s, got, rest, err)
		}
	}
}

func TestParseText(t *testing.T) {
	t.Parallel()
	const compute = `Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"`
	doc, err := parseTextBody(compute + "; title=\"A; B\"; rel=\"http://schemas.ogf.org/occi/core#resource\"; location=\"/compute/\";\n" +
		"  attributes=\"occi.compute.cores occi.compute.state{immutable required}\"; actions=\"http://a#start http://a#stop\"\r\n" +
		"Link: </network/n1>; rel=\"http://schemas.ogf.org/occi/infrastructure#network\"; category=\"http://x#nic http://x#ip\"; a.b=\"c\"\n" +
		"\n" +
		"x-occi-attribute: occi.compute.cores=2, occi.compute.speed=-1.5e1, ok=true, s=\"x\\\"y\", l=[1,\"a\"], o={\"k\":null}\n" +
		"X-OCCI-Location: http://h/compute/a\n")
	if err != nil {
		t.Fatal(err)
	}
	c := doc.categories[0]
	if c.id() != "http://schemas.ogf.org/occi/infrastructure#compute" || c.class != "kind" || c.title != "A; B" ||
		!reflect.DeepEqual(c.rel, []string{"http://schemas.ogf.org/occi/core#resource"}) || c.location != "/compute/" ||
		!reflect.DeepEqual(c.attrs, []attrSpec{{name: "occi.compute.cores"}, {name: "occi.compute.state", immutable: true, required: true}}) ||
		!reflect.DeepEqual(c.actions, []string{"http://a#start", "http://a#stop"}) {
		t.Errorf("category %+v", c)
	}
	l := doc.links[0]
	if l.target != "/network/n1" || !reflect.DeepEqual(l.categories, []string{"http://x#nic", "http://x#ip"}) || l.attrs[0].value != "c" {
		t.Errorf("link %+v", l)
	}
	want := map[string]any{"occi.compute.cores": 2.0, "occi.compute.speed": -15.0, "ok": true, "s": `x"y`,
		"l": []any{1.0, "a"}, "o": map[string]any{"k": nil}}
	if got := flatAttrs(doc.attrs); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	if doc.locations[0].url != "http://h/compute/a" {
		t.Errorf("locations %v", doc.locations)
	}

	for _, tc := range []struct{ name, body, where, detail string }{
		{"no scheme", "Category: compute; class=\"kind\"", "line 1", "has no scheme"},
		{"no class", "Category: compute; scheme=\"http://a#\"", "line 1", "has no class"},
		{"no term", "Category: ; scheme=\"http://a#\"; class=\"kind\"", "line 1", "must start with its term"},
		{"scheme not a URI", "Category: c; scheme=\"nope\"; class=\"kind\"", "line 1", "is not a URI"},
		{"bad class", "Category: c; scheme=\"http://a#\"; class=\"thing\"", "line 1", "not kind, mixin or action"},
		{"class case", "Category: c; scheme=\"http://a#\"; class=\"Mixin\"", "line 1", "lower case: mixin"},
		{"parameter case", "Category: c; SCHEME=\"http://a#\"; class=\"kind\"", "line 1", "lower case: scheme"},
		{"unknown parameter", "Category: c; scheme=\"http://a#\"; class=\"kind\"; colour=\"red\"", "line 1", "unknown parameter"},
		{"parameter twice", "Category: c; scheme=\"http://a#\"; scheme=\"http://b#\"; class=\"kind\"", "line 1", "appears twice"},
		{"parameter without value", "Category: c; scheme; class=\"kind\"", "line 1", "has no value"},
		{"unquoted space", "Category: c; scheme=\"http://a#\"; class=\"kind\"; title=a b", "line 1", "must be quoted"},
		{"after the quote", "Category: c; scheme=\"http://a#\"x; class=\"kind\"", "line 1", "after the closing quote"},
		{"unterminated", "Category: c; scheme=\"http://a#; class=\"kind\"", "line 1", "unterminated"},
		{"attribute property", "Category: c; scheme=\"http://a#\"; class=\"kind\"; attributes=\"a{secret}\"", "line 1", "unknown property"},
		{"attribute brace", "Category: c; scheme=\"http://a#\"; class=\"kind\"; attributes=\"a{immutable\"", "line 1", "unclosed"},
		{"duplicate category", compute + "\n" + compute, "line 2", "appears twice (first at line 1)"},
		{"attribute without value", "\n\nX-OCCI-Attribute: a.b", "line 3", "has no value"},
		{"attribute empty value", "X-OCCI-Attribute: a.b=", "line 1", "has no value"},
		{"attribute without name", "X-OCCI-Attribute: =1", "line 1", "has no name"},
		{"attribute name", "X-OCCI-Attribute: a b=1", "line 1", "not an attribute name"},
		{"attribute value", "X-OCCI-Attribute: a=yes", "line 1", "must be a quoted string"},
		{"attribute JSON", "X-OCCI-Attribute: a=[1,", "line 1", "malformed JSON"},
		{"attribute twice", "X-OCCI-Attribute: a=1\nX-OCCI-Attribute: a=2", "line 2", "appears twice"},
		{"empty header", "Category:", "line 1", "has no value"},
		{"unknown header", "X-OCCI-Atribute: a=1", "line 1", "unknown header"}, //nolint:misspell // a misspelt header name is the case under test
		{"not a header", "just words", "line 1", "is not a \"Name: value\" line"},
		{"link without URI", "Link: /a; rel=\"x\"", "line 1", "must start with <URI>"},
		{"link unclosed", "Link: </a; rel=\"x\"", "line 1", "unclosed <"},
		{"link without rel", "Link: </a>", "line 1", "has no rel"},
		{"link garbage", "Link: </a> x", "line 1", "expected ;"},
		{"location", "X-OCCI-Location: not a url", "line 1", "is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTextBody(tc.body)
			var oe *Error
			if !asErr(err, &oe) || oe.Status != http.StatusBadRequest || oe.Field != tc.where || !strings.Contains(oe.Detail, tc.detail) {
				t.Fatalf("error %v; want 400 at %s containing %q", err, tc.where, tc.detail)
			}
		})
	}
}

func TestParseTextHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Add("category", `compute; scheme="http://a#"; class="kind", small; scheme="http://t#"; class="mixin"`)
	h.Add("X-OCCI-ATTRIBUTE", `a="x, y", b=2`)
	h.Add("X-Occi-Attribute", `c=true`)
	doc, err := parseTextHeaders(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.categories) != 2 || len(doc.attrs) != 3 || doc.attrs[0].value != "x, y" {
		t.Fatalf("doc %+v", doc)
	}
	h.Add("Category", `compute; scheme="http://a#"; class="kind"`)
	if _, err := parseTextHeaders(h); err == nil || !strings.Contains(err.Error(), "Category header 2") {
		t.Fatalf("duplicate across headers: %v", err)
	}
}

func asErr(err error, target **Error) bool {
	return errors.As(err, target)
}

func TestParseAccept(t *testing.T) {
	got := ParseAccept([]string{
		`text/html, application/xhtml+xml;q=0.9, */*;q=0.8`,
		`application/occi+json; version=1.2; note="a, b"; q=0.5`,
		`text/plain;q=2, ;;, text/*;q=0`,
	})
	want := []AcceptRange{
		{"text", "html", 1}, {"application", "xhtml+xml", 0.9}, {"*", "*", 0.8},
		{"application", "occi+json", 0.5},
		{"text", "*", 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseAccept = %v\nwant %v", got, want)
	}
}
