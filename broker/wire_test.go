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
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// TestDeliverRefusesUnusableMessageIDs: a delivery from the network names
// its message's id, which becomes the stored message's location; an id the
// OCCI interface would refuse must not be stored under a location no client
// can reach (or at the collection itself).
func TestDeliverRefusesUnusableMessageIDs(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L2}})
	c, err := layers.NewClient(layers.ClientConfig{Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	for _, id := range []string{"", "a/b", "../member/x", "-x", "x y"} {
		t.Run(id, func(t *testing.T) {
			payload, err := json.Marshal(map[string]any{
				"type": "deliver", "layer": "l2", "from": map[string]any{"id": "member-s", "sockets": map[string]any{}},
				"message": map[string]any{"id": id, "mixins": []any{"http://houssem.org/cmbs#l2"}, "attributes": map[string]any{}},
				"hops":    1, "deadline": time.Now().Add(5 * time.Second),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Request(context.Background(), m.Sockets[broker.L2], payload)
			if !errors.Is(err, layers.ErrRemote) {
				t.Errorf("delivery of message id %q answered %v, want a remote error", id, err)
			}
			if _, err := m.Store.Get(context.Background(), broker.MessageLocation+id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("message id %q stored at %s (get: %v)", id, broker.MessageLocation+id, err)
			}
		})
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
	defer cmbstest.NoError(t, c.Close)
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
	defer cmbstest.NoError(t, c.Close)
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
	defer cmbstest.NoError(t, c.Close)
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

// TestConcurrentDuplicateRunsOnce: a delivery arriving again while the first
// is still executing (a sender's retry after a timeout) is a duplicate: an
// L2 message runs once and is stored once.
func TestConcurrentDuplicateRunsOnce(t *testing.T) {
	x := &slowExecutor{again: make(chan struct{})}
	m := brokertest.Start(t, brokertest.Options{ID: "member-r", Layers: []broker.Layer{broker.L2}, Broker: broker.Config{Executor: x}})
	c, err := layers.NewClient(layers.ClientConfig{Timeout: 10 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	payload, err := json.Marshal(map[string]any{
		"type": "deliver", "layer": "l2", "from": map[string]any{"id": "member-s", "sockets": map[string]any{}},
		"message": map[string]any{"id": "m-twice", "mixins": []any{"http://houssem.org/cmbs#l2"}, "attributes": map[string]any{}},
		"hops":    1, "deadline": time.Now().Add(10 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Request(context.Background(), m.Sockets[broker.L2], payload); err != nil {
				t.Errorf("delivery: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := x.count(); n != 1 {
		t.Errorf("the message ran %d times, want once", n)
	}
	if !m.Has("m-twice") {
		t.Errorf("the message is not stored")
	}
}
