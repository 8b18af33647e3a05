package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// callbackLog records the callbacks a subscription's receiver got.
type callbackLog struct {
	mu    sync.Mutex
	count map[string]int // event id -> callbacks carrying it
	// byLocation holds, per location, the ids and types seen.
	byLocation map[string]map[string]string
	total      int
}

func (l *callbackLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		ID       string `json:"id"`
		Type     string `json:"event"`
		Location string `json:"location"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil || ev.ID == "" || r.Header.Get("X-CMBS-Event-Id") != ev.ID {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.count[ev.ID]++
	if l.byLocation[ev.Location] == nil {
		l.byLocation[ev.Location] = map[string]string{}
	}
	l.byLocation[ev.Location][ev.ID] = ev.Type
	w.WriteHeader(http.StatusNoContent)
}

// types returns the event types received for location, by id.
func (l *callbackLog) types(location string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for id, typ := range l.byLocation[location] {
		out[id] = typ
	}
	return out
}

// TestE2EServersShareCouchDB runs three cmbs servers, S1, S2 and S3, on one
// CouchDB database (pouchdb-server), as behind a load balancer: one member,
// member-c, whose layers each server binds on a loopback address of its
// own (--bind-host) while the member advertises 127.0.0.1, which S3
// binds. A fourth process, P, runs member-p on its own store.
//
// One subscription on the shared database hears the messages P sends to
// member-c, which reach S3: created and message_received. Messages posted to the three
// servers in turn are sent to P. S1, which holds the subscription's lease
// and the lease of the outbox stream to P, is killed with SIGKILL while P
// is paused, so entries S1 accepted are still in the outbox. Then:
//   - every event of every message P sent reaches the callback with one
//     id: the created and message_received of each, and no other (a
//     callback sent again after the takeover carries the same id);
//   - every message posted to the three servers, those S1 accepted
//     included, reaches P, and the shared outbox ends empty;
//   - S2 or S3 holds both leases, having taken them over.
func TestE2EServersShareCouchDB(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	db := couchtest.Start(t) + "/cluster"
	// Opened before any server writes: Open completes the batches it finds
	// in flight.
	shared := openShared(t, db)
	const ttl = "3s"
	server := func(name, bindHost string) e2eNodeSpec {
		return e2eNodeSpec{name: name, httpAddr: "127.0.0.1:0", storeURL: db, client: &http.Client{Timeout: time.Minute},
			extra: []string{"--bind-host", bindHost, "--lease-ttl", ttl, "--instance-id", strings.ToLower(name)}}
	}

	hooks := &callbackLog{count: map[string]int{}, byLocation: map[string]map[string]string{}}
	hook := httptest.NewServer(hooks)
	defer hook.Close()

	p := e2eStartNode(t, bin, e2eNodeSpec{name: "P", httpAddr: "127.0.0.1:0", client: &http.Client{Timeout: time.Minute}})
	p.createMember(t, "member-p", e2eSockets(t), nil, nil, nil)
	s1 := e2eStartNode(t, bin, server("S1", "127.0.0.2"))
	s1.createMember(t, "member-c", e2eSockets(t), []*e2eNode{p}, nil, nil)
	if found, un := s1.discover(t); len(found) != 1 || found[0] != "member-p" || len(un) != 0 {
		t.Fatalf("member-c discovered %v, unreachable %v", found, un)
	}
	s1.must(t, http.StatusCreated, "POST", "/cmbs/subscription/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#subscription", "id": "from-p", "attributes": map[string]any{"cmbs": map[string]any{
			"subscription": map[string]any{"callback": hook.URL + "/events", "kind": "http://houssem.org/cmbs#message",
				"location": "/cmbs/message/in-", "events": []any{"created", "message_received"}}}},
	}}})

	// Warm-up through S1 alone, so it takes both leases.
	for i := range 3 {
		if err := e2ePost(s1, e2eBatch("out-", i, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	holders := func() map[string]string { return leaseHolders(t, shared) }
	cmbstest.EventuallyWithin(t, time.Minute, "S1 holding the subscription's and the stream's leases", func() bool {
		h := holders()
		return h["notify/cmbs/subscription/from-p"] == "s1" && h["outbox/l2/member-p/"] == "s1"
	})

	s2 := e2eStartNode(t, bin, server("S2", "127.0.0.3"))
	s3 := e2eStartNode(t, bin, server("S3", "127.0.0.1"))
	servers := []*e2eNode{s1, s2, s3}
	var s1Dead atomic.Bool

	const total = 150
	var outDone, inDone atomic.Int64
	outDone.Store(3)
	errs := make(chan error, 2)
	go func() {
		// The load balancer: each message to the next server that answers.
		next := 0
		for i := 3; i < total; i++ {
			var err error
			for try := 0; try < 3*len(servers); try++ {
				n := servers[next%len(servers)]
				next++
				if n == s1 && s1Dead.Load() {
					continue
				}
				if err = e2ePostOnce(n, e2eBatch("out-", i, i+1)); err == nil {
					break
				}
			}
			if err != nil {
				errs <- err
				return
			}
			outDone.Store(int64(i + 1))
			time.Sleep(20 * time.Millisecond)
		}
		errs <- nil
	}()
	go func() {
		for i := range total {
			if err := e2ePost(p, e2eBatch("in-", i, i+1)); err != nil {
				errs <- err
				return
			}
			inDone.Store(int64(i + 1))
			time.Sleep(20 * time.Millisecond)
		}
		errs <- nil
	}()

	cmbstest.EventuallyWithin(t, 2*time.Minute, "a third of the stream", func() bool { return outDone.Load() >= total/3 && inDone.Load() >= total/3 })
	// P paused: what S1 accepts from now on stays in the outbox.
	if err := syscall.Kill(-p.current().cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := outDone.Load()
	cmbstest.EventuallyWithin(t, time.Minute, "S1 accepting messages while P is paused", func() bool { return outDone.Load() >= paused+9 })
	before := holders()
	s1Dead.Store(true)
	_ = s1.stop(t, syscall.SIGKILL) // killed: its exit status says only that
	if err := syscall.Kill(-p.current().cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	pending := len(listShared(t, shared, "outbox/"))
	t.Logf("S1 killed holding %v; %d outbox entries pending", before, pending)
	if pending == 0 {
		t.Error("no outbox entry was pending when S1 died: the test shows nothing about them")
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	cmbstest.EventuallyWithin(t, 3*time.Minute, "every message posted delivered to P and the outbox empty", func() bool {
		return len(listShared(t, shared, "outbox/")) == 0 && p.has(t, fmt.Sprintf("out-%05d", total-1))
	})
	for i := range total {
		if id := fmt.Sprintf("out-%05d", i); !p.has(t, id) {
			t.Errorf("P lacks %s", id)
		}
	}
	cmbstest.EventuallyWithin(t, 3*time.Minute, "the callbacks of every message P sent", func() bool {
		for i := range total {
			if len(hooks.types(fmt.Sprintf("/cmbs/message/in-%05d", i))) < 2 {
				return false
			}
		}
		return true
	})
	// Late duplicates would arrive within a lease's time to live.
	time.Sleep(2 * time.Second)
	for i := range total {
		loc := fmt.Sprintf("/cmbs/message/in-%05d", i)
		got := hooks.types(loc)
		var types []string
		for _, typ := range got {
			types = append(types, typ)
		}
		if len(got) != 2 || !(types[0] == "created" && types[1] == "message_received" || types[1] == "created" && types[0] == "message_received") {
			t.Errorf("%s: events %v, want one created and one message_received", loc, got)
		}
	}
	hooks.mu.Lock()
	distinct, calls := len(hooks.count), hooks.total
	// Sent again are only the events the old holder had sent after the
	// last checkpoint it wrote (about a second's worth, more on a loaded
	// machine), once more each: never by every server, and never all of
	// them, as a takeover starting from the beginning would.
	for id, n := range hooks.count {
		if n > 2 {
			t.Errorf("event %s called back %d times", id, n)
		}
	}
	if calls-distinct > distinct/2 {
		t.Errorf("%d of %d callbacks sent again, more than a checkpoint's lag explains", calls-distinct, distinct)
	}
	for loc := range hooks.byLocation {
		if !strings.HasPrefix(loc, "/cmbs/message/in-") {
			t.Errorf("callback for %s, which the subscription does not ask for", loc)
		}
	}
	hooks.mu.Unlock()
	t.Logf("%d callbacks carrying %d event ids: %d sent again after the takeover, and dropped by id", calls, distinct, calls-distinct)

	after := holders()
	for _, name := range []string{"notify/cmbs/subscription/from-p", "outbox/l2/member-p/"} {
		if h := after[name]; h != "s2" && h != "s3" {
			t.Errorf("lease %s held by %q after S1 died, want S2 or S3", name, h)
		}
	}
	resumed := false
	for _, n := range []*e2eNode{s2, s3} {
		resumed = resumed || strings.Contains(n.current().log.String(), "sending this subscription's callbacks from this server")
	}
	if !resumed {
		t.Error("neither S2 nor S3 took the subscription over")
	}
}

// e2ePostOnce creates one batch on n with a single request; 409 means an
// earlier attempt created it.
func e2ePostOnce(n *e2eNode, body map[string]any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, n.baseURL()+"/cmbs/message/", strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/occi+json")
	res, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_ = res.Body.Close() // the status says it all
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusConflict {
		return fmt.Errorf("create on %s: status %d", n.spec.name, res.StatusCode)
	}
	return nil
}

// openShared opens the servers' database for the test to read.
func openShared(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := couch.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func listShared(t *testing.T, st store.Store, prefix string) []store.Doc {
	t.Helper()
	docs, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// leaseHolders maps each lease in the database to its holder.
func leaseHolders(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range listShared(t, st, "lease/") {
		var l struct {
			Name   string `json:"name"`
			Holder string `json:"holder"`
		}
		if err := json.Unmarshal(d.Body, &l); err != nil {
			t.Fatal(err)
		}
		out[l.Name] = l.Holder
	}
	return out
}
