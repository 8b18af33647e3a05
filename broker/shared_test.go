package broker_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/lease"
)

// keeper starts a lease keeper for holder on st, closed when t ends.
func keeper(t *testing.T, st store.Store, holder string) *lease.Keeper {
	t.Helper()
	k, err := lease.New(lease.Config{Store: st, Holder: holder, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// TestSharedStore runs member-a on two servers sharing one store, A1 and
// A2, each with its own leases. A1 delivers to member-b first and holds the
// streams' leases: a send accepted by A2 is delivered by A1, and A2's
// client, waiting under Prefer: wait, hears the outcome A1 recorded. Once A1 stops
// (releasing its leases), A2 delivers the stream itself.
func TestSharedStore(t *testing.T) {
	st := brokertest.OpenBolt(t)
	b := brokertest.Start(t, brokertest.Options{ID: "member-b"})
	k1 := keeper(t, st, "a1")
	a1 := brokertest.Start(t, brokertest.Options{ID: "member-a", Store: st, Neighbors: []*brokertest.Member{b},
		Broker: broker.Config{Leases: k1}})
	a1.Discover()

	a1.Message("s-0", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1]})
	a1.Send("s-0", "l1")
	a1.Message("s-1", "l2", nil)
	if d := a1.Send("s-1", "l2"); brokertest.Outcome(d)["member-b"] != "delivered" {
		t.Fatalf("s-1 from A1: %v", d)
	}
	for _, stream := range []string{"outbox/l1/member-b/", "outbox/l2/member-b/"} {
		if held, _ := k1.Acquire(t.Context(), stream); !held {
			t.Fatalf("A1 does not hold the stream %s it delivered", stream)
		}
	}
	a2 := brokertest.Start(t, brokertest.Options{ID: "member-a", Store: st, NoMember: true,
		Broker: broker.Config{Leases: keeper(t, st, "a2")}})

	body := brokertest.MessageBody("s-2", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1], "send_on_create": "True"})
	res := a2.MustRequest(http.StatusCreated, "POST", broker.MessageLocation, body, "Prefer", "wait=20")
	msg := res.Body["resources"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["cmbs"].(map[string]any)["message"].(map[string]any)
	if msg["delivery"].(map[string]any)["state"] != "done" {
		t.Fatalf("s-2 created on A2 under Prefer: wait answered %s, want its outcome", res.Raw)
	}
	a2.Message("s-3", "l2", nil)
	if d := a2.Send("s-3", "l2"); brokertest.Outcome(d)["member-b"] != "delivered" {
		t.Fatalf("s-3 from A2 while A1 holds the stream: %v", d)
	}
	if held, _ := k1.Acquire(t.Context(), "outbox/l2/member-b/"); !held {
		t.Fatal("A1 lost the stream's lease meanwhile")
	}

	if err := a1.CloseBroker(); err != nil {
		t.Fatal(err)
	}
	if err := k1.Close(); err != nil {
		t.Fatal(err)
	}
	a2.Message("s-4", "l2", nil)
	if d := a2.Send("s-4", "l2"); brokertest.Outcome(d)["member-b"] != "delivered" {
		t.Fatalf("s-4 from A2 once A1 stopped: %v", d)
	}
	for _, id := range []string{"s-1", "s-3", "s-4"} {
		if !b.Has(id) {
			t.Errorf("member-b lacks %s", id)
		}
	}
}

// memberEvents records the member_down and member_up events a broker
// reports.
type memberEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *memberEvents) Emit(e broker.Event) {
	if e.Type != broker.EventMemberDown && e.Type != broker.EventMemberUp {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e.Type+" "+e.Member)
}

func (r *memberEvents) count(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == event {
			n++
		}
	}
	return n
}

// TestSharedLivenessReportedOnce: two servers sharing one store both
// exchange heartbeats with member-b, but only the holder of the liveness
// lease reports b going down, so a subscriber hears it once.
func TestSharedLivenessReportedOnce(t *testing.T) {
	const beat = 100 * time.Millisecond
	st := brokertest.OpenBolt(t)
	b := brokertest.Start(t, beating("member-b", beat))
	a1 := brokertest.Start(t, brokertest.Options{ID: "member-a", Store: st, Neighbors: []*brokertest.Member{b},
		Broker: broker.Config{Leases: keeper(t, st, "a1"), HeartbeatInterval: beat, DiscoveryInterval: time.Hour, ForgetAfter: time.Hour}})
	a2 := brokertest.Start(t, brokertest.Options{ID: "member-a", Store: st, NoMember: true,
		Broker: broker.Config{Leases: keeper(t, st, "a2"), HeartbeatInterval: beat, DiscoveryInterval: time.Hour, ForgetAfter: time.Hour}})
	var ev1, ev2 memberEvents
	a1.Broker.SetEventSink(&ev1)
	a2.Broker.SetEventSink(&ev2)
	cmbstest.EventuallyWithin(t, 5*time.Second, "both servers to route to member-b", func() bool {
		_, r1 := route(a1, "member-b")
		_, r2 := route(a2, "member-b")
		return r1 == "true" && r2 == "true"
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	down := "member_down member-b"
	cmbstest.EventuallyWithin(t, 5*time.Second, "member-b reported down", func() bool {
		return ev1.count(down)+ev2.count(down) > 0
	})
	time.Sleep(10 * beat) // the other server's heartbeats found it down too
	if n1, n2 := ev1.count(down), ev2.count(down); n1+n2 != 1 {
		t.Errorf("member-b reported down %d times by the first server and %d by the second, want once in all", n1, n2)
	}
}
