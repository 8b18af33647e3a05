package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
)

func TestBindEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		bind       broker.Bind
		layer      broker.Layer
		advertised string
		want       string
		separate   bool
	}{
		{name: "no bind", advertised: "tcp://127.0.0.1:5010", layer: broker.L1, want: "tcp://127.0.0.1:5010"},
		{name: "host keeps the port", bind: broker.Bind{Host: "0.0.0.0"}, layer: broker.L1,
			advertised: "tcp://broker-a.example:5010", want: "tcp://0.0.0.0:5010", separate: true},
		{name: "ipv6 host", bind: broker.Bind{Host: "::"}, layer: broker.L2,
			advertised: "tcp://broker-a:5020", want: "tcp://[::]:5020", separate: true},
		{name: "host leaves ipc alone", bind: broker.Bind{Host: "0.0.0.0"}, layer: broker.L2,
			advertised: "ipc:///run/cmbs/l2", want: "ipc:///run/cmbs/l2"},
		{name: "socket wins over host", layer: broker.L31, advertised: "tcp://broker-a:5031", separate: true,
			bind: broker.Bind{Host: "0.0.0.0", Sockets: map[broker.Layer]string{broker.L31: "tcp://10.1.2.3:6031"}},
			want: "tcp://10.1.2.3:6031"},
		{name: "socket of another layer", layer: broker.L4, advertised: "tcp://127.0.0.1:5040",
			bind: broker.Bind{Sockets: map[broker.Layer]string{broker.L31: "tcp://10.1.2.3:6031"}},
			want: "tcp://127.0.0.1:5040"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.bind.Endpoint(tt.layer, tt.advertised)
			if err != nil || got != tt.want {
				t.Errorf("Endpoint = %q, %v; want %q", got, err, tt.want)
			}
			if s := tt.bind.Separate(tt.layer, tt.advertised); s != tt.separate {
				t.Errorf("Separate = %v, want %v", s, tt.separate)
			}
		})
	}
	for _, bad := range []broker.Bind{
		{Host: "0.0.0.0:1"},
		{Host: "a b"},
		{Sockets: map[broker.Layer]string{"l9": "tcp://*:1"}},
		{Sockets: map[broker.Layer]string{broker.L1: "0.0.0.0:5010"}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("Check(%+v) = nil, want an error", bad)
		}
		if _, err := broker.New(broker.Config{Store: brokertest.OpenBolt(t), Bind: bad}); err == nil {
			t.Errorf("New with Bind %+v: no error", bad)
		}
	}
}

// onHost returns sockets with the host of each tcp socket replaced.
func onHost(sockets map[broker.Layer]string, host string) map[broker.Layer]string {
	out := map[broker.Layer]string{}
	for l, ep := range sockets {
		out[l] = strings.Replace(ep, "127.0.0.1", host, 1)
	}
	return out
}

// TestBindHostAdvertiseName runs a member that binds every interface and
// advertises localhost, a name it could not bind: a neighbour knowing only
// the name discovers it and delivers to it, and the layers listen on more
// than the advertised address.
func TestBindHostAdvertiseName(t *testing.T) {
	sockets := onHost(brokertest.FreeSockets(t), "localhost")
	a := brokertest.Start(t, brokertest.Options{ID: "member-a", Sockets: sockets,
		Broker: broker.Config{Bind: broker.Bind{Host: "0.0.0.0"}}})
	b := brokertest.Start(t, brokertest.Options{ID: "member-b", Neighbors: []*brokertest.Member{a}})

	attrs := a.Attrs(broker.MemberLocation+"member-a", "member")
	if attrs["l1_socket"] != sockets[broker.L1] {
		t.Fatalf("member-a advertises %v, want %s", attrs["l1_socket"], sockets[broker.L1])
	}
	// 0.0.0.0 answers on every loopback address, not only the one
	// localhost resolves to.
	port := sockets[broker.L2][strings.LastIndexByte(sockets[broker.L2], ':')+1:]
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		if !accepts("tcp://" + host + ":" + port) {
			t.Errorf("layer l2 does not listen on %s:%s", host, port)
		}
	}

	found := b.Discover()
	if d, _ := found["discovered"].([]any); len(d) != 1 || d[0] != "member-a" {
		t.Fatalf("member-b discovered %v", found)
	}
	if got := b.Attrs(broker.MemberLocation+"member-a", "member")["l2_socket"]; got != sockets[broker.L2] {
		t.Fatalf("member-b knows member-a's l2 socket as %v, want %s", got, sockets[broker.L2])
	}
	b.Message("m1", "l2", nil)
	if d := b.Send("m1", "l2"); brokertest.Outcome(d)["member-a"] != "delivered" {
		t.Fatalf("m1 to member-a: %v", d)
	}
	if !a.Has("m1") {
		t.Fatal("member-a did not store m1")
	}
}

// TestBindChecksAdvertised shows what a server binding elsewhere refuses:
// a local member whose socket peers cannot dial. Without a bind, a socket
// naming a host the server cannot bind says how to fix it.
func TestBindChecksAdvertised(t *testing.T) {
	a := brokertest.Start(t, brokertest.Options{ID: "member-a", NoMember: true,
		Broker: broker.Config{Bind: broker.Bind{Host: "0.0.0.0"}}})
	status, out := a.Do("POST", broker.MemberLocation, map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": "member-a",
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{
			"local": "true", "l1_socket": "tcp://*:5010"}}},
	}}})
	if status != http.StatusBadRequest || !strings.Contains(out["detail"].(string), "peers dial") {
		t.Errorf("local member advertising tcp://*:5010 = %d %v, want 400 saying peers dial it", status, out)
	}
	spec := broker.LocalMemberSpec{ID: "member-a", Sockets: map[broker.Layer]string{broker.L1: "tcp://localhost:*"}}
	if err := a.Broker.EnsureLocalMember(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "peers dial") {
		t.Errorf("EnsureLocalMember with a wildcard port = %v, want an error saying peers dial it", err)
	}

	plain := brokertest.Start(t, brokertest.Options{ID: "member-p", NoMember: true})
	spec = broker.LocalMemberSpec{ID: "member-p", Sockets: map[broker.Layer]string{broker.L1: "tcp://broker-p.invalid:5010"},
		Start: []broker.Layer{broker.L1}}
	err := plain.Broker.EnsureLocalMember(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "--bind-host") {
		t.Errorf("binding a host name = %v, want an error pointing at --bind-host", err)
	}
}
