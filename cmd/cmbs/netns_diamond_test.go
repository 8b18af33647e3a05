package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
)

// The diamond: four hosts, A–B–D and A–C–D, IP forwarding off everywhere,
// so A and D reach each other only through the brokers on B or C. Each
// member's address is a /32 on its loopback, routed on each link to the
// neighbour behind it; A and D have a default route through B too, so a
// packet from A to D does leave A, and B drops it.
//
//	        10.231.12.0/24  B 10.231.10.2  10.231.24.0/24
//	A 10.231.10.1                                        D 10.231.10.4
//	        10.231.13.0/24  C 10.231.10.3  10.231.34.0/24
//
// Only 10.231.10.0/24 and the four link networks are used, inside the
// namespaces the test creates.

// e2eDiamond creates the four hosts and their links.
func e2eDiamond(t *testing.T, ipTool string) (a, b, c, d e2eNetns) {
	t.Helper()
	lab := newE2ENetnsLab(t, ipTool)
	a, b, c, d = lab.host("a", "10.231.10.1"), lab.host("b", "10.231.10.2"), lab.host("c", "10.231.10.3"), lab.host("d", "10.231.10.4")
	lab.link(a, "cmbs-ab", "10.231.12.1/24", b, "cmbs-ba", "10.231.12.2/24")
	lab.link(a, "cmbs-ac", "10.231.13.1/24", c, "cmbs-ca", "10.231.13.3/24")
	lab.link(b, "cmbs-bd", "10.231.24.2/24", d, "cmbs-db", "10.231.24.4/24")
	lab.link(c, "cmbs-cd", "10.231.34.3/24", d, "cmbs-dc", "10.231.34.4/24")
	route := func(ns e2eNetns, dest, via string) []string {
		return []string{"-n", ns.name, "route", "add", dest, "via", via}
	}
	steps := [][]string{
		route(a, "10.231.10.2/32", "10.231.12.2"), route(a, "10.231.10.3/32", "10.231.13.3"), route(a, "default", "10.231.12.2"),
		route(b, "10.231.10.1/32", "10.231.12.1"), route(b, "10.231.10.4/32", "10.231.24.4"),
		route(c, "10.231.10.1/32", "10.231.13.1"), route(c, "10.231.10.4/32", "10.231.34.4"),
		route(d, "10.231.10.2/32", "10.231.24.2"), route(d, "10.231.10.3/32", "10.231.34.3"), route(d, "default", "10.231.24.2"),
	}
	for _, ns := range []e2eNetns{a, b, c, d} {
		steps = append(steps, []string{"-n", ns.name, "addr", "add", ns.addr + "/32", "dev", "lo"})
	}
	lab.must(steps...)
	lab.noForwarding(a, b, c, d)
	return a, b, c, d
}

// e2eStreamTopic is the topic D subscribes to and the stream's L3.2
// messages carry.
const e2eStreamTopic = "diamond.stream"

// e2eStreamBatch creates message i of the stream on L2 and on L3.2, each
// sent as it is created.
func e2eStreamBatch(i int) map[string]any {
	msg := func(layer string, extra map[string]any) any {
		attrs := map[string]any{"cmbs_layer": layer, "send_on_create": "True", "executable": "True", "storable": "True",
			"message_content": map[string]any{"n": i}}
		for k, v := range extra {
			attrs[k] = v
		}
		return map[string]any{
			"kind": "http://houssem.org/cmbs#message", "mixins": []any{"http://houssem.org/cmbs#" + layer},
			"id": e2eStreamID(layer, i), "attributes": map[string]any{"cmbs": map[string]any{"message": attrs}},
		}
	}
	return map[string]any{"resources": []any{msg("l2", nil), msg("l32", map[string]any{"topics": []string{e2eStreamTopic}})}}
}

func e2eStreamID(layer string, i int) string { return fmt.Sprintf("%s-%05d", layer, i) }

// e2eStream creates stream messages on n, one pair every interval, until
// stop is closed; it records when the request creating each pair started,
// so a pair started after an event cannot have been sent before it.
type e2eStream struct {
	mu      sync.Mutex
	started []time.Time
	err     error
	done    chan struct{}
}

func e2eStartStream(n *e2eNode, interval time.Duration, stop <-chan struct{}) *e2eStream {
	s := &e2eStream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			began := time.Now()
			if err := e2ePost(n, e2eStreamBatch(i)); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.started = append(s.started, began)
			s.mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// result waits for the stream to end and returns when the creation of
// each pair started.
func (s *e2eStream) result() ([]time.Time, error) {
	<-s.done
	return s.started, s.err
}

// counter reads a counter with a layer label from n's /metrics.
func (n *e2eNode) counter(t *testing.T, name, layer string) float64 {
	t.Helper()
	res, err := n.client.Get(n.baseURL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics on %s: %v", n.spec.name, err)
	}
	defer cmbstest.NoError(t, res.Body.Close)
	want := fmt.Sprintf("%s{layer=%q} ", name, layer)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s on %s: %v", want, n.spec.name, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics of %s", want, n.spec.name)
	return 0
}

// e2eDiamondOutage is how B goes away and comes back.
type e2eDiamondOutage struct {
	name string
	// down takes B away, up brings it back.
	down, up func(t *testing.T, b *e2eNode)
}

// TestNetnsDiamond runs members on the diamond A–B–D, A–C–D, each
// configured with its direct neighbours only (A: B and C; B and C: D): the
// heartbeats teach every member the others. A streams messages to D on L2
// and L3.2 while B goes away: A's record of D shows the route through C
// within 5 s, every message reaches D exactly once (those B had taken
// before it went once B is back), those sent after it went through C; B
// back rejoins. B is killed with SIGKILL and restarted on its store, or
// frozen with SIGSTOP and thawed: a frozen B leaves its connections open
// and what A had sent it unanswered, and then, thawed, forwards to D what
// A meanwhile sent through C.
func TestNetnsDiamond(t *testing.T) {
	t.Parallel()
	ipTool := e2eNetnsPrereqs(t)
	bin := e2eBinary.get(t)
	signal := func(sig syscall.Signal) func(t *testing.T, b *e2eNode) {
		return func(t *testing.T, b *e2eNode) {
			if err := syscall.Kill(-b.current().cmd.Process.Pid, sig); err != nil {
				t.Fatalf("%v to B: %v", sig, err)
			}
		}
	}
	for _, outage := range []e2eDiamondOutage{
		{name: "killed", down: func(t *testing.T, b *e2eNode) {
			_ = b.stop(t, syscall.SIGKILL) // killed: its exit status says only that
		}, up: func(t *testing.T, b *e2eNode) { b.start(t) }},
		{name: "frozen", down: signal(syscall.SIGSTOP), up: signal(syscall.SIGCONT)},
	} {
		t.Run(outage.name, func(t *testing.T) { e2eDiamondRun(t, ipTool, bin, outage) })
	}
}

func e2eDiamondRun(t *testing.T, ipTool, bin string, outage e2eDiamondOutage) {
	began := time.Now()
	nsA, nsB, nsC, nsD := e2eDiamond(t, ipTool)
	host := func(name string, ns e2eNetns) *e2eNode {
		return e2eStartNode(t, bin, e2eNodeSpec{name: name, wrap: []string{ipTool, "netns", "exec", ns.name},
			httpAddr: ns.addr + ":8080", client: ns.client(t)})
	}
	a, b, c, d := host("A", nsA), host("B", nsB), host("C", nsC), host("D", nsD)
	d.createMember(t, "member-d", nsD.sockets(), nil, []string{"diamond.>"}, nil)
	b.createMember(t, "member-b", nsB.sockets(), []*e2eNode{d}, nil, nil)
	c.createMember(t, "member-c", nsC.sockets(), []*e2eNode{d}, nil, nil)
	a.createMember(t, "member-a", nsA.sockets(), []*e2eNode{b, c}, nil, nil)
	t.Logf("namespaces and four members up in %v", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	conn, err := e2eNsDial(nsA.name)(ctx, "tcp", nsD.addr+":8080")
	cancel()
	if err == nil {
		_ = conn.Close()
		t.Fatal("A reaches D at the IP level: the test's topology is wrong")
	}
	t.Logf("A → D at the IP level: %v", err)

	// route returns what n's record of member id says of the way there.
	route := func(n *e2eNode, id string) (via, reachable string) {
		status, out := n.do(t, "GET", "/cmbs/member/"+id, nil)
		if status != http.StatusOK {
			return "", fmt.Sprintf("status %d: %v", status, out)
		}
		m := n.member(t, id)
		via, _ = m["via"].(string)
		reachable, _ = m["reachable"].(string)
		return via, reachable
	}
	converged := time.Now()
	cmbstest.EventuallyWithin(t, 20*time.Second, "A to route to D through B and know D's topics", func() bool {
		via, reachable := route(a, "member-d")
		return via == "member-b" && reachable == "true" && len(e2eStrings(a.member(t, "member-d")["topics"])) == 1
	})
	cmbstest.EventuallyWithin(t, 20*time.Second, "D to know A", func() bool {
		_, reachable := route(d, "member-a")
		return reachable == "true"
	})
	t.Logf("heartbeats converged in %v", time.Since(converged).Round(time.Millisecond))

	stopped := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(stopped) }) }
	t.Cleanup(stop) // on a failure too
	stream := e2eStartStream(a, 50*time.Millisecond, stopped)
	time.Sleep(2 * time.Second)
	outage.down(t, b)
	wentAt := time.Now()
	cmbstest.EventuallyWithin(t, 5*time.Second, "A's record of D to route through C", func() bool {
		via, _ := route(a, "member-d")
		return via == "member-c"
	})
	moved := time.Since(wentAt)
	t.Logf("A's route to D moved to C %v after B was %s", moved.Round(time.Millisecond), outage.name)
	cmbstest.EventuallyWithin(t, 5*time.Second-moved, "A's record of B to say unreachable", func() bool {
		_, reachable := route(a, "member-b")
		return reachable == "false"
	})
	state, _ := a.member(t, "member-a")["neighbors_state"].(map[string]any)
	if s, _ := state[b.sockets["l1"]].(string); !strings.HasPrefix(s, "unreachable") {
		t.Errorf("A's neighbors_state for B's %s: %q, want unreachable", b.sockets["l1"], s)
	}
	time.Sleep(3 * time.Second)
	stop()
	started, err := stream.result()
	if err != nil {
		t.Fatal(err)
	}
	total := len(started)
	t.Logf("A accepted %d messages on each of L2 and L3.2, %d of them created after B was %s", total,
		total-countBefore(started, wentAt), outage.name)

	// What A handed to B before B died is in B's custody until B is back;
	// everything else reaches D through C meanwhile.
	custody := func() (held []string, pending int) {
		for i := range total {
			for _, layer := range []string{"l2", "l32"} {
				id := e2eStreamID(layer, i)
				dl, _ := a.attrs(t, "/cmbs/message/"+id, "message")["delivery"].(map[string]any)
				r := e2eDestinations(dl)["member-d"]
				switch {
				case r["status"] == "delivered":
				case r["status"] == "forwarded" && r["via"] == "member-b":
					held = append(held, id)
				default:
					pending++
				}
			}
		}
		return held, pending
	}
	var held []string
	cmbstest.EventuallyWithin(t, time.Minute, "every message not in B's custody to reach D", func() bool {
		var pending int
		held, pending = custody()
		return pending == 0
	})
	t.Logf("%d messages reached D through C or before B died; %d are in B's custody", 2*total-len(held), len(held))

	outage.up(t, b)
	restarted := time.Now()
	cmbstest.EventuallyWithin(t, 20*time.Second, "A to see B reachable again", func() bool {
		_, reachable := route(a, "member-b")
		return reachable == "true"
	})
	t.Logf("B rejoined %v after it was back", time.Since(restarted).Round(time.Millisecond))
	cmbstest.EventuallyWithin(t, 20*time.Second, "B to reach A and D again", func() bool {
		_, toA := route(b, "member-a")
		_, toD := route(b, "member-d")
		return toA == "true" && toD == "true"
	})
	via, _ := route(a, "member-d")
	t.Logf("A routes to D through %s again", via)
	var waiting string
	var waitingFor map[string]any
	t.Cleanup(func() {
		if t.Failed() && waiting != "" {
			t.Logf("%s on A, still pending: %v", waiting, waitingFor)
		}
	})
	cmbstest.EventuallyWithin(t, time.Minute, "every message delivered to every destination", func() bool {
		for i := range total {
			for _, layer := range []string{"l2", "l32"} {
				waiting = e2eStreamID(layer, i)
				waitingFor, _ = a.attrs(t, "/cmbs/message/"+waiting, "message")["delivery"].(map[string]any)
				if waitingFor["state"] != "done" {
					return false
				}
			}
		}
		waiting = ""
		return true
	})

	throughB := 0
	for i := range total {
		for _, layer := range []string{"l2", "l32"} {
			id := e2eStreamID(layer, i)
			dl, _ := a.attrs(t, "/cmbs/message/"+id, "message")["delivery"].(map[string]any)
			want := map[string]string{"member-d": "delivered"}
			if layer == "l2" {
				want = map[string]string{"member-b": "delivered", "member-c": "delivered", "member-d": "delivered"}
			}
			if got := e2eStatuses(dl); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s on A: outcome %v, want %v", id, got, want)
			}
			m := d.attrs(t, "/cmbs/message/"+id, "message")
			path := e2eStrings(m["path_history"])
			if len(path) != 3 || path[0] != "member-a" || path[2] != "member-d" || m["executed"] == nil {
				t.Errorf("%s on D: path %v, executed %v", id, path, m["executed"])
				continue
			}
			if path[1] == "member-b" {
				throughB++
				if started[i].After(wentAt) {
					t.Errorf("%s, created %v after B was %s, reached D through B", id, started[i].Sub(wentAt), outage.name)
				}
			}
		}
	}
	// Once thawed, a frozen B forwards what A had sent it and then moved
	// to C: second copies, which D recognises.
	forwarded := b.counter(t, "cmbs_layer_messages_forwarded_total", "l2") + b.counter(t, "cmbs_layer_messages_forwarded_total", "l32")
	t.Logf("%d messages reached D through B, %d through C; B's current run forwarded %v towards D", throughB, 2*total-throughB, forwarded)
	// Each message was taken (stored and run) at D once: a second copy is
	// acknowledged as a duplicate, and not counted as received.
	for _, layer := range []string{"l2", "l32"} {
		if got := d.counter(t, "cmbs_layer_messages_received_total", layer); got != float64(total) {
			t.Errorf("D received %v messages on %s, want %d", got, layer, total)
		}
	}
	for _, n := range []*e2eNode{a, b, c, d} {
		if err := n.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", n.spec.name, err)
		}
	}
	t.Logf("the %s run took %v", outage.name, time.Since(began).Round(time.Millisecond))
}

// countBefore counts the times before t.
func countBefore(times []time.Time, t time.Time) int {
	n := 0
	for _, at := range times {
		if at.Before(t) {
			n++
		}
	}
	return n
}
