// Package ui serves cmbs's dashboard: a single page, embedded in the binary,
// that reads the server's own JSON interface, its event stream and its
// metrics. Nothing is fetched from elsewhere: the page, its ES modules and
// its style sheet are all under static/.
//
// Handler puts the dashboard in front of the OCCI interface, at Path; it
// belongs inside the authentication middleware, so the page asks for the
// same credentials as the API (a browser prompts on the 401) and then sends
// them with every request it makes, the event stream's included.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/houssem/cmbs/occi"
)

// Path is where the dashboard is served; GET / from a browser is redirected
// there.
const Path = "/ui/"

//go:embed static
var static embed.FS

// contentSecurityPolicy lets the page load only its own files and talk only
// to its own origin (CSP Level 3's 'self' covers the ws: stream); inline
// scripts and styles are refused, so an attribute value that slipped into
// the page as markup still could not run.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	name  string
	data  []byte
	ctype string
	etag  string
}

// UI serves the embedded dashboard.
type UI struct {
	files map[string]*file
}

// New reads the embedded files and computes their validators.
func New() (*UI, error) {
	return newFromFS(static, "static")
}

func newFromFS(fsys fs.FS, root string) (*UI, error) {
	sub, err := fs.Sub(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	u := &UI{files: map[string]*file{}}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			return fmt.Errorf("no media type for %s", name)
		}
		// JavaScript modules must come as JavaScript whatever the
		// system's mime tables say.
		if strings.HasSuffix(name, ".js") {
			ctype = "text/javascript; charset=utf-8"
		}
		sum := sha256.Sum256(data)
		u.files[name] = &file{name: name, data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: read the embedded files: %w", err)
	}
	if u.files["index.html"] == nil {
		return nil, fmt.Errorf("ui: no index.html among the embedded files")
	}
	return u, nil
}

// Files lists the names of the served files, relative to Path.
func (u *UI) Files() []string {
	out := make([]string, 0, len(u.files))
	for name := range u.files {
		out = append(out, name)
	}
	return out
}

// Handler serves the dashboard under Path, redirects /ui to Path and a
// browser's GET / to Path, and passes every other request to next.
func (u *UI) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, Path):
			u.serveFile(w, r, strings.TrimPrefix(p, Path))
		case p == strings.TrimSuffix(Path, "/") && isRead(r.Method):
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
		case p == "/" && isRead(r.Method) && WantsHTML(r.Header.Values("Accept")):
			// 303: the answer to GET / is elsewhere; browsers and curl -L
			// follow it, and API clients asking for JSON never get here.
			w.Header().Add("Vary", "Accept")
			http.Redirect(w, r, Path, http.StatusSeeOther)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

func (u *UI) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	if !isRead(r.Method) {
		occi.WriteProblem(w, &occi.Error{Status: http.StatusMethodNotAllowed, Allow: "GET, HEAD",
			Detail: fmt.Sprintf("method %s is not allowed on %s; the dashboard is read with GET", r.Method, r.URL.Path)})
		return
	}
	if name == "" {
		name = "index.html"
	}
	f := u.files[name]
	if f == nil {
		occi.WriteProblem(w, &occi.Error{Status: http.StatusNotFound,
			Detail: fmt.Sprintf("the dashboard has no file %s; open %s", r.URL.Path, Path)})
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	// Revalidated on every load, so a new binary's page is seen at once;
	// the ETag makes the check a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// ServeContent answers If-None-Match and Range from the headers set
	// above; the zero time leaves Last-Modified out.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}
