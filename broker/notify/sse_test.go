package notify_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
)

// sseEvent is one block of a Server-Sent Events stream.
type sseEvent struct {
	id, event, data string
}

// sseClient reads /events as Server-Sent Events, as curl -N or a
// browser's EventSource does.
type sseClient struct {
	t      *testing.T
	cancel context.CancelFunc
	blocks chan sseEvent
}

func (e *env) sse(t *testing.T, query, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+"/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", notify.MediaEventStream)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != notify.MediaEventStream {
		t.Fatalf("GET /events as Server-Sent Events: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, cancel: cancel, blocks: make(chan sseEvent, 64)}
	t.Cleanup(cancel)
	go func() {
		defer func() { _ = res.Body.Close() }()
		defer close(c.blocks)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if cur != (sseEvent{}) {
					c.blocks <- cur
				}
				cur = sseEvent{}
				continue
			}
			name, value, _ := strings.Cut(line, ": ")
			switch name {
			case "id":
				cur.id = value
			case "event":
				cur.event = value
			case "data":
				cur.data = value
			}
		}
	}()
	return c
}

// next returns the next event block, skipping the retry preamble.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	for {
		select {
		case b, ok := <-c.blocks:
			if !ok {
				c.t.Fatal("the event stream ended")
			}
			if b.event == "" && b.data == "" {
				continue
			}
			return b
		case <-time.After(10 * time.Second):
			c.t.Fatal("no event within 10s")
		}
	}
}

// TestStreamSSE follows /events as Server-Sent Events: the filter applies,
// each block carries the event's id, type and JSON; a client resuming with
// Last-Event-ID gets what it missed; an id no longer kept is a gap; and
// closing the notifier ends the stream with a close event.
func TestStreamSSE(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{History: 8})
	c := e.sse(t, "location=/resource/&events=created", "")
	e.resource("s1", "one")
	e.resource("s2", "two")
	first, second := c.next(), c.next()
	var ev notify.Event
	if err := json.Unmarshal([]byte(first.data), &ev); err != nil || ev.ID != first.id || ev.Location != "/resource/s1" || first.event != "created" {
		t.Fatalf("first block %+v (%v)", first, err)
	}
	if !strings.Contains(second.data, `"/resource/s2"`) {
		t.Errorf("second block %+v", second)
	}
	c.cancel()

	// Resuming after the first event: the second one, then live ones.
	resumed := e.sse(t, "location=/resource/&events=created", first.id)
	if got := resumed.next(); got.id != second.id {
		t.Errorf("resumed with %s: got %+v, want the event %s", first.id, got, second.id)
	}
	e.resource("s3", "three")
	if got := resumed.next(); !strings.Contains(got.data, `"/resource/s3"`) {
		t.Errorf("after the backlog: %+v", got)
	}

	// An id pushed out of the 8 kept events is a gap.
	for _, id := range []string{"s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"} {
		e.resource(id, id)
	}
	// The events come from the change feed: wait until the last is out,
	// so the stream opened next resumes after them, not amid them.
	for got := resumed.next(); !strings.Contains(got.data, `"/resource/s11"`); got = resumed.next() {
	}
	gone := e.sse(t, "events=created", first.id)
	// HistoryBytes bounds the history too: one event over it keeps none.
	small := newEnv(t, brokertest.OpenBolt(t), notify.Config{HistoryBytes: 10})
	small.resource("x1", "one")
	if got := small.sse(t, "", "any-id").next(); got.event != "gap" {
		t.Errorf("with HistoryBytes 10: %+v, want a gap", got)
	}
	if got := gone.next(); got.event != "gap" || !strings.Contains(got.data, first.id) {
		t.Errorf("resuming from a forgotten id: %+v, want a gap event", got)
	}
	e.resource("s12", "twelve")
	if got := gone.next(); !strings.Contains(got.data, `"/resource/s12"`) {
		t.Errorf("after the gap: %+v", got)
	}

	// A client that accepts neither gets 426; an invalid filter 400.
	if status, _ := e.Do("GET", "/events?events=created", nil); status != http.StatusUpgradeRequired {
		t.Errorf("GET /events accepting only JSON = %d, want 426", status)
	}
	res, err := http.Get(e.URL + "/events?events=exploded")
	if err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid filter: %v, %v", res.Status, err)
	}
	_ = res.Body.Close()

	e.close()
	for {
		got := resumed.next()
		if got.event == "close" {
			break
		}
		if got.event != "created" {
			t.Fatalf("on shutdown: %+v, want the events then a close event", got)
		}
	}
}
