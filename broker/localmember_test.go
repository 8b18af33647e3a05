package broker_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers/layertest"
)

// bootDeclared starts a server the way `cmbs serve` does, on the store at
// dbPath: broker registered and started, then the local member declared
// by spec instead of requests. It returns what EnsureLocalMember did. The
// server is closed when the test ends, or earlier by Close.
func bootDeclared(t *testing.T, dbPath string, spec broker.LocalMemberSpec) (*brokertest.Member, error) {
	t.Helper()
	m := brokertest.Start(t, brokertest.Options{ID: spec.ID, DBPath: dbPath, Sockets: spec.Sockets, NoMember: true})
	return m, m.Broker.EnsureLocalMember(context.Background(), spec)
}

// allLayers declares a member with a free loopback socket for every layer,
// all of them started.
func allLayers(t *testing.T, id string, neighbors ...*brokertest.Member) broker.LocalMemberSpec {
	spec := broker.LocalMemberSpec{ID: id, Title: "member " + id, Summary: "declared in a config file",
		Sockets: brokertest.FreeSockets(t), Start: broker.Layers(),
		Topics: []string{"weather.*"}, Providers: []string{"storage"}}
	for _, n := range neighbors {
		spec.Neighbors = append(spec.Neighbors, n.Sockets[broker.L1])
	}
	return spec
}

func mustBoot(t *testing.T, spec broker.LocalMemberSpec) *brokertest.Member {
	t.Helper()
	d, err := bootDeclared(t, filepath.Join(t.TempDir(), "cmbs.db"), spec)
	if err != nil {
		t.Fatalf("EnsureLocalMember: %v", err)
	}
	return d
}

func layerStates(running ...string) map[string]any {
	out := map[string]any{}
	for _, l := range broker.Layers() {
		out[string(l)] = "stopped"
	}
	for _, l := range running {
		out[l] = "running"
	}
	return out
}

// accepts reports whether something listens on a tcp:// endpoint.
func accepts(endpoint string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "tcp://"), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestEnsureLocalMember shows a member declared by a spec comes up as a
// POST and start actions would bring it: stored as the local member with
// its attributes, every layer bound and running.
func TestEnsureLocalMember(t *testing.T) {
	spec := allLayers(t, "member-a")
	a := mustBoot(t, spec)

	out := a.Must(http.StatusOK, "GET", "/cmbs/member/member-a", nil)
	res := out["resources"].([]any)[0].(map[string]any)
	if res["title"] != "member member-a" || res["summary"] != "declared in a config file" || res["kind"] != broker.MemberKind {
		t.Errorf("member = %v", res)
	}
	attrs := a.Attrs("/cmbs/member/member-a", "member")
	want := map[string]any{
		"local": "true", "state": "active", "layers": layerStates("l1", "l2", "l31", "l32", "l4"),
		"neighbors_socket": []any{}, "topics": []any{"weather.*"}, "providers": []any{"storage"},
		"max_message_bytes": float64(broker.DefaultMaxMessageSize),
	}
	for l, ep := range spec.Sockets {
		want[string(l)+"_socket"] = ep
	}
	if !reflect.DeepEqual(attrs, want) {
		t.Errorf("attributes =\n%v\nwant\n%v", attrs, want)
	}
	for l, ep := range spec.Sockets {
		if !accepts(ep) {
			t.Errorf("layer %s does not listen on %s", l, ep)
		}
	}

	// Ensuring the same spec again changes nothing and fails nothing.
	if err := a.Broker.EnsureLocalMember(context.Background(), spec); err != nil {
		t.Fatalf("second EnsureLocalMember: %v", err)
	}
	if got := a.Attrs("/cmbs/member/member-a", "member")["layers"]; !reflect.DeepEqual(got, want["layers"]) {
		t.Errorf("layers after a second ensure = %v", got)
	}
}

// TestEnsureLocalMembersDiscover starts two members from specs: the second
// names the first as its neighbour and discovers it at start, then a
// message crosses between them on L2 and L3.2.
func TestEnsureLocalMembersDiscover(t *testing.T) {
	a := mustBoot(t, allLayers(t, "member-a"))
	specB := allLayers(t, "member-b", a)
	specB.Discover = true
	b := mustBoot(t, specB)

	attrs := b.Attrs("/cmbs/member/member-a", "member")
	if attrs["local"] != "false" || attrs["l1_socket"] != a.Sockets["l1"] || attrs["l32_socket"] != a.Sockets["l32"] {
		t.Fatalf("B's record of A = %v", attrs)
	}
	if got := b.Attrs("/cmbs/member/member-b", "member")["neighbors_state"]; !reflect.DeepEqual(got, map[string]any{a.Sockets["l1"]: "reachable: member-a"}) {
		t.Errorf("B's neighbors_state = %v", got)
	}
	// A learned of B when B described itself.
	if got := a.Attrs("/cmbs/member/member-b", "member")["l1_socket"]; got != b.Sockets["l1"] {
		t.Errorf("A's record of B has l1_socket %v", got)
	}

	for _, tc := range []struct {
		id, layer string
		attrs     map[string]any
	}{
		{"hello-l2", "l2", nil},
		{"hello-l32", "l32", map[string]any{"topics": []any{"weather.paris"}}},
	} {
		b.Message(tc.id, tc.layer, tc.attrs)
		if got := brokertest.Outcome(b.Send(tc.id, tc.layer)); !reflect.DeepEqual(got, map[string]string{"member-a": "delivered"}) {
			t.Errorf("%s outcome = %v", tc.id, got)
		}
		if !a.Has(tc.id) {
			t.Errorf("A does not store %s", tc.id)
		}
	}
}

// TestEnsureLocalMemberRestart restarts a server on its store with a
// changed spec: the spec wins over the layers Start restarted, a socket
// moved to a free port is rebound, a layer left out is stopped, and what
// the spec does not name (the last discovery's outcome) is kept.
func TestEnsureLocalMemberRestart(t *testing.T) {
	a := mustBoot(t, allLayers(t, "member-a"))
	spec := allLayers(t, "member-b", a)
	spec.Discover = true
	db := filepath.Join(t.TempDir(), "cmbs.db")
	b, err := bootDeclared(t, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	cmbstest.NoError(t, b.Close)

	oldL2 := spec.Sockets[broker.L2]
	spec.Sockets[broker.L2] = layertest.FreeEndpoint(t)
	spec.Start = []broker.Layer{broker.L1, broker.L2, broker.L32}
	spec.Topics = []string{"news.>"}
	spec.Discover = false
	b, err = bootDeclared(t, db, spec)
	if err != nil {
		t.Fatalf("EnsureLocalMember after restart: %v", err)
	}
	attrs := b.Attrs("/cmbs/member/member-b", "member")
	if got := attrs["layers"]; !reflect.DeepEqual(got, layerStates("l1", "l2", "l32")) {
		t.Errorf("layers = %v", got)
	}
	if attrs["l2_socket"] != spec.Sockets[broker.L2] || !reflect.DeepEqual(attrs["topics"], []any{"news.>"}) {
		t.Errorf("attributes not updated: %v", attrs)
	}
	if attrs["neighbors_state"] == nil {
		t.Errorf("the last discovery's outcome was dropped: %v", attrs)
	}
	if !accepts(spec.Sockets[broker.L2]) {
		t.Errorf("l2 does not listen on its new socket %s", spec.Sockets[broker.L2])
	}
	for _, ep := range []string{oldL2, spec.Sockets[broker.L4], spec.Sockets[broker.L31]} {
		if accepts(ep) {
			t.Errorf("%s still listens", ep)
		}
	}
	// The remote member learned before the restart is still known.
	if b.Attrs("/cmbs/member/member-a", "member")["local"] != "false" {
		t.Errorf("member-a forgotten")
	}
}

// TestEnsureLocalMemberRefusals covers the specs and stored states
// EnsureLocalMember refuses, each with an error saying why.
func TestEnsureLocalMemberRefusals(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, taken.Close)

	tests := []struct {
		name string
		// before prepares the store through the first server, whose
		// local member is "first", and returns the spec to ensure.
		before func(t *testing.T, first *brokertest.Member) broker.LocalMemberSpec
		want   []string
		// running are the layers running after the refusal.
		running []string
	}{
		{
			name: "another local member",
			before: func(t *testing.T, first *brokertest.Member) broker.LocalMemberSpec {
				return allLayers(t, "second")
			},
			want:    []string{"already holds local member first at /cmbs/member/first", "declare id first instead, or delete /cmbs/member/first"},
			running: []string{"l1"},
		},
		{
			name: "id of a member learned from the network",
			before: func(t *testing.T, first *brokertest.Member) broker.LocalMemberSpec {
				first.Must(http.StatusOK, "DELETE", "/cmbs/member/first", nil)
				first.Must(http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
					"kind": broker.MemberKind, "id": "remote-1",
					"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "false", "l1_socket": "tcp://127.0.0.1:1"}}},
				}}})
				return allLayers(t, "remote-1")
			},
			want: []string{"/cmbs/member/remote-1 is a member learned from the network", `l1 socket "tcp://127.0.0.1:1"`, "choose another id"},
		},
		{
			name: "invalid spec",
			before: func(t *testing.T, first *brokertest.Member) broker.LocalMemberSpec {
				return broker.LocalMemberSpec{ID: "-x", Sockets: map[broker.Layer]string{broker.L1: "udp://x:1", "l9": "tcp://127.0.0.1:1"},
					Neighbors: []string{"tcp://*:5010"}, Start: []broker.Layer{broker.L2, "l7"}}
			},
			want:    []string{`id "-x"`, "sockets.l1: invalid endpoint", `sockets: no layer "l9"`, "neighbors[0]: invalid endpoint", "start[0]: layer l2 has no socket", `start[1]: no layer "l7"`},
			running: []string{"l1"},
		},
		{
			name: "a socket already taken",
			before: func(t *testing.T, first *brokertest.Member) broker.LocalMemberSpec {
				spec := allLayers(t, "first")
				spec.Sockets[broker.L4] = "tcp://" + taken.Addr().String()
				return spec
			},
			want:    []string{"layer l4 cannot bind tcp://" + taken.Addr().String()},
			running: []string{"l1", "l2", "l31", "l32"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstSpec := allLayers(t, "first")
			firstSpec.Start = []broker.Layer{broker.L1}
			first := mustBoot(t, firstSpec)
			spec := tt.before(t, first)
			err := first.Broker.EnsureLocalMember(context.Background(), spec)
			if err == nil {
				t.Fatal("EnsureLocalMember succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.running == nil {
				return
			}
			local := spec.ID
			if tt.name != "a socket already taken" {
				local = "first"
			}
			if got := first.Attrs("/cmbs/member/"+local, "member")["layers"]; !reflect.DeepEqual(got, layerStates(tt.running...)) {
				t.Errorf("layers after the refusal = %v, want %v running", got, tt.running)
			}
		})
	}
}
