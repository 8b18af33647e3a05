package broker_test

import (
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
)

// beating is a member configuration with heartbeats every interval.
func beating(id string, interval time.Duration, neighbors ...*brokertest.Member) brokertest.Options {
	return brokertest.Options{ID: id, Neighbors: neighbors,
		Broker: broker.Config{HeartbeatInterval: interval, DiscoveryInterval: time.Hour, ForgetAfter: time.Hour}}
}

// route returns what m's record of member id says of the route to it.
func route(m *brokertest.Member, id string) (via string, reachable string) {
	// One read: the member may be forgotten between two.
	status, out := m.Do("GET", broker.MemberLocation+id, nil)
	if status != http.StatusOK {
		return "", "unknown"
	}
	res := out["resources"].([]any)[0].(map[string]any)
	attrs := res["attributes"].(map[string]any)["cmbs"].(map[string]any)["member"].(map[string]any)
	via, _ = attrs["via"].(string)
	reachable, _ = attrs["reachable"].(string)
	return via, reachable
}

// TestHeartbeatsFindAndReroute: in a diamond A–B–D, A–C–D where only the
// edges are configured, heartbeats alone teach every member every other;
// when B dies, A's route to D moves to C within the liveness window, what
// A had queued for D through B reaches D through C, exactly once, and B is
// reported down.
func TestHeartbeatsFindAndReroute(t *testing.T) {
	const beat = 100 * time.Millisecond
	dOpts := beating("m-d", beat)
	dOpts.Topics = []string{"diamond.d"}
	d := brokertest.Start(t, dOpts)
	bOpts := beating("m-b", beat, d)
	bOpts.DBPath = filepath.Join(t.TempDir(), "b.db")
	b := brokertest.Start(t, bOpts)
	c := brokertest.Start(t, beating("m-c", beat, d))
	a := brokertest.Start(t, beating("m-a", beat, b, c))

	cmbstest.EventuallyWithin(t, 5*time.Second, "A to route to D through B", func() bool {
		via, reachable := route(a, "m-d")
		return via == "m-b" && reachable == "true"
	})
	// A direct neighbour's record says it is reachable too, though its
	// route (direct, distance 1) is what discovery recorded already.
	cmbstest.EventuallyWithin(t, 5*time.Second, "A's record of B to say reachable", func() bool {
		via, reachable := route(a, "m-b")
		return via == "" && reachable == "true"
	})
	// D learned A through the heartbeats B and C relay.
	cmbstest.EventuallyWithin(t, 5*time.Second, "D to know A", func() bool {
		_, reachable := route(d, "m-a")
		return reachable == "true"
	})

	// B dies. A sends to D meanwhile, with B still its route at first.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	a.Message("after-b", "l2", nil)
	a.Must(http.StatusAccepted, "POST", "/cmbs/message/after-b?action=send_l2", map[string]any{})
	began := time.Now()
	cmbstest.EventuallyWithin(t, 5*time.Second, "A to route to D through C", func() bool {
		via, _ := route(a, "m-d")
		return via == "m-c"
	})
	t.Logf("route to D moved to C %v after B died", time.Since(began).Round(time.Millisecond))
	cmbstest.EventuallyWithin(t, 5*time.Second, "A to see B unreachable", func() bool {
		_, reachable := route(a, "m-b")
		return reachable == "false"
	})
	cmbstest.EventuallyWithin(t, 10*time.Second, "the message to reach D through C", func() bool { return d.Has("after-b") })
	path := d.Attrs("/cmbs/message/after-b", "message")["path_history"].([]any)
	if len(path) != 3 || path[0] != "m-a" || path[1] != "m-c" || path[2] != "m-d" {
		t.Errorf("path at D: %v", path)
	}
	state := a.Attrs("/cmbs/member/m-a", "member")["neighbors_state"].(map[string]any)
	if s, _ := state[b.Sockets[broker.L1]].(string); s == "" || s[:len("unreachable")] != "unreachable" {
		t.Errorf("A's neighbors_state for B: %q", s)
	}

	// A send that chose its next hops before the route changed (here: the
	// record of D edited back to say via B) queues D's part on B's stream
	// after the reroute: the next beats move it to C all the same.
	a.Must(http.StatusOK, "POST", "/cmbs/member/m-d", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "m-b", "distance": 2}}}}}})
	a.Message("stale-route", "l32", map[string]any{"topics": []any{"diamond.d"}})
	a.Must(http.StatusAccepted, "POST", "/cmbs/message/stale-route?action=send_l32", map[string]any{})
	cmbstest.EventuallyWithin(t, 10*time.Second, "the message sent along a stale route to reach D", func() bool { return d.Has("stale-route") })
	if path := d.Attrs("/cmbs/message/stale-route", "message")["path_history"].([]any); len(path) != 3 || path[1] != "m-c" {
		t.Errorf("path at D: %v", path)
	}

	// B returns on its store: the part of the L2 message left for B when
	// D's part moved to C reaches it.
	bOpts.NoMember, bOpts.Sockets = true, b.Sockets
	brokertest.Start(t, bOpts)
	cmbstest.EventuallyWithin(t, 10*time.Second, "A to see B reachable again", func() bool {
		_, reachable := route(a, "m-b")
		return reachable == "true"
	})
	cmbstest.EventuallyWithin(t, 10*time.Second, "the message to reach B once it is back", func() bool {
		d, _ := a.Attrs("/cmbs/message/after-b", "message")["delivery"].(map[string]any)
		return d["state"] == "done"
	})
	d1, _ := a.Attrs("/cmbs/message/after-b", "message")["delivery"].(map[string]any)
	if got := brokertest.Outcome(d1); got["m-b"] != "delivered" || got["m-c"] != "delivered" || got["m-d"] != "delivered" {
		t.Errorf("outcome of the message sent while B was down: %v", d1)
	}
}

// TestLateJoinerAndForgetting: a member started after the others is known
// to all without a manual discovery; one that stops is unreachable within
// the liveness window and forgotten after ForgetAfter.
func TestLateJoinerAndForgetting(t *testing.T) {
	const beat = 100 * time.Millisecond
	forgetful := func(id string, n ...*brokertest.Member) brokertest.Options {
		o := beating(id, beat, n...)
		o.Broker.ForgetAfter = time.Second
		return o
	}
	b := brokertest.Start(t, forgetful("j-b"))
	a := brokertest.Start(t, forgetful("j-a", b))
	late := brokertest.Start(t, forgetful("j-late", b))
	cmbstest.EventuallyWithin(t, 5*time.Second, "A to know the late member", func() bool {
		via, reachable := route(a, "j-late")
		return via == "j-b" && reachable == "true"
	})
	if err := late.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	cmbstest.EventuallyWithin(t, 5*time.Second, "A to see the late member unreachable", func() bool {
		_, reachable := route(a, "j-late")
		return reachable == "false"
	})
	t.Logf("unreachable %v after it stopped", time.Since(stopped).Round(time.Millisecond))
	cmbstest.EventuallyWithin(t, 10*time.Second, "A to forget it", func() bool {
		_, reachable := route(a, "j-late")
		return reachable == "unknown"
	})
}

// TestHopLimitAlongRoutes: in a chain A–B–C–D whose routes heartbeats
// made, a message's hop limit is the length of the longest path it may
// take: with hop_limit 2, an L2 from A reaches B and C, and D, three hops
// away, is failed at once at C, which tells A by receipt (a 50-member
// TestMesh graph has members 9 hops apart, one more than the default). With
// hop_limit 3, D gets it too.
func TestHopLimitAlongRoutes(t *testing.T) {
	const beat = 100 * time.Millisecond
	d := brokertest.Start(t, beating("h-d", beat))
	c := brokertest.Start(t, beating("h-c", beat, d))
	b := brokertest.Start(t, beating("h-b", beat, c))
	a := brokertest.Start(t, beating("h-a", beat, b))
	cmbstest.EventuallyWithin(t, 10*time.Second, "A to route to D through B", func() bool {
		via, reachable := route(a, "h-d")
		return via == "h-b" && reachable == "true"
	})
	cmbstest.EventuallyWithin(t, 10*time.Second, "D to route to A through C", func() bool {
		via, reachable := route(d, "h-a")
		return via == "h-c" && reachable == "true"
	})

	a.Message("two-hops", "l2", map[string]any{"hop_limit": 2})
	dests := a.Send("two-hops", "l2")["destinations"].(map[string]any)
	if got := brokertest.Outcome(map[string]any{"destinations": dests}); got["h-b"] != "delivered" || got["h-c"] != "delivered" || got["h-d"] != "failed" {
		t.Fatalf("outcome with hop_limit 2: %v", dests)
	}
	if r := dests["h-d"].(map[string]any); r["reason"] != "hop limit 2 reached at h-c" || r["via"] != "h-c" {
		t.Errorf("D with hop_limit 2: %v", r)
	}
	if d.Has("two-hops") {
		t.Error("D stores a message that crossed more members than its hop limit")
	}
	if got := c.Attrs("/cmbs/message/two-hops", "message")["path_history"]; !reflect.DeepEqual(got, []any{"h-a", "h-b", "h-c"}) {
		t.Errorf("path at C: %v", got)
	}

	a.Message("three-hops", "l2", map[string]any{"hop_limit": 3})
	if got := brokertest.Outcome(a.Send("three-hops", "l2")); got["h-b"] != "delivered" || got["h-c"] != "delivered" || got["h-d"] != "delivered" {
		t.Fatalf("outcome with hop_limit 3: %v", got)
	}
	if got := d.Attrs("/cmbs/message/three-hops", "message")["path_history"]; !reflect.DeepEqual(got, []any{"h-a", "h-b", "h-c", "h-d"}) {
		t.Errorf("path at D: %v", got)
	}
}

// TestStaleRouteBackAlongThePath: for a moment after a route changes, two
// members may each route a third through the other. A message A forwards
// to C through B, whose record says C is reached through A, is not sent
// back to A (which would refuse it as a loop, for good): B takes another
// way, here C itself, and C gets it.
func TestStaleRouteBackAlongThePath(t *testing.T) {
	c := brokertest.Start(t, brokertest.Options{ID: "l-c"})
	b := brokertest.Start(t, brokertest.Options{ID: "l-b", Neighbors: []*brokertest.Member{c}})
	a := brokertest.Start(t, brokertest.Options{ID: "l-a", Neighbors: []*brokertest.Member{b, c}})
	b.Discover()
	a.Discover()
	b.Discover() // B knows A now
	if _, reachable := route(b, "l-a"); reachable == "unknown" {
		t.Fatal("B does not know A")
	}
	through := func(m *brokertest.Member, via string) {
		m.Must(http.StatusOK, "POST", broker.MemberLocation+"l-c", map[string]any{"resources": []any{map[string]any{
			"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": via, "distance": 2}}}}}})
	}
	through(a, "l-b")
	through(b, "l-a")

	a.Message("stale", "l2", nil)
	got := brokertest.Outcome(a.Send("stale", "l2"))
	if got["l-c"] != "delivered" || got["l-b"] != "delivered" {
		t.Fatalf("outcome %v", got)
	}
	path := c.Attrs("/cmbs/message/stale", "message")["path_history"].([]any)
	if len(path) != 3 || path[0] != "l-a" || path[1] != "l-b" || path[2] != "l-c" {
		t.Errorf("path at C: %v", path)
	}
}
