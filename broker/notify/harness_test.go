package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

// fastRetry keeps retry pauses short so tests run quickly.
var fastRetry = notify.Retry{Attempts: 4, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// env is an OCCI server with a notifier, served over real HTTP with
// /events routed ahead of the OCCI interface, as cmbs serve does; for a
// member (startMember) the broker feeds the notifier too.
type env struct {
	*brokertest.Server
	// member is the broker member env serves, nil for a plain server.
	member *brokertest.Member
}

// newEnv serves a plain OCCI server on st with a notifier configured by
// cfg, retrying quickly unless cfg says otherwise.
func newEnv(t testing.TB, st store.Store, cfg notify.Config) *env {
	t.Helper()
	if cfg.Retry == (notify.Retry{}) {
		cfg.Retry = fastRetry
	}
	return &env{Server: brokertest.Serve(t, brokertest.ServerOptions{Store: st, Events: &cfg})}
}

// startMember brings up member id with topics and neighbours, every layer
// running, its broker feeding the notifier.
func startMember(t testing.TB, id string, topics []string, neighbors ...*env) *env {
	t.Helper()
	var ns []*brokertest.Member
	for _, n := range neighbors {
		ns = append(ns, n.member)
	}
	m := brokertest.Start(t, brokertest.Options{ID: id, Topics: topics, Neighbors: ns, Events: &notify.Config{Retry: fastRetry}})
	return &env{Server: m.Server, member: m}
}

// close stops the notifier ahead of the server.
func (e *env) close() {
	e.T.Helper()
	if err := e.CloseNotifier(); err != nil {
		e.T.Errorf("notifier Close: %v", err)
	}
}

// resource creates or replaces a core resource at /resource/ID.
func (e *env) resource(id, title string) {
	e.T.Helper()
	e.Must(http.StatusCreated, "POST", "/resource/", map[string]any{"resources": []any{map[string]any{
		"kind": occi.ResourceKind, "id": id, "title": title,
		"attributes": map[string]any{"cmbs": map[string]any{"note": map[string]any{"topics": []any{"demo." + id}}}},
	}}})
}

func (e *env) retitle(id, title string) {
	e.T.Helper()
	e.Must(http.StatusOK, "POST", "/resource/"+id, map[string]any{"resources": []any{map[string]any{"title": title}}})
}

// subscribe creates a subscription and waits until its worker runs.
func (e *env) subscribe(id string, attrs map[string]any) string {
	e.T.Helper()
	e.Must(http.StatusCreated, "POST", notify.Location, subscriptionBody(id, attrs))
	loc := notify.Location + id
	cmbstest.Eventually(e.T, "subscription "+loc+" running", func() bool {
		_, ok := e.Notifier.Subscription(loc)
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
	e.T.Helper()
	out := e.Must(http.StatusOK, "GET", loc, nil)
	res := out["resources"].([]any)[0].(map[string]any)
	return res["attributes"].(map[string]any)["cmbs"].(map[string]any)["subscription"].(map[string]any)
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
	cmbstest.Eventually(r.t, what, func() bool {
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
	e.T.Helper()
	conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.URL, "http")+brokertest.EventsPath+"?"+q, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		e.T.Fatalf("dial /events?%s: %v (status %d)", q, err, status)
	}
	e.T.Cleanup(func() { _ = conn.Close() })
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
