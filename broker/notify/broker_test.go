package notify_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
)

// send creates a message on layer with topics and sends it, waiting for
// the outcome.
func (e *env) send(id, layer string, topics []string) {
	e.T.Helper()
	e.Message(id, layer, map[string]any{"topics": topics})
	e.Send(id, layer)
}

// TestBrokerEvents sends real messages between two members: the receiver's
// subscription hears message_received (filtered by topic), and the
// sender's hears delivery_failed once the receiver's layer is down.
func TestBrokerEvents(t *testing.T) {
	b := startMember(t, "member-b", []string{"weather.*", "news"})
	a := startMember(t, "member-a", nil, b)
	a.member.Discover()

	received := newReceiver(t, "b-secret", 0)
	b.subscribe("weather", map[string]any{"callback": received.url, "secret": "b-secret",
		"events": []any{"message_received"}, "topics": []any{"weather.>"}})
	failed := newReceiver(t, "", 0)
	a.subscribe("failures", map[string]any{"callback": failed.url, "events": []any{"delivery_failed"}})
	stream := b.dial("events=message_received")

	a.send("m-news", "l32", []string{"news"})
	a.send("m-weather", "l32", []string{"weather.paris"})
	ev := received.waitEvent("message_received", is(notify.MessageReceived, "/cmbs/message/m-weather"))
	if ev.Member != "member-b" || ev.From != "member-a" || ev.Layer != "l32" || ev.Kind != broker.MessageKind {
		t.Errorf("message_received event %+v", ev)
	}
	if v, _ := ev.Entity.Attr("cmbs.message.message_content"); fmt.Sprint(v) != "map[hello:m-weather]" {
		t.Errorf("event entity content %v", v)
	}
	// The stream, unfiltered by topic, has both, in order.
	if got := []string{next(t, stream).Location, next(t, stream).Location}; got[0] != "/cmbs/message/m-news" || got[1] != "/cmbs/message/m-weather" {
		t.Errorf("stream got %v", got)
	}

	b.Must(http.StatusOK, "POST", "/cmbs/member/member-b?action=stop_l2", map[string]any{})
	// Sent while B's l2 is down, it expires unacknowledged.
	a.Message("m-lost", "l2", map[string]any{"expires": "1s"})
	a.Send("m-lost", "l2")
	ev = failed.waitEvent("delivery_failed", is(notify.DeliveryFailed, "/cmbs/message/m-lost"))
	if ev.Member != "member-b" || ev.Reason == "" || ev.Layer != "l2" || !strings.HasPrefix(ev.Endpoint, "tcp://") || ev.Entity == nil {
		t.Errorf("delivery_failed event %+v", ev)
	}
	for _, e := range received.accepted() {
		if e.Location != "/cmbs/message/m-weather" {
			t.Errorf("topic filter let through %s", e)
		}
	}
	if n := len(failed.accepted()); n != 1 {
		t.Errorf("%d delivery_failed events, want 1", n)
	}
	received.check()
	failed.check()
}
