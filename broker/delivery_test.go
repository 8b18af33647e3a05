package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/occi"
)

// countingExecutor counts the runs of each message.
type countingExecutor struct {
	mu   sync.Mutex
	runs map[string]int
}

func (x *countingExecutor) Execute(_ context.Context, member string, msg *occi.Entity) (any, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.runs == nil {
		x.runs = map[string]int{}
	}
	x.runs[msg.ID]++
	return map[string]any{"member": member, "run": x.runs[msg.ID]}, nil
}

func (x *countingExecutor) count(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.runs[id]
}

// TestSendOnCreate: a create with send_on_create sends the message on its
// layer, and a POST of many such messages creates and queues them all in
// one commit; bad input is refused and stores nothing.
func TestSendOnCreate(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{ID: "soc-b"})
	a := brokertest.Start(t, brokertest.Options{ID: "soc-a", Neighbors: []*brokertest.Member{b}})
	a.Discover()

	const n = 50
	var resources []any
	for i := range n {
		body := brokertest.MessageBody(fmt.Sprintf("soc-%02d", i), "l2", map[string]any{"send_on_create": "True"})
		resources = append(resources, body["resources"].([]any)[0])
	}
	res := a.MustRequest(http.StatusCreated, "POST", broker.MessageLocation, map[string]any{"resources": resources})
	if got := len(res.Header.Values("Location")); got != n {
		t.Fatalf("a create of %d messages answered %d locations", n, got)
	}
	for i := range n {
		id := fmt.Sprintf("soc-%02d", i)
		if got := brokertest.Outcome(a.WaitDelivery(id)); got["soc-b"] != "delivered" {
			t.Fatalf("%s: %v", id, got)
		}
		if !b.Has(id) {
			t.Fatalf("B does not hold %s", id)
		}
	}

	for _, tc := range []struct {
		name, field string
		attrs       map[string]any
	}{
		{"unparsable expires", "cmbs.message.expires", map[string]any{"expires": "next tuesday"}},
		{"send_on_create without a layer", "cmbs.message.send_on_create", map[string]any{"cmbs_layer": "", "send_on_create": "True"}},
		{"send_on_create on a layer without its mixin", "action", map[string]any{"cmbs_layer": "l31", "send_on_create": "True"}},
		{"bad flag", "cmbs.message.storable", map[string]any{"storable": "maybe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := brokertest.MessageBody("bad-1", "l2", tc.attrs)
			good := brokertest.MessageBody("bad-2", "l2", nil)["resources"].([]any)[0]
			body["resources"] = append([]any{good}, body["resources"].([]any)...)
			res := a.MustRequest(http.StatusBadRequest, "POST", broker.MessageLocation, body)
			if res.Body["field"] != tc.field {
				t.Errorf("problem %s, want the field %s named", res.Raw, tc.field)
			}
			if a.Has("bad-1") || a.Has("bad-2") {
				t.Error("a refused create stored messages")
			}
		})
	}
}

// TestPreferWait: an L1 send with Prefer: wait answers with the reply; a
// wait over the server's maximum is capped and says so; a create that sends
// on L1 answers with the message as the reply left it.
func TestPreferWait(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{ID: "pw-b"})
	a := brokertest.Start(t, brokertest.Options{ID: "pw-a", Neighbors: []*brokertest.Member{b}, Broker: broker.Config{MaxWait: 3 * time.Second}})
	a.Discover()
	a.Message("pw-1", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1], "message_content": "ping"})
	res := a.MustRequest(http.StatusOK, "POST", "/cmbs/message/pw-1?action=send_l1", map[string]any{}, "Prefer", "wait=2")
	if got := res.Header.Get("Preference-Applied"); got != "wait=2" {
		t.Errorf("Preference-Applied = %q", got)
	}
	result, _ := res.Body["result"].(map[string]any)
	if result["member"] != "pw-b" || res.Body["delivery"].(map[string]any)["state"] != "done" {
		t.Fatalf("answer %s, want the reply", res.Raw)
	}

	a.Message("pw-2", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1]})
	res = a.MustRequest(http.StatusOK, "POST", "/cmbs/message/pw-2?action=send_l1", map[string]any{}, "Prefer", "wait=600")
	if got := res.Header.Get("Preference-Applied"); got != "wait=3" || !strings.Contains(fmt.Sprint(res.Body["wait"]), "capped") {
		t.Errorf("a wait over the maximum: Preference-Applied %q, body %s", got, res.Raw)
	}

	// Without the header nothing changes.
	a.Message("pw-3", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1]})
	a.MustRequest(http.StatusAccepted, "POST", "/cmbs/message/pw-3?action=send_l1", map[string]any{})

	body := brokertest.MessageBody("pw-4", "l1", map[string]any{"l1_socket_receiver_member": b.Sockets[broker.L1], "send_on_create": "True"})
	res = a.MustRequest(http.StatusCreated, "POST", broker.MessageLocation, body, "Prefer", "wait=2")
	if res.Header.Get("Preference-Applied") != "wait=2" {
		t.Errorf("create: Preference-Applied %q", res.Header.Get("Preference-Applied"))
	}
	msg := res.Body["resources"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["cmbs"].(map[string]any)["message"].(map[string]any)
	if msg["delivery"].(map[string]any)["state"] != "done" || msg["result"].(map[string]any)["member"] != "pw-b" {
		t.Errorf("create with Prefer: wait answered %s, want the message with its reply", res.Raw)
	}

	// A reply that does not come in time: the answer says the delivery
	// goes on.
	nowhere := "tcp://127.0.0.1:1"
	a.Message("pw-5", "l1", map[string]any{"l1_socket_receiver_member": nowhere})
	res = a.MustRequest(http.StatusOK, "POST", "/cmbs/message/pw-5?action=send_l1", map[string]any{}, "Prefer", "wait=1")
	if !strings.Contains(fmt.Sprint(res.Body["note"]), "goes on") {
		t.Errorf("a wait that ran out answered %s", res.Raw)
	}
}

// TestNonStorableRunsOnce: a non-storable executable message sent again
// (its acknowledgement lost, so its sender retries in a new session) runs
// once, also after the receiver restarts: a record of the ids seen is kept
// until the message expires.
func TestNonStorableRunsOnce(t *testing.T) {
	x := &countingExecutor{}
	db := t.TempDir() + "/r.db"
	r := brokertest.Start(t, brokertest.Options{ID: "member-r", DBPath: db, Layers: []broker.Layer{broker.L2}, Broker: broker.Config{Executor: x}})
	p := newRawPeer(t, r.Sockets[broker.L2], "member-s", broker.L2)
	volatile := func() map[string]any {
		return map[string]any{"cmbs": map[string]any{"message": map[string]any{"storable": "False"}}}
	}
	send := func(session string) []string {
		p.sync(session)
		return statuses(p.request(map[string]any{"type": "deliver", "layer": "l2", "session": session, "from": map[string]any{"id": "member-s"},
			"entries": []any{map[string]any{"seq": 1, "kind": "message", "to": []any{}, "expires": time.Now().Add(time.Hour),
				"message": map[string]any{"id": "v-1", "mixins": []any{"http://houssem.org/cmbs#l2"}, "attributes": volatile()}}}}))
	}
	if got := send("first"); len(got) != 1 || got[0] != "delivered" {
		t.Fatalf("first delivery: %v", got)
	}
	if got := send("second"); len(got) != 1 || got[0] != "delivered" {
		t.Fatalf("second delivery: %v", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = brokertest.Start(t, brokertest.Options{ID: "member-r", DBPath: db, NoMember: true, Sockets: r.Sockets, Broker: broker.Config{Executor: x}})
	p = newRawPeer(t, r.Sockets[broker.L2], "member-s", broker.L2)
	if got := send("after-restart"); len(got) != 1 || got[0] != "delivered" {
		t.Fatalf("delivery after the receiver restarted: %v", got)
	}
	if n := x.count("v-1"); n != 1 {
		t.Errorf("the message ran %d times, want once", n)
	}
	if r.Has("v-1") {
		t.Error("a non-storable message was stored")
	}
	if _, err := r.Store.Get(context.Background(), "seen/v-1"); err != nil {
		t.Errorf("no record of the id seen: %v", err)
	}
}
