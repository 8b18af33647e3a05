package occitest_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

// resource is the body creating one plain resource.
func resource(id, title string) map[string]any {
	return map[string]any{"resources": []any{map[string]any{"kind": occi.ResourceKind, "id": id, "title": title}}}
}

// TestBackends serves each kind of store and reads back what was written.
func TestBackends(t *testing.T) {
	t.Parallel()
	for _, be := range occitest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			s := occitest.Serve(t, occitest.ServerOptions{Store: be.Open(t)})
			s.Must(http.StatusCreated, "POST", "/resource/", resource("r1", "one"))
			if got := s.MustRequest(http.StatusOK, "GET", "/resource/", nil).Locations(); len(got) != 1 || !strings.HasSuffix(got[0], "/resource/r1") {
				t.Errorf("locations %v", got)
			}
		})
	}
}

// TestSharedStore runs two servers on one store the test owns: the second
// sees what the first wrote, and neither closes the store.
func TestSharedStore(t *testing.T) {
	t.Parallel()
	st := occitest.OpenBolt(t)
	a := occitest.Serve(t, occitest.ServerOptions{Store: st})
	b := occitest.Serve(t, occitest.ServerOptions{Store: st, OCCI: occi.Options{Strict: true}})
	a.Must(http.StatusCreated, "POST", "/resource/", resource("r1", "one"))
	res := b.MustRequest(http.StatusOK, "GET", "/resource/r1", "", "Accept", "text/plain")
	if res.Body != nil || !strings.Contains(string(res.Raw), `"one"`) {
		t.Errorf("text answer %q decoded as %v", res.Raw, res.Body)
	}
	if err := a.CloseStore(); err == nil {
		t.Error("CloseStore closed a store the test passed in")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.Must(http.StatusOK, "GET", "/resource/r1", nil)
}

// TestOwnStore: a server given its store closes it, once.
func TestOwnStore(t *testing.T) {
	t.Parallel()
	st := occitest.OpenBolt(t)
	s := occitest.Serve(t, occitest.ServerOptions{Store: st, OwnStore: true})
	if err := s.CloseStore(); err != nil {
		t.Fatalf("CloseStore = %v", err)
	}
	if err := s.CloseStore(); err != nil {
		t.Errorf("second CloseStore = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after CloseStore = %v", err)
	}
}

// cleanups is a test whose cleanups and errors are kept for the test to
// look at, so a server's failure to close can be checked, not reported.
type cleanups struct {
	testing.TB
	fns  []func()
	errs []string
}

func (c *cleanups) Cleanup(fn func()) { c.fns = append(c.fns, fn) }

func (c *cleanups) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// TestOnClose: added parts close after HTTP, latest first, once each, and
// Close and the test's cleanup report their failures.
func TestOnClose(t *testing.T) {
	t.Parallel()
	ct := &cleanups{TB: t}
	s := occitest.NewServer(ct, occitest.ServerOptions{Store: occitest.OpenBolt(t), Name: "x"})
	var order []string
	var httpUp []bool
	var calls atomic.Int32
	boom := errors.New("boom")
	add := func(name string, err error) func() error {
		return s.OnClose(name, func() error {
			calls.Add(1)
			order = append(order, name)
			_, reqErr := http.Get(s.URL + "/-/")
			httpUp = append(httpUp, reqErr == nil)
			return err
		})
	}
	add("first", nil)
	second := add("second", boom)
	add("third", nil)
	s.Listen(nil)
	s.Must(http.StatusOK, "GET", "/-/", nil)

	if err := second(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "close second") {
		t.Errorf("early close = %v", err)
	}
	err := s.Close()
	if !errors.Is(err, boom) {
		t.Errorf("Close = %v, want the second part's failure", err)
	}
	if want := []string{"second", "third", "first"}; !reflect.DeepEqual(order, want) {
		t.Errorf("close order %v, want %v", order, want)
	}
	if want := []bool{true, false, false}; !reflect.DeepEqual(httpUp, want) {
		t.Errorf("HTTP answering while closing: %v, want %v", httpUp, want)
	}
	if err2 := s.Close(); !errors.Is(err2, boom) || calls.Load() != 3 {
		t.Errorf("second Close = %v after %d calls; want the same failure, 3 calls", err2, calls.Load())
	}
	if len(ct.fns) != 1 {
		t.Fatalf("%d cleanups registered, want 1", len(ct.fns))
	}
	ct.fns[0]()
	if want := []string{"test server x: close second: boom"}; !reflect.DeepEqual(ct.errs, want) {
		t.Errorf("cleanup reported %q, want %q", ct.errs, want)
	}
}

// TestWrapAndCredentials: Wrap sees every request, with the Client's
// credentials; Anonymous sends none.
func TestWrapAndCredentials(t *testing.T) {
	t.Parallel()
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "op" || p != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	s := occitest.Serve(t, occitest.ServerOptions{Store: occitest.OpenBolt(t), Wrap: wrap, User: "op", Password: "pw"})
	s.Must(http.StatusOK, "GET", "/-/", nil)
	if status, _ := s.Anonymous().Do("GET", "/-/", nil); status != http.StatusUnauthorized {
		t.Errorf("anonymous = %d, want 401", status)
	}
	if s.User != "op" {
		t.Errorf("Anonymous changed the server's client")
	}
}

// TestRequestHeaders: header pairs apply last, and an empty value removes
// a header.
func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	s := occitest.Serve(t, occitest.ServerOptions{Store: occitest.OpenBolt(t), Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.Header.Clone()
			next.ServeHTTP(w, r)
		})
	}})
	tests := []struct {
		name   string
		header []string
		accept string
	}{
		{"default", nil, occitest.MediaType},
		{"replaced", []string{"Accept", "text/plain"}, "text/plain"},
		{"removed", []string{"Accept", ""}, ""},
	}
	for _, tt := range tests {
		s.Request("GET", "/-/", nil, tt.header...)
		if a := got.Get("Accept"); a != tt.accept {
			t.Errorf("%s: Accept %q, want %q", tt.name, a, tt.accept)
		}
	}
	s.Request("POST", "/resource/", resource("r1", "one"))
	if ct := got.Get("Content-Type"); ct != occitest.MediaType {
		t.Errorf("Content-Type of a body %q", ct)
	}
}

// TestTry reports a wrong status as an error naming the server.
func TestTry(t *testing.T) {
	t.Parallel()
	s := occitest.Serve(t, occitest.ServerOptions{Store: occitest.OpenBolt(t), Name: "x"})
	if _, err := s.Try(http.StatusOK, "GET", "/resource/nothing", nil); err == nil || !strings.Contains(err.Error(), "on x: status 404, want 200") {
		t.Errorf("Try of a missing resource = %v", err)
	}
	if _, err := s.Try(http.StatusOK, "GET", "/-/", nil); err != nil {
		t.Errorf("Try of the query interface = %v", err)
	}
}
