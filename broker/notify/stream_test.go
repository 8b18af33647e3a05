package notify_test

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
)

// TestStream reads /events with a real WebSocket client: the query's
// filter applies and frames come in order.
func TestStream(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{})
	lifecycle := e.dial("location=/resource/&events=created,deleted")
	topical := e.dial("topics=demo.r2&events=created&events=updated")

	e.resource("r1", "one")
	e.retitle("r1", "one, again")
	e.Must(http.StatusOK, "DELETE", "/resource/r1", nil)
	e.resource("r2", "two")
	e.retitle("r2", "two, again")

	var got []notify.Event
	for range 3 {
		got = append(got, next(t, lifecycle))
	}
	want := []string{"created /resource/r1", "deleted /resource/r1", "created /resource/r2"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Errorf("lifecycle stream got %v, want %v", summary(got), want)
	}
	got = []notify.Event{next(t, topical), next(t, topical)}
	if want := []string{"created /resource/r2", "updated /resource/r2"}; !reflect.DeepEqual(summary(got), want) {
		t.Errorf("topical stream got %v, want %v", summary(got), want)
	}
	if got[1].Entity == nil || got[1].Entity.Title != "two, again" || got[1].Subscription != "" {
		t.Errorf("stream event %+v", got[1])
	}

	for _, tc := range []struct {
		name, query string
		upgrade     bool
		status      int
	}{
		{"unknown event type", "events=created,exploded", true, http.StatusBadRequest},
		{"relative location", "location=resource", true, http.StatusBadRequest},
		{"not a websocket", "events=created", false, http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.upgrade {
				_, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/events?"+tc.query, nil)
				if err == nil || res == nil || res.StatusCode != tc.status {
					t.Fatalf("dial: %v, response %v; want status %d", err, res, tc.status)
				}
				return
			}
			status, out := e.Do("GET", "/events?"+tc.query, nil)
			if status != tc.status || out["status"] != float64(tc.status) {
				t.Fatalf("status %d %v, want %d", status, out, tc.status)
			}
		})
	}
}

// TestStreamSlowClient publishes large events to a client that reads and
// to one that does not: the reader gets every event, never held up, and the
// other is dropped with a 1008 close frame after the events it was sent.
func TestStreamSlowClient(t *testing.T) {
	// The slow client reads only once every event is out; a busy machine
	// may take long to send them, which is not what this test is about.
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{StreamBuffer: 4, StreamWriteWait: 2 * time.Minute})
	slow := e.dial("events=message_received")
	fast := e.dial("events=message_received")
	content := strings.Repeat("x", 128<<10)
	// Loopback socket buffers hold a few MiB; 32 MiB overflows them.
	const events = 256
	for i := range events {
		loc := fmt.Sprintf("/cmbs/message/m%03d", i)
		e.Notifier.Emit(broker.Event{Type: broker.EventMessageReceived, Time: time.Now(), Location: loc, Layer: broker.L2,
			Message: &occi.Entity{Location: loc, Kind: broker.MessageKind, Attributes: map[string]any{
				"cmbs": map[string]any{"message": map[string]any{"message_content": content}}}}})
		if ev := next(t, fast); ev.Location != loc {
			t.Fatalf("fast client got %s, want %s", ev.Location, loc)
		}
	}
	received := 0
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var ev notify.Event
		err := slow.ReadJSON(&ev)
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != notify.CloseTooSlow || !strings.Contains(ce.Text, "too slow") {
				t.Fatalf("slow client ended with %v after %d events; want close %d", err, received, notify.CloseTooSlow)
			}
			break
		}
		if want := fmt.Sprintf("/cmbs/message/m%03d", received); ev.Location != want {
			t.Fatalf("slow client got %s, want %s", ev.Location, want)
		}
		received++
	}
	if received >= events {
		t.Errorf("slow client got all %d events and was still dropped", received)
	}
	// The fast client is still served.
	e.Notifier.Emit(broker.Event{Type: broker.EventMessageReceived, Time: time.Now(), Location: "/cmbs/message/last"})
	if ev := next(t, fast); ev.Location != "/cmbs/message/last" {
		t.Errorf("fast client got %s after the slow one left", ev.Location)
	}
}

// TestStreamClose checks closing the notifier closes streams with 1001.
func TestStreamClose(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{})
	conn := e.dial("")
	e.close()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("stream ended with %v, want close 1001", err)
	}
}
