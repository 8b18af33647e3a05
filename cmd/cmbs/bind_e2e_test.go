package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
)

// TestE2EBindAdvertise runs two cmbs processes. A is declared by a config
// file as a container's member would be: its sockets name a host,
// localhost, that A does not bind; it binds 0.0.0.0 (bind_host) with the
// same ports, but for L3.2, bound on 127.0.0.1 alone (--bind-socket). B
// knows only A's advertised L1 socket: it discovers A, learns A's
// advertised sockets, and delivers L2 and L3.2 messages to A.
func TestE2EBindAdvertise(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	ports := map[string]int{}
	for _, l := range e2eLayers {
		ports[l] = e2eFreePort(t)
	}
	advertised := map[string]string{}
	var sockets strings.Builder
	for _, l := range e2eLayers {
		advertised[l] = fmt.Sprintf("tcp://localhost:%d", ports[l])
		fmt.Fprintf(&sockets, "    %s: %s\n", l, advertised[l])
	}
	cfgFile := filepath.Join(t.TempDir(), "a.yaml")
	cfg := "bind_host: 0.0.0.0\nmember:\n  id: member-a\n  sockets:\n" + sockets.String() +
		"  topics: [weather.paris]\n  start: [l1, l2, l31, l32, l4]\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := e2eStartNode(t, bin, e2eNodeSpec{name: "A", httpAddr: "127.0.0.1:0",
		extra: []string{"--config", cfgFile, "--bind-socket", fmt.Sprintf("l32=tcp://127.0.0.1:%d", ports["l32"])}})
	a.id, a.sockets = "member-a", advertised

	layers := map[string]any{}
	cmbstest.EventuallyWithin(t, 30*time.Second, "A's layers running", func() bool {
		layers = a.layers(t)
		for _, l := range e2eLayers {
			if layers[l] != "running" {
				return false
			}
		}
		return true
	})
	if got := a.member(t, "member-a")["l2_socket"]; got != advertised["l2"] {
		t.Fatalf("A's l2 socket = %v, want the advertised %s", got, advertised["l2"])
	}
	// Bound on every interface: 127.0.0.2 answers too, which the name
	// localhost never resolves to; but L3.2, bound by --bind-socket on
	// 127.0.0.1 alone, does not.
	dials := func(addr string) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
	for _, l := range []string{"l1", "l2", "l31", "l4"} {
		if addr := fmt.Sprintf("127.0.0.2:%d", ports[l]); !dials(addr) {
			t.Errorf("A's %s does not listen on %s", l, addr)
		}
	}
	if addr := fmt.Sprintf("127.0.0.2:%d", ports["l32"]); dials(addr) {
		t.Errorf("A's l32 listens on %s although --bind-socket bound it on 127.0.0.1", addr)
	}
	if addr := fmt.Sprintf("127.0.0.1:%d", ports["l32"]); !dials(addr) {
		t.Errorf("A's l32 does not listen on %s", addr)
	}

	b := e2eStartNode(t, bin, e2eNodeSpec{name: "B", httpAddr: "127.0.0.1:0"})
	b.createMember(t, "member-b", e2eSockets(t), []*e2eNode{a}, nil, nil)
	if found, un := b.discover(t); len(found) != 1 || found[0] != "member-a" || len(un) != 0 {
		t.Fatalf("B discovered %v, unreachable %v", found, un)
	}
	if got := b.member(t, "member-a")["l2_socket"]; got != advertised["l2"] {
		t.Fatalf("B knows A's l2 socket as %v, want %s", got, advertised["l2"])
	}
	b.message(t, "to-a", "l2", nil)
	d := b.send(t, "to-a", "l2")
	if got := e2eDestinations(d)["member-a"]; got["status"] != "delivered" || got["endpoint"] != advertised["l2"] {
		t.Fatalf("to-a for member-a: %v, want delivered at %s", got, advertised["l2"])
	}
	if !a.has(t, "to-a") {
		t.Fatal("A does not hold to-a")
	}
	b.message(t, "weather", "l32", map[string]any{"topics": []any{"weather.paris"}})
	d = b.send(t, "weather", "l32")
	if got := e2eDestinations(d)["member-a"]; got["status"] != "delivered" || got["endpoint"] != advertised["l32"] {
		t.Fatalf("weather for member-a: %v, want delivered at %s", got, advertised["l32"])
	}
}
