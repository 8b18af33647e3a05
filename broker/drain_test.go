package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
)

// TestDrain: a delivery to a member that stopped answering is running when
// Drain is called. Drain waits for it (or gives up when its context ends),
// and every send from then on is refused with 503 and a problem body.
func TestDrain(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{ID: "member-b"})
	a := brokertest.Start(t, brokertest.Options{ID: "member-a", Neighbors: []*brokertest.Member{b},
		Broker: broker.Config{Timeout: 300 * time.Millisecond, Attempts: 2}})
	a.Discover()
	if err := b.CloseBroker(); err != nil {
		t.Fatal(err)
	}

	a.Message("slow", "l2", nil)
	a.Must(http.StatusAccepted, "POST", "/cmbs/message/slow?action=send_l2", map[string]any{})
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := a.Broker.Drain(short); err == nil || !strings.Contains(err.Error(), "deliveries still running") {
		t.Fatalf("Drain with a delivery running and a short deadline = %v", err)
	}

	a.Message("late", "l2", nil)
	status, body := a.Do("POST", "/cmbs/message/late?action=send_l2", map[string]any{})
	if status != http.StatusServiceUnavailable || !strings.Contains(body["detail"].(string), "terminating") {
		t.Errorf("send while draining = %d %v, want 503 saying the member is terminating", status, body)
	}
	if got := a.Attrs("/cmbs/message/late", "message")["delivery"]; got != nil {
		t.Errorf("refused send recorded a delivery: %v", got)
	}

	if err := a.Broker.Drain(t.Context()); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	d, _ := a.Attrs("/cmbs/message/slow", "message")["delivery"].(map[string]any)
	if d["state"] != "done" || brokertest.Outcome(d)["member-b"] != "failed" {
		t.Errorf("delivery after Drain = %v, want done with member-b failed", d)
	}
}
