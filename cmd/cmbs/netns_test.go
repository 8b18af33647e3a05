package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The network-namespace test puts members on three "hosts" A, B and C: one
// network namespace each, A–B and B–C joined by veth pairs, IP forwarding
// off in B. A and C each have a default route through B, yet A cannot
// reach C at the IP level: only the broker's hop-by-hop forwarding through
// B carries A's messages to C. Only 10.231.0.0/16 addresses are used, and
// only inside the namespaces the test creates.

// e2eNetns is a network namespace the test created and the address its
// member uses there.
type e2eNetns struct {
	name string
	addr string
}

// e2eNsDial returns a DialContext that opens its connections inside the
// network namespace ns: the dialling goroutine is locked to its thread,
// which joins ns while the socket is created and returns to the test's own
// namespace afterwards. A socket stays in the namespace it was created in,
// whichever thread uses it later.
func e2eNsDial(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("own network namespace: %w", err)
		}
		defer func() { _ = home.Close() }()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("network namespace %s: %w", ns, err)
		}
		defer func() { _ = target.Close() }()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter network namespace %s: %w", ns, err)
		}
		var d net.Dialer
		conn, dialErr := d.DialContext(ctx, network, addr)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread is stuck in ns: left locked, it ends with this
			// goroutine instead of serving others.
			if conn != nil {
				_ = conn.Close()
			}
			return nil, fmt.Errorf("leave network namespace %s: %w", ns, err)
		}
		runtime.UnlockOSThread()
		return conn, dialErr
	}
}

// client returns an HTTP client whose connections start in the namespace.
func (ns e2eNetns) client(t *testing.T) *http.Client {
	tr := &http.Transport{DialContext: e2eNsDial(ns.name)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// sockets are the member's layer endpoints on its namespace address; the
// namespace is its own, so fixed ports are free.
func (ns e2eNetns) sockets() map[string]string {
	ports := map[string]int{"l1": 7010, "l2": 7020, "l31": 7031, "l32": 7032, "l4": 7040}
	out := map[string]string{}
	for l, p := range ports {
		out[l] = fmt.Sprintf("tcp://%s:%d", ns.addr, p)
	}
	return out
}

// e2eNetnsLab creates network namespaces and the links between them for
// one test; everything it creates is removed when the test ends, whether it
// passed or not.
type e2eNetnsLab struct {
	t      *testing.T
	ipTool string
	// prefix makes the namespaces' names unique to this run.
	prefix string
	// hosts counts the namespaces created.
	hosts int
}

// e2eNetnsPrereqs skips t unless it may create network namespaces: not in
// -short, as root, with the ip command. It returns the ip command's path.
func e2eNetnsPrereqs(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("creates network namespaces and runs cmbs processes")
	}
	if os.Geteuid() != 0 {
		t.Skipf("creating network namespaces and veth pairs needs root; running as uid %d", os.Geteuid())
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("no ip command (iproute2; make deps installs it): %v", err)
	}
	return ipTool
}

func newE2ENetnsLab(t *testing.T, ipTool string) *e2eNetnsLab {
	t.Helper()
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatal(err)
	}
	return &e2eNetnsLab{t: t, ipTool: ipTool, prefix: "cmbs-" + hex.EncodeToString(suffix[:]) + "-"}
}

// ip runs the ip command.
func (l *e2eNetnsLab) ip(args ...string) error {
	out, err := exec.Command(l.ipTool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// must runs each step with the ip command, failing the test at the first
// that fails.
func (l *e2eNetnsLab) must(steps ...[]string) {
	l.t.Helper()
	for _, step := range steps {
		if err := l.ip(step...); err != nil {
			l.t.Fatal(err)
		}
	}
}

// undo runs the ip command when the test ends.
func (l *e2eNetnsLab) undo(args ...string) {
	l.t.Cleanup(func() {
		if err := l.ip(args...); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	})
}

// host creates a namespace with its loopback up, for a member using addr.
// When the kernel refuses the first namespace of a test, the test is
// skipped: the machine does not allow it, which is not a failure.
func (l *e2eNetnsLab) host(name, addr string) e2eNetns {
	l.t.Helper()
	ns := e2eNetns{name: l.prefix + name, addr: addr}
	if err := l.ip("netns", "add", ns.name); err != nil {
		if l.hosts == 0 {
			l.t.Skipf("cannot create network namespaces here: %v", err)
		}
		l.t.Fatal(err)
	}
	l.hosts++
	l.undo("netns", "del", ns.name)
	l.must([]string{"-n", ns.name, "link", "set", "lo", "up"})
	return ns
}

// link joins a and b with a veth pair, aIf in a holding aAddr and bIf in b
// holding bAddr (CIDR notation), both up. The pair is created inside the
// namespaces, so the host's own interfaces are never touched; deleting one
// end removes the pair.
func (l *e2eNetnsLab) link(a e2eNetns, aIf, aAddr string, b e2eNetns, bIf, bAddr string) {
	l.t.Helper()
	l.must([]string{"-n", a.name, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name})
	l.undo("-n", a.name, "link", "del", aIf)
	l.must(
		[]string{"-n", a.name, "addr", "add", aAddr, "dev", aIf},
		[]string{"-n", b.name, "addr", "add", bAddr, "dev", bIf},
		[]string{"-n", a.name, "link", "set", aIf, "up"},
		[]string{"-n", b.name, "link", "set", bIf, "up"},
	)
}

// noForwarding turns IP forwarding off in each namespace and checks it is:
// only the brokers then carry anything beyond a direct link.
func (l *e2eNetnsLab) noForwarding(hosts ...e2eNetns) {
	l.t.Helper()
	for _, ns := range hosts {
		l.must([]string{"netns", "exec", ns.name, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"})
		out, err := exec.Command(l.ipTool, "netns", "exec", ns.name, "cat", "/proc/sys/net/ipv4/ip_forward").Output()
		if err != nil || strings.TrimSpace(string(out)) != "0" {
			l.t.Fatalf("IP forwarding in %s: %q, %v; want 0", ns.name, out, err)
		}
	}
}

// e2eHosts creates the namespaces A, B, C and their links, all removed
// when the test ends, whether it passed or not. It skips the test when the
// kernel does not let it create a namespace.
//
//	A 10.231.1.1 ── 10.231.1.2 B 10.231.2.1 ── 10.231.2.2 C
//
// B's member uses the address facing A; C reaches it through its default
// route.
func e2eHosts(t *testing.T, ipTool string) (a, b, c e2eNetns) {
	t.Helper()
	lab := newE2ENetnsLab(t, ipTool)
	a, b, c = lab.host("a", "10.231.1.1"), lab.host("b", "10.231.1.2"), lab.host("c", "10.231.2.2")
	lab.link(a, "cmbs-ab", "10.231.1.1/24", b, "cmbs-ba", "10.231.1.2/24")
	lab.link(b, "cmbs-bc", "10.231.2.1/24", c, "cmbs-cb", "10.231.2.2/24")
	lab.must(
		[]string{"-n", a.name, "route", "add", "default", "via", "10.231.1.2"},
		[]string{"-n", c.name, "route", "add", "default", "via", "10.231.2.1"},
	)
	lab.noForwarding(b)
	return a, b, c
}

// TestNetnsBroker runs members A, B and C in network namespaces where
// only B reaches both others: B discovers C, A discovers B and learns C
// through it, and A's messages reach C forwarded by B.
func TestNetnsBroker(t *testing.T) {
	t.Parallel()
	ipTool := e2eNetnsPrereqs(t)
	bin := e2eBinary.get(t)
	began := time.Now()
	nsA, nsB, nsC := e2eHosts(t, ipTool)
	host := func(name string, ns e2eNetns) *e2eNode {
		return e2eStartNode(t, bin, e2eNodeSpec{name: name, wrap: []string{ipTool, "netns", "exec", ns.name},
			httpAddr: ns.addr + ":8080", client: ns.client(t)})
	}
	a, b, c := host("A", nsA), host("B", nsB), host("C", nsC)
	c.createMember(t, "member-c", nsC.sockets(), nil, e2eTopicsC, e2eProvidersC)
	b.createMember(t, "member-b", nsB.sockets(), []*e2eNode{c}, e2eTopicsB, e2eProvidersB)
	a.createMember(t, "member-a", nsA.sockets(), []*e2eNode{b}, nil, nil)
	t.Logf("namespaces and three members up in %v", time.Since(began).Round(time.Millisecond))

	// C's server listens, yet nothing from A gets there.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	conn, err := e2eNsDial(nsA.name)(ctx, "tcp", nsC.addr+":8080")
	cancel()
	if err == nil {
		_ = conn.Close()
		t.Fatal("A reaches C at the IP level: the test's topology is wrong")
	}
	t.Logf("A → C at the IP level: %v", err)

	// B knows A too when A's first heartbeat, which announces it, came
	// before B's discovery.
	if got, un := b.discover(t); !slices.Contains(got, "member-c") || len(un) != 0 {
		t.Fatalf("B discovered %v, unreachable %v", got, un)
	}
	got, un := a.discover(t)
	if !reflect.DeepEqual(got, []string{"member-b", "member-c"}) {
		t.Fatalf("A discovered %v, want member-b and member-c", got)
	}
	if _, ok := un[c.sockets["l1"]]; !ok || len(un) != 1 {
		t.Errorf("A's direct attempt at C not reported unreachable: %v", un)
	}
	if rec := a.member(t, "member-c"); rec["via"] != "member-b" || rec["distance"] != 2.0 || rec["l1_socket"] != c.sockets["l1"] {
		t.Errorf("A's record of C: via %v, distance %v, l1 %v; want via member-b, distance 2", rec["via"], rec["distance"], rec["l1_socket"])
	}
	if rec := a.member(t, "member-b"); rec["via"] != "" || rec["l1_socket"] != b.sockets["l1"] {
		t.Errorf("A's record of B: via %v, l1 %v; want direct", rec["via"], rec["l1_socket"])
	}

	routes := map[string]e2eRoute{
		"member-b": {path: []string{"member-a", "member-b"}},
		"member-c": {via: "member-b", path: []string{"member-a", "member-b", "member-c"}},
	}
	for _, tc := range e2eRoutingCases("netns-") {
		t.Run(tc.id, func(t *testing.T) {
			e2eCheckRouting(t, a, []*e2eNode{b, c}, tc, routes)
		})
	}

	t.Run("l1 request and reply through B", func(t *testing.T) {
		a.message(t, "netns-l1", "l1", map[string]any{"l1_socket_receiver_member": c.sockets["l1"], "message_content": "ping"})
		d := a.send(t, "netns-l1", "l1")
		r := e2eDestinations(d)["member-c"]
		if r["status"] != "delivered" || r["via"] != "member-b" {
			t.Fatalf("outcome %v", d)
		}
		result, _ := a.attrs(t, "/cmbs/message/netns-l1", "message")["result"].(map[string]any)
		if result["member"] != "member-c" || result["content"] != "ping" {
			t.Errorf("C's reply is not in A's result: %v", result)
		}
		if b.has(t, "netns-l1") {
			t.Error("B stored an l1 request it only forwarded")
		}
	})

	for _, n := range []*e2eNode{a, b, c} {
		if err := n.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", n.spec.name, err)
		}
	}
	t.Logf("TestNetnsBroker took %v", time.Since(began).Round(time.Millisecond))
}
