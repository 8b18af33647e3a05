package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestWantsHTML(t *testing.T) {
	tests := []struct {
		name   string
		accept []string
		want   bool
	}{
		{"no Accept", nil, false},
		{"curl", []string{"*/*"}, false},
		{"Chromium navigation", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"}, true},
		{"Firefox navigation", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{"XHTML only", []string{"application/xhtml+xml"}, true},
		{"OCCI JSON", []string{"application/occi+json"}, false},
		{"JSON preferred to HTML", []string{"application/json, text/html;q=0.5"}, false},
		{"HTML preferred to JSON", []string{"text/html, application/json;q=0.5"}, true},
		{"HTML as much as text/plain", []string{"text/plain, text/html"}, true},
		{"HTML refused", []string{"text/html;q=0"}, false},
		{"two headers", []string{"application/occi+json;q=0.9", "text/html"}, true},
		{"text/* is a wildcard", []string{"text/*"}, false},
		{"malformed members skipped", []string{"text/html;q=high, ;;, text/html;q=0.4"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WantsHTML(tt.accept); got != tt.want {
				t.Errorf("WantsHTML(%q) = %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}

// api stands for the OCCI interface behind the dashboard.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/occi+json")
	_, _ = io.WriteString(w, `{"X-OCCI-Location":[]}`)
})

func serve(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := u.Handler(api)
	browser := "text/html,application/xhtml+xml,*/*;q=0.8"
	tests := []struct {
		name         string
		method, path string
		accept       string
		status       int
		ctype        string
		location     string
		body         string
	}{
		{name: "page", method: "GET", path: "/ui/", accept: browser, status: 200, ctype: "text/html; charset=utf-8", body: `<script type="module" src="js/main.js">`},
		{name: "page by name", method: "GET", path: "/ui/index.html", status: 200, ctype: "text/html; charset=utf-8"},
		{name: "module", method: "GET", path: "/ui/js/main.js", status: 200, ctype: "text/javascript; charset=utf-8", body: "import"},
		{name: "style", method: "GET", path: "/ui/style.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "icon", method: "GET", path: "/ui/icon.svg", status: 200, ctype: "image/svg+xml"},
		{name: "head", method: "HEAD", path: "/ui/", status: 200, ctype: "text/html; charset=utf-8"},
		{name: "missing file", method: "GET", path: "/ui/nothing.js", status: 404, ctype: "application/problem+json", body: "no file /ui/nothing.js"},
		{name: "no directory listing", method: "GET", path: "/ui/js/", status: 404, ctype: "application/problem+json"},
		{name: "post", method: "POST", path: "/ui/", status: 405, ctype: "application/problem+json", body: "read with GET"},
		{name: "without slash", method: "GET", path: "/ui", status: 301, location: "/ui/"},
		{name: "browser at /", method: "GET", path: "/", accept: browser, status: 303, location: "/ui/"},
		{name: "curl at /", method: "GET", path: "/", accept: "*/*", status: 200, ctype: "application/occi+json"},
		{name: "API at /", method: "GET", path: "/", accept: "application/occi+json", status: 200, ctype: "application/occi+json"},
		{name: "delete at / is the API's", method: "DELETE", path: "/", accept: browser, status: 200, ctype: "application/occi+json"},
		{name: "other paths are the API's", method: "GET", path: "/cmbs/member/", accept: browser, status: 200, ctype: "application/occi+json"},
		{name: "a kind named uix is the API's", method: "GET", path: "/uix/", status: 200, ctype: "application/occi+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, h, tt.method, tt.path, "Accept", tt.accept)
			if w.Code != tt.status {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, w.Code, tt.status, w.Body)
			}
			if tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", w.Header().Get("Content-Type"), tt.ctype)
			}
			if tt.location != "" && w.Header().Get("Location") != tt.location {
				t.Errorf("Location = %q, want %q", w.Header().Get("Location"), tt.location)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body does not contain %q:\n%s", tt.body, w.Body)
			}
		})
	}
}

func TestHeadersAndRevalidation(t *testing.T) {
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := u.Handler(api)
	w := serve(t, h, "GET", "/ui/")
	for name, want := range map[string]string{
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, directive := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, directive) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, directive)
		}
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if again := serve(t, h, "GET", "/ui/", "If-None-Match", etag); again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidation = %d with %d bytes, want 304 and none", again.Code, again.Body.Len())
	}
	other := serve(t, h, "GET", "/ui/style.css")
	if other.Header().Get("ETag") == etag {
		t.Error("two files share an ETag")
	}
}

// TestModulesResolve checks that every relative import of every module,
// and every file the page names, is served: a broken path would only
// show in a browser otherwise.
func TestModulesResolve(t *testing.T) {
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	imports := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*\sfrom\s+)?['"]([^'"]+)['"]`)
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	files := u.Files()
	slices.Sort(files)
	for _, name := range files {
		var targets []string
		data := string(u.files[name].data)
		switch {
		case strings.HasSuffix(name, ".js"):
			for _, m := range imports.FindAllStringSubmatch(data, -1) {
				targets = append(targets, m[1])
			}
		case strings.HasSuffix(name, ".html"):
			for _, m := range refs.FindAllStringSubmatch(data, -1) {
				targets = append(targets, m[1])
			}
		}
		dir := name[:strings.LastIndex(name, "/")+1]
		for _, target := range targets {
			resolved := resolve(dir, target)
			if u.files[resolved] == nil {
				t.Errorf("%s refers to %s (%s), which is not served", name, target, resolved)
			}
		}
	}
	if len(files) < 10 {
		t.Errorf("only %d files served: %q", len(files), files)
	}
}

// resolve joins a relative reference to the folder it appears in.
func resolve(dir, ref string) string {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	if dir == "" {
		parts = nil
	}
	for _, p := range strings.Split(ref, "/") {
		switch p {
		case ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func TestNewNeedsIndex(t *testing.T) {
	fsys := fstest.MapFS{"static/app.js": {Data: []byte("export {};")}}
	if _, err := newFromFS(fsys, "static"); err == nil || !strings.Contains(err.Error(), "index.html") {
		t.Errorf("newFromFS without index.html = %v, want an error naming it", err)
	}
	fsys = fstest.MapFS{"static/index.html": {Data: []byte("<!doctype html>")}, "static/data.unknownext": {Data: []byte("x")}}
	if _, err := newFromFS(fsys, "static"); err == nil || !strings.Contains(err.Error(), "no media type") {
		t.Errorf("newFromFS with an unknown extension = %v, want an error", err)
	}
}
