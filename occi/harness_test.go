package occi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// backends opens a fresh store of each kind; every server test runs on both.
var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"bolt", func(t testing.TB) store.Store {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
		if err != nil {
			t.Fatalf("open bolt: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"couch", func(t testing.TB) store.Store {
		st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
		if err != nil {
			t.Fatalf("open couch: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// env is one running server with an HTTP client speaking to it.
type env struct {
	t   testing.TB
	srv *occi.Server
	url string
}

func quietLogger() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

func newEnv(t testing.TB, st store.Store, opts occi.Options) *env {
	t.Helper()
	opts.Store = st
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv, err := occi.NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := srv.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, url: hs.URL}
}

// response is what a test looks at.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// example reads a request file from examples/.
func example(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatalf("read example: %v", err)
	}
	return string(data)
}

// do sends a request with the occi+json headers unless hdr overrides them.
func (e *env) do(method, path, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/occi+json")
	}
	req.Header.Set("Accept", "application/occi+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, method, path, body string, hdr ...string) response {
	e.t.Helper()
	res := e.do(method, path, body, hdr...)
	if res.status != want {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, res.status, want, res.raw)
	}
	return res
}

// locations returns the X-OCCI-Location list of a response.
func (r response) locations() []string {
	var out []string
	list, _ := r.body["X-OCCI-Location"].([]any)
	for _, v := range list {
		out = append(out, v.(string))
	}
	return out
}

// get walks a decoded JSON value by keys and indexes ("resources.0.id").
func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}
