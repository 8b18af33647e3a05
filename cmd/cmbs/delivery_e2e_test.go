package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// e2eBatch is the body creating messages ids[from:to] on l2, each sent as
// it is created.
func e2eBatch(prefix string, from, to int) map[string]any {
	var resources []any
	for i := from; i < to; i++ {
		resources = append(resources, map[string]any{
			"kind": "http://houssem.org/cmbs#message", "mixins": []any{"http://houssem.org/cmbs#l2"}, "id": fmt.Sprintf("%s%05d", prefix, i),
			"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{
				"cmbs_layer": "l2", "send_on_create": "True", "message_content": map[string]any{"n": i}}}},
		})
	}
	return map[string]any{"resources": resources}
}

// e2ePost creates one batch, retrying while the server is down or being
// restarted: an answer 409 means an earlier attempt whose answer was lost
// created the batch (a create is all or nothing).
func e2ePost(n *e2eNode, body map[string]any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodPost, n.baseURL()+"/cmbs/message/", strings.NewReader(string(raw)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/occi+json")
		res, err := n.client.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = res.Body.Close() // the status says it all
		switch res.StatusCode {
		case http.StatusCreated, http.StatusConflict:
			return nil
		case http.StatusServiceUnavailable:
			time.Sleep(100 * time.Millisecond)
			continue
		default:
			return fmt.Errorf("create: status %d", res.StatusCode)
		}
	}
	return fmt.Errorf("create: %s did not take the batch within 2 minutes", n.spec.name)
}

// e2eStoreDocs opens a stopped node's store and returns the documents under
// prefix.
func e2eStoreDocs(t *testing.T, n *e2eNode, prefix string) []store.Doc {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	if n.spec.storeURL != "" {
		st, err = couch.Open(ctx, n.spec.storeURL)
	} else {
		st, err = bolt.Open(n.store + "/cmbs.db")
	}
	if err != nil {
		t.Fatalf("open %s's store: %v", n.spec.name, err)
	}
	defer func() { _ = st.Close() }() // read only
	docs, err := st.List(ctx, prefix)
	if err != nil {
		t.Fatalf("list %s on %s: %v", prefix, n.spec.name, err)
	}
	return docs
}

// TestE2EDeliveryAcrossCrashes sends 10,000 L2 messages from A to B and C,
// created in batches that send them as they are created, while B is killed
// with SIGKILL and restarted twice and A once: every message accepted
// reaches B and C exactly once, every outcome on A says delivered, and A's
// outbox is empty at the end. On the embedded store and on CouchDB.
func TestE2EDeliveryAcrossCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	for _, backend := range []string{"bolt", "couch"} {
		t.Run(backend, func(t *testing.T) {
			couchURL := ""
			if backend == "couch" {
				couchURL = couchtest.Start(t)
			}
			spec := func(name string) e2eNodeSpec {
				s := e2eNodeSpec{name: name, httpAddr: "127.0.0.1:0", client: &http.Client{Timeout: time.Minute}}
				if couchURL != "" {
					s.storeURL = couchURL + "/node_" + strings.ToLower(name)
				}
				return s
			}
			total := 10000
			if backend == "couch" {
				// pouchdb-server, one Node.js process for the three
				// members, is slower by more than an order of magnitude.
				total = 2000
			}
			e2eDeliveryAcrossCrashes(t, bin, spec, total)
		})
	}
}

func e2eDeliveryAcrossCrashes(t *testing.T, bin string, spec func(string) e2eNodeSpec, total int) {
	const batch = 100
	a, b, c := e2eStartNode(t, bin, spec("A")), e2eStartNode(t, bin, spec("B")), e2eStartNode(t, bin, spec("C"))
	b.createMember(t, "member-b", e2eSockets(t), nil, nil, nil)
	c.createMember(t, "member-c", e2eSockets(t), nil, nil, nil)
	a.createMember(t, "member-a", e2eSockets(t), []*e2eNode{b, c}, nil, nil)
	if found, un := a.discover(t); len(found) != 2 || len(un) != 0 {
		t.Fatalf("A discovered %v, unreachable %v", found, un)
	}

	var accepted atomic.Int64
	posted := make(chan error, 1)
	began := time.Now()
	go func() {
		for from := 0; from < total; from += batch {
			if err := e2ePost(a, e2eBatch("m", from, min(from+batch, total))); err != nil {
				posted <- err
				return
			}
			accepted.Store(int64(min(from+batch, total)))
		}
		posted <- nil
	}()
	at := func(n int) {
		cmbstest.EventuallyWithin(t, 2*time.Minute, fmt.Sprintf("%d messages accepted", n), func() bool { return accepted.Load() >= int64(n) })
	}
	restart := func(n *e2eNode) {
		_ = n.stop(t, syscall.SIGKILL) // killed: its exit status says only that
		time.Sleep(300 * time.Millisecond)
		n.start(t)
	}
	at(total / 5)
	restart(b)
	at(total / 2)
	restart(a)
	at(total * 7 / 10)
	restart(b)
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages accepted in %v", total, time.Since(began).Round(time.Millisecond))

	last := fmt.Sprintf("m%05d", total-1)
	cmbstest.EventuallyWithin(t, 3*time.Minute, "the last message delivered", func() bool {
		d, _ := a.attrs(t, "/cmbs/message/"+last, "message")["delivery"].(map[string]any)
		return d["state"] == "done"
	})
	// Everything else settles too; then the stores are read directly.
	cmbstest.EventuallyWithin(t, 3*time.Minute, "every outcome on A recorded", func() bool {
		for i := 0; i < total; i += 97 {
			d, _ := a.attrs(t, fmt.Sprintf("/cmbs/message/m%05d", i), "message")["delivery"].(map[string]any)
			if d["state"] != "done" {
				return false
			}
		}
		return true
	})
	t.Logf("%d messages delivered to B and C %v after the first was created", total, time.Since(began).Round(time.Millisecond))
	for _, n := range []*e2eNode{a, b, c} {
		if err := n.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s: %v", n.spec.name, err)
		}
	}
	var pending []string
	for _, d := range e2eStoreDocs(t, a, "/cmbs/message/") {
		var doc struct {
			Attributes struct {
				Cmbs struct {
					Message struct {
						Delivery struct {
							State        string
							Destinations map[string]struct{ Status string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(d.Body, &doc); err != nil {
			t.Fatal(err)
		}
		dl := doc.Attributes.Cmbs.Message.Delivery
		if dl.State != "done" || dl.Destinations["member-b"].Status != "delivered" || dl.Destinations["member-c"].Status != "delivered" {
			pending = append(pending, d.ID)
		}
	}
	if len(pending) > 0 {
		t.Errorf("%d messages on A not delivered to both, e.g. %v", len(pending), pending[:min(5, len(pending))])
	}
	if left := e2eStoreDocs(t, a, "outbox/"); len(left) != 0 {
		t.Errorf("%d outbox entries left on A, e.g. %s", len(left), left[0].ID)
	}
	for _, n := range []*e2eNode{b, c} {
		docs := e2eStoreDocs(t, n, "/cmbs/message/")
		seen := map[string]bool{}
		for _, d := range docs {
			seen[d.ID] = true
			var doc struct {
				Attributes struct {
					Cmbs struct {
						Message struct {
							PathHistory []string `json:"path_history"`
						}
					}
				}
			}
			if err := json.Unmarshal(d.Body, &doc); err != nil {
				t.Fatal(err)
			}
			if p := doc.Attributes.Cmbs.Message.PathHistory; len(p) != 2 || p[0] != "member-a" {
				t.Errorf("%s holds %s with path %v", n.spec.name, d.ID, p)
				break
			}
		}
		if len(docs) != total || len(seen) != total {
			t.Errorf("%s holds %d messages, want %d", n.spec.name, len(docs), total)
		}
		for i := range total {
			if id := fmt.Sprintf("/cmbs/message/m%05d", i); !seen[id] {
				t.Errorf("%s lacks %s", n.spec.name, id)
				break
			}
		}
	}
}

// TestE2EMemberDownReceivesInOrder stops B for 30 seconds while A sends to
// it: when B is back it receives everything sent meanwhile, in the order A
// sent it.
func TestE2EMemberDownReceivesInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	spec := func(name string) e2eNodeSpec { return e2eNodeSpec{name: name, httpAddr: "127.0.0.1:0"} }
	a, b := e2eStartNode(t, bin, spec("A")), e2eStartNode(t, bin, spec("B"))
	b.createMember(t, "member-b", e2eSockets(t), nil, nil, nil)
	a.createMember(t, "member-a", e2eSockets(t), []*e2eNode{b}, nil, nil)
	if found, _ := a.discover(t); len(found) != 1 {
		t.Fatalf("A discovered %v", found)
	}
	if err := b.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	const n = 60
	down := time.Now()
	for i := range n {
		if err := e2ePost(a, e2eBatch("d", i, i+1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second / n)
	}
	d, _ := a.attrs(t, "/cmbs/message/d00000", "message")["delivery"].(map[string]any)
	if got := e2eStatuses(d)["member-b"]; got != "pending" {
		t.Fatalf("with B down, the first message is %q for B: %v", got, d)
	}
	b.start(t)
	t.Logf("B was down for %v", time.Since(down).Round(time.Second))
	last := fmt.Sprintf("d%05d", n-1)
	cmbstest.EventuallyWithin(t, time.Minute, "B to receive what was sent while it was down", func() bool {
		d, _ := a.attrs(t, "/cmbs/message/"+last, "message")["delivery"].(map[string]any)
		return d["state"] == "done"
	})
	var prev time.Time
	for i := range n {
		id := fmt.Sprintf("d%05d", i)
		m := b.attrs(t, "/cmbs/message/"+id, "message")
		executed, _ := m["executed"].(string)
		at, err := time.Parse(time.RFC3339Nano, executed)
		if err != nil {
			t.Fatalf("B did not run %s: %v", id, m)
		}
		if at.Before(prev) {
			t.Fatalf("B ran %s at %s, before the message sent ahead of it (%s)", id, executed, prev.Format(time.RFC3339Nano))
		}
		prev = at
	}
}
