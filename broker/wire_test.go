package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// rawPeer speaks the members' protocol by hand to a member's layer socket,
// as another member (or a rogue process) would.
type rawPeer struct {
	t        *testing.T
	c        *layers.Client
	endpoint string
	from     string
	layer    broker.Layer
	session  string
	next     uint64
}

func newRawPeer(t *testing.T, endpoint, from string, l broker.Layer) *rawPeer {
	t.Helper()
	c, err := layers.NewClient(layers.ClientConfig{Timeout: 10 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawPeer{t: t, c: c, endpoint: endpoint, from: from, layer: l}
}

func (p *rawPeer) request(v any) map[string]any {
	p.t.Helper()
	payload, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	raw, err := p.c.Request(context.Background(), p.endpoint, payload)
	if err != nil {
		p.t.Fatalf("request: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		p.t.Fatalf("answer %s: %v", raw, err)
	}
	return out
}

// sync opens a session.
func (p *rawPeer) sync(session string) {
	p.t.Helper()
	p.session = session
	rep := p.request(map[string]any{"type": "sync", "layer": p.layer, "session": session, "from": map[string]any{"id": p.from}})
	if rep["expect"] != 1.0 {
		p.t.Fatalf("sync answered %v", rep)
	}
	p.next = 1
}

// deliver sends one batch of message entries (as the attributes of
// messages named by id) for the receiver, and returns the answer.
func (p *rawPeer) deliver(ids ...string) map[string]any {
	p.t.Helper()
	var entries []any
	for _, id := range ids {
		entries = append(entries, map[string]any{"seq": p.next, "kind": "message", "to": []any{}, "hops": 0,
			"expires": time.Now().Add(time.Minute),
			"message": map[string]any{"id": id, "mixins": []any{"http://houssem.org/cmbs#" + string(p.layer)}, "attributes": map[string]any{}}})
		p.next++
	}
	return p.request(map[string]any{"type": "deliver", "layer": p.layer, "session": p.session, "from": map[string]any{"id": p.from}, "entries": entries})
}

// statuses lists the status of each entry's first result.
func statuses(rep map[string]any) []string {
	var out []string
	results, _ := rep["results"].([]any)
	for _, r := range results {
		rs := r.(map[string]any)["results"].([]any)
		out = append(out, rs[0].(map[string]any)["status"].(string))
	}
	return out
}

// TestDeliverRefusesUnusableMessageIDs: a delivery from the network names
// its message's id, which becomes the stored message's location; an id the
// OCCI interface would refuse must not be stored under a location no client
// can reach (or at the collection itself).
func TestDeliverRefusesUnusableMessageIDs(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L2}})
	p := newRawPeer(t, m.Sockets[broker.L2], "member-s", broker.L2)
	p.sync("s1")
	for _, id := range []string{"", "a/b", "../member/x", "-x", "x y"} {
		t.Run(id, func(t *testing.T) {
			if got := statuses(p.deliver(id)); len(got) != 1 || got[0] != "failed" {
				t.Errorf("delivery of message id %q answered %v, want failed", id, got)
			}
			if _, err := m.Store.Get(context.Background(), broker.MessageLocation+id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("message id %q stored at %s (get: %v)", id, broker.MessageLocation+id, err)
			}
		})
	}
}

// TestDeliverSessions: entries are taken only in the order of their
// session's numbers; a batch after a gap is answered with the number
// expected, a session the member does not know with a request to sync, and
// nothing of either is taken.
func TestDeliverSessions(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L2}})
	p := newRawPeer(t, m.Sockets[broker.L2], "member-s", broker.L2)
	p.sync("s1")
	if got := statuses(p.deliver("m1", "m2")); len(got) != 2 || got[0] != "delivered" || got[1] != "delivered" {
		t.Fatalf("first batch: %v", got)
	}
	p.next = 5 // entries 3 and 4 were lost
	if rep := p.deliver("m5"); rep["expect"] != 3.0 {
		t.Fatalf("batch after a gap answered %v, want expect 3", rep)
	}
	p.next = 3
	if got := statuses(p.deliver("m3", "m1")); len(got) != 2 || got[0] != "delivered" {
		t.Fatalf("batch resuming at 3: %v", got)
	}
	p.session = "unknown"
	if rep := p.deliver("m9"); rep["resync"] != true {
		t.Fatalf("batch of an unknown session answered %v, want resync", rep)
	}
	for id, want := range map[string]bool{"m1": true, "m2": true, "m3": true, "m5": false, "m9": false} {
		if m.Has(id) != want {
			t.Errorf("%s stored: %v, want %v", id, !want, want)
		}
	}
}

// TestDescribeRefusesUnusableMemberIDs: a member described by the network is
// stored at its id's location, so an id OCCI refuses (such as "..", which
// clients resolve to another path) is not recorded.
func TestDescribeRefusesUnusableMemberIDs(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L1}})
	c, err := layers.NewClient(layers.ClientConfig{Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	for _, id := range []string{"..", ".", "-x", "~"} {
		t.Run(id, func(t *testing.T) {
			payload, err := json.Marshal(map[string]any{
				"type": "describe", "layer": "l1", "from": map[string]any{"id": id, "sockets": map[string]any{}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Request(context.Background(), m.Sockets[broker.L1], payload); err != nil {
				t.Fatalf("describe: %v", err)
			}
			if _, err := m.Store.Get(context.Background(), broker.MemberLocation+id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("member id %q recorded at %s (get: %v)", id, broker.MemberLocation+id, err)
			}
		})
	}
}

// TestDescribeRefusesUndialableAddresses: a description from the network is
// stored and its sockets dialled later, so sockets or neighbours no member
// could dial are refused, while a usable description is recorded.
func TestDescribeRefusesUndialableAddresses(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L1}})
	c, err := layers.NewClient(layers.ClientConfig{Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	for _, tc := range []struct {
		id        string
		sockets   map[string]any
		neighbors []any
		stored    bool
	}{
		{"wildcard", map[string]any{"l1": "tcp://*:5010"}, nil, false},
		{"not-zmq", map[string]any{"l2": "http://example.org/"}, nil, false},
		{"bad-layer", map[string]any{"l9": "tcp://127.0.0.1:5010"}, nil, false},
		{"bad-neighbor", map[string]any{"l1": "tcp://127.0.0.1:5010"}, []any{"nowhere"}, false},
		{"fine", map[string]any{"l1": "tcp://127.0.0.1:5010"}, []any{"tcp://127.0.0.1:6010"}, true},
	} {
		t.Run(tc.id, func(t *testing.T) {
			payload, err := json.Marshal(map[string]any{
				"type": "describe", "layer": "l1",
				"from": map[string]any{"id": tc.id, "sockets": tc.sockets, "neighbors": tc.neighbors},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Request(context.Background(), m.Sockets[broker.L1], payload); err != nil {
				t.Fatalf("describe: %v", err)
			}
			_, err = m.Store.Get(context.Background(), broker.MemberLocation+tc.id)
			if stored := err == nil; stored != tc.stored {
				t.Errorf("member %s stored: %v, want %v (get: %v)", tc.id, stored, tc.stored, err)
			}
		})
	}
}

// TestReceiversBoundRequestSize: a peer cannot make a layer's receiver read
// a request of any size it likes; one far beyond what a message can be is
// dropped by libzmq before it is read, and the receiver serves on.
func TestReceiversBoundRequestSize(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L1}})
	c, err := layers.NewClient(layers.ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	huge := make([]byte, 65<<20)
	for i := range huge {
		huge[i] = 'x'
	}
	if _, err := c.Request(context.Background(), m.Sockets[broker.L1], huge); err == nil || errors.Is(err, layers.ErrRemote) {
		t.Errorf("a %d-byte request reached the handler (answer: %v)", len(huge), err)
	}
	payload, err := json.Marshal(map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "member-s"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(context.Background(), m.Sockets[broker.L1], payload); err != nil {
		t.Errorf("after the oversized request, describe: %v", err)
	}
}

// slowExecutor counts executions; the first waits (up to a deadline) for a
// second to begin, which is what a retry arriving mid-execution would do.
type slowExecutor struct {
	mu    sync.Mutex
	calls int
	again chan struct{}
}

func (x *slowExecutor) Execute(context.Context, string, *occi.Entity) (any, error) {
	x.mu.Lock()
	x.calls++
	first := x.calls == 1
	if x.calls == 2 {
		close(x.again)
	}
	x.mu.Unlock()
	if first {
		select {
		case <-x.again:
		case <-time.After(2 * time.Second):
		}
	}
	return "done", nil
}

func (x *slowExecutor) count() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls
}

// TestConcurrentDuplicateRunsOnce: a copy of a message arriving while the
// first is still executing (from another peer, or a sender's retry in a
// new session) is a duplicate: it runs once and is stored once.
func TestConcurrentDuplicateRunsOnce(t *testing.T) {
	x := &slowExecutor{again: make(chan struct{})}
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L2}, Broker: broker.Config{Executor: x}})
	var wg sync.WaitGroup
	answers := make([][]string, 2)
	for i, from := range []string{"member-s", "member-t"} {
		p := newRawPeer(t, m.Sockets[broker.L2], from, broker.L2)
		p.sync("s-" + from)
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = statuses(p.deliver("m-twice"))
		}()
	}
	wg.Wait()
	if n := x.count(); n != 1 {
		t.Errorf("the message ran %d times, want once", n)
	}
	if !m.Has("m-twice") {
		t.Errorf("the message is not stored")
	}
	for i, a := range answers {
		if len(a) != 1 || a[0] != "delivered" {
			t.Errorf("peer %d was answered %v, want delivered", i, a)
		}
	}
}
