package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

// backends opens a fresh store of each kind: the change feed is in process
// for bolt and CouchDB's continuous _changes for couch.
var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"bolt", openBolt},
	{"couch", func(t testing.TB) store.Store {
		st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
		if err != nil {
			t.Fatalf("open couch: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

func openBolt(t testing.TB) store.Store {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// fastRetry keeps retry pauses short so tests run quickly.
var fastRetry = notify.Retry{Attempts: 4, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// env is an OCCI server with a notifier, served over real HTTP with
// /events routed ahead of the OCCI interface, as cmbs serve does.
type env struct {
	t   testing.TB
	st  store.Store
	srv *occi.Server
	n   *notify.Notifier
	url string

	closeOnce sync.Once
}

func newEnv(t testing.TB, st store.Store, cfg notify.Config) *env {
	t.Helper()
	ctx := context.Background()
	srv, err := occi.NewServer(occi.Options{Store: st, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.Retry == (notify.Retry{}) {
		cfg.Retry = fastRetry
	}
	n, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events", n.Handler())
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	e := &env{t: t, st: st, srv: srv, n: n, url: hs.URL}
	t.Cleanup(hs.Close)
	t.Cleanup(e.close)
	return e
}

// close stops the notifier (once).
func (e *env) close() {
	e.closeOnce.Do(func() {
		if err := e.n.Close(); err != nil {
			e.t.Errorf("notifier Close: %v", err)
		}
	})
}

// do sends a JSON request and decodes the answer.
func (e *env) do(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	return doJSON(e.t, e.url, method, path, body)
}

func doJSON(t testing.TB, base, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/occi+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return res.StatusCode, out
}

func (e *env) must(status int, method, path string, body any) map[string]any {
	e.t.Helper()
	got, out := e.do(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, out)
	}
	return out
}

// resource creates or replaces a core resource at /resource/ID.
func (e *env) resource(id, title string) {
	e.t.Helper()
	e.must(http.StatusCreated, "POST", "/resource/", map[string]any{"resources": []any{map[string]any{
		"kind": occi.ResourceKind, "id": id, "title": title,
		"attributes": map[string]any{"cmbs": map[string]any{"note": map[string]any{"topics": []any{"demo." + id}}}},
	}}})
}

func (e *env) retitle(id, title string) {
	e.t.Helper()
	e.must(http.StatusOK, "POST", "/resource/"+id, map[string]any{"resources": []any{map[string]any{"title": title}}})
}

// subscribe creates a subscription and waits until its worker runs.
func (e *env) subscribe(id string, attrs map[string]any) string {
	e.t.Helper()
	e.must(http.StatusCreated, "POST", notify.Location, subscriptionBody(id, attrs))
	loc := notify.Location + id
	waitFor(e.t, "subscription "+loc+" running", func() bool {
		_, ok := e.n.Subscription(loc)
		return ok
	})
	return loc
}

func subscriptionBody(id string, attrs map[string]any) map[string]any {
	return map[string]any{"resources": []any{map[string]any{
		"kind": notify.Kind, "id": id,
		"attributes": map[string]any{"cmbs": map[string]any{"subscription": attrs}},
	}}}
}

// subAttrs reads a subscription's attributes through the OCCI interface.
func (e *env) subAttrs(loc string) map[string]any {
	e.t.Helper()
	out := e.must(http.StatusOK, "GET", loc, nil)
	res := out["resources"].([]any)[0].(map[string]any)
	return res["attributes"].(map[string]any)["cmbs"].(map[string]any)["subscription"].(map[string]any)
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is a real callback endpoint: it checks each request's signature,
// fails the first `fail` requests (all of them when fail < 0) with 500,
// and records what it accepted.
type receiver struct {
	t      testing.TB
	url    string
	secret string

	mu       sync.Mutex
	fail     int
	attempts []string // event id of every request, accepted or not
	events   []notify.Event
	problems []string
}

func newReceiver(t testing.TB, secret string, fail int) *receiver {
	r := &receiver{t: t, secret: secret, fail: fail}
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	r.url = hs.URL + "/hook"
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.problems = append(r.problems, "read body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev notify.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.problems = append(r.problems, "decode: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch sig := req.Header.Get(notify.SignatureHeader); {
	case r.secret == "" && sig != "":
		r.problems = append(r.problems, "signature without a secret")
	case r.secret != "" && !notify.Verify(r.secret, body, sig):
		r.problems = append(r.problems, "bad signature "+sig+" on "+ev.ID)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get(notify.EventIDHeader) != ev.ID || req.Header.Get(notify.EventHeader) != ev.Type ||
		req.Header.Get(notify.SubscriptionHeader) != ev.Subscription || req.URL.Path != "/hook" {
		r.problems = append(r.problems, "unexpected request "+req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type"))
	}
	r.attempts = append(r.attempts, ev.ID)
	if r.fail != 0 {
		if r.fail > 0 {
			r.fail--
		}
		http.Error(w, "receiver failing on purpose", http.StatusInternalServerError)
		return
	}
	r.events = append(r.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setFail(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

func (r *receiver) accepted() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Event(nil), r.events...)
}

func (r *receiver) tries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.attempts...)
}

// waitEvent waits until an accepted event satisfies match and returns it.
func (r *receiver) waitEvent(what string, match func(notify.Event) bool) notify.Event {
	r.t.Helper()
	var found notify.Event
	waitFor(r.t, what, func() bool {
		for _, ev := range r.accepted() {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// check fails the test on any malformed or badly signed request.
func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		r.t.Errorf("receiver: %s", p)
	}
}

func is(typ, location string) func(notify.Event) bool {
	return func(ev notify.Event) bool { return ev.Type == typ && ev.Location == location }
}

// summary lists events as "type location".
func summary(evs []notify.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type + " " + ev.Location
	}
	return out
}

// dial opens /events with the query q.
func (e *env) dial(q string) *websocket.Conn {
	e.t.Helper()
	conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/events?"+q, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		e.t.Fatalf("dial /events?%s: %v (status %d)", q, err, status)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// next reads one event frame within a deadline.
func next(t testing.TB, conn *websocket.Conn) notify.Event {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ev notify.Event
	if err := conn.ReadJSON(&ev); err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}
