package broker_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/occi"
)

// TestMemberMadeLocalRecordsLiveLayers: a member updated into the local one
// gets the layers' real states stored, not whatever the request said, since
// Start restarts and readiness expects what is stored.
func TestMemberMadeLocalRecordsLiveLayers(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "member-x", NoMember: true})
	member := func(local string) map[string]any {
		return map[string]any{"resources": []any{map[string]any{
			"kind": broker.MemberKind, "id": "member-x",
			"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{
				"local": local, "l1_socket": m.Sockets[broker.L1],
				"layers": map[string]any{"l1": "running"},
			}}},
		}}}
	}
	m.Must(http.StatusCreated, "POST", broker.MemberLocation, member("false"))
	m.Must(http.StatusOK, "PUT", broker.MemberLocation+"member-x", member("true"))
	e, err := occi.GetEntity(context.Background(), m.Store, broker.MemberLocation+"member-x")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Attr("cmbs.member.layers.l1"); got != "stopped" {
		t.Errorf("stored l1 state %v, want stopped: no receiver runs", got)
	}
	for _, c := range m.Broker.Ready(context.Background()) {
		if c.Err != nil {
			t.Errorf("not ready: %s: %v", c.Name, c.Err)
		}
	}
}

// TestOneLocalMemberUnderConcurrency: requests racing to create local
// members leave exactly one, whatever the interleaving.
func TestOneLocalMemberUnderConcurrency(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "unused", NoMember: true})
	const n = 8
	created := make(chan bool, n)
	for i := range n {
		go func() {
			body := map[string]any{"resources": []any{map[string]any{
				"kind": broker.MemberKind, "id": "racer-" + string(rune('a'+i)),
				"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "true"}}},
			}}}
			_, err := m.Try(http.StatusCreated, "POST", broker.MemberLocation, body)
			created <- err == nil
		}()
	}
	wins := 0
	for range n {
		if <-created {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d local members created concurrently, want 1", wins)
	}
	members, err := occi.FindEntitiesAt(context.Background(), m.Store, broker.MemberLocation, broker.MemberKind)
	if err != nil {
		t.Fatal(err)
	}
	local := 0
	for _, e := range members {
		if v, _ := e.Attr("cmbs.member.local"); v == "true" {
			local++
		}
	}
	if local != 1 {
		t.Errorf("%d local members stored, want 1", local)
	}
}

// TestTwoLocalMembersInOneRequest: a create listing two local members is
// refused whole, though neither is stored when the other is checked.
func TestTwoLocalMembersInOneRequest(t *testing.T) {
	m := brokertest.Start(t, brokertest.Options{ID: "unused", NoMember: true})
	member := func(id, local string) map[string]any {
		return map[string]any{"kind": broker.MemberKind, "id": id,
			"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": local}}}}
	}
	m.Must(http.StatusConflict, "POST", broker.MemberLocation, map[string]any{"resources": []any{
		member("remote-1", "false"), member("local-1", "true"), member("local-2", "true")}})
	members, err := occi.FindEntitiesAt(context.Background(), m.Store, broker.MemberLocation, broker.MemberKind)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 0 {
		t.Errorf("a refused create stored %d members", len(members))
	}
	m.Must(http.StatusCreated, "POST", broker.MemberLocation, map[string]any{"resources": []any{
		member("remote-1", "false"), member("local-1", "true")}})
}
