package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker/brokertest"
)

// bulk is a message content of about n bytes.
func bulk(n int) map[string]any {
	return map[string]any{"message_content": strings.Repeat("x", n)}
}

// TestSendTooLarge: a message no layer request could carry is refused at
// the send with 413 and the limit it breaks, and nothing is queued.
func TestSendTooLarge(t *testing.T) {
	opts := brokertest.Options{ID: "small"}
	opts.Broker.MaxMessageSize = 64 << 10
	a := brokertest.Start(t, opts)
	b := brokertest.Start(t, brokertest.Options{ID: "b", Neighbors: []*brokertest.Member{a}})
	b.Discover()
	a.Message("big", "l2", bulk(100<<10))
	status, out := a.Do("POST", "/cmbs/message/big?action=send_l2", map[string]any{})
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(out), "65536 bytes (max_message_bytes)") {
		t.Fatalf("send of a message over the limit: %d %v", status, out)
	}
	if docs, err := a.Store.Scan(context.Background(), "outbox/", "", 10); err != nil || len(docs) != 0 {
		t.Errorf("%d outbox entries after a refused send (%v)", len(docs), err)
	}
	if got := a.Attrs("/cmbs/member/small", "member")["max_message_bytes"]; got != float64(64<<10) {
		t.Errorf("the local member's max_message_bytes: %v", got)
	}
}

// TestBatchesWithinLimit: messages that together exceed the limit travel
// in requests cut to fit it.
func TestBatchesWithinLimit(t *testing.T) {
	small := func(opts brokertest.Options) brokertest.Options {
		opts.Broker.MaxMessageSize = 64 << 10
		return opts
	}
	b := brokertest.Start(t, small(brokertest.Options{ID: "b"}))
	a := brokertest.Start(t, small(brokertest.Options{ID: "a", Neighbors: []*brokertest.Member{b}}))
	a.Discover()
	// b's l2 is down while the sends queue up, so they leave together.
	b.Must(http.StatusOK, "POST", "/cmbs/member/b?action=stop_l2", map[string]any{})
	const n = 12
	for i := range n {
		a.Message(fmt.Sprintf("m%d", i), "l2", bulk(20<<10))
		a.Must(http.StatusAccepted, "POST", fmt.Sprintf("/cmbs/message/m%d?action=send_l2", i), map[string]any{})
	}
	b.StartLayer("l2")
	for i := range n {
		if got := brokertest.Outcome(a.WaitDelivery(fmt.Sprintf("m%d", i))); !reflect.DeepEqual(got, map[string]string{"b": "delivered"}) {
			t.Errorf("m%d: %v", i, got)
		}
	}
}

// TestPeerSmallerLimit: a member learns its peer's limit in discovery; a
// message over it fails at once with the reason, instead of being sent to
// a receiver that would drop it unread, and what follows is delivered.
func TestPeerSmallerLimit(t *testing.T) {
	opts := brokertest.Options{ID: "b"}
	opts.Broker.MaxMessageSize = 16 << 10
	b := brokertest.Start(t, opts)
	a := brokertest.Start(t, brokertest.Options{ID: "a", Neighbors: []*brokertest.Member{b}})
	a.Discover()
	if got := a.Attrs("/cmbs/member/b", "member")["max_message_bytes"]; got != float64(16<<10) {
		t.Fatalf("a learned b's limit as %v", got)
	}
	a.Message("over", "l2", bulk(30<<10))
	d := a.Send("over", "l2")
	dest, _ := d["destinations"].(map[string]any)["b"].(map[string]any)
	if dest["status"] != "failed" || !strings.Contains(fmt.Sprint(dest["reason"]), "the receiving member's limit of 16384 bytes") {
		t.Errorf("a message over b's limit: %v", dest)
	}
	a.Message("under", "l2", bulk(1<<10))
	if got := brokertest.Outcome(a.Send("under", "l2")); got["b"] != "delivered" {
		t.Errorf("the next message: %v", got)
	}
	if b.Has("over") || !b.Has("under") {
		t.Errorf("b has over: %v, under: %v", b.Has("over"), b.Has("under"))
	}
	// A client cannot set a member's limit.
	a.Must(http.StatusBadRequest, "POST", "/cmbs/member/b", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"max_message_bytes": 1 << 30}}}}}})
}
