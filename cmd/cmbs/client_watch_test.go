package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers/layertest"
)

// clEventServer is a WebSocket event stream as the server's /events
// sends it: the frames given, then a normal close or, with hold, nothing
// until the client goes away.
type clEventServer struct {
	url      string
	requests chan *http.Request
}

func clStartEventServer(t *testing.T, frames []string, hold bool) *clEventServer {
	t.Helper()
	es := &clEventServer{requests: make(chan *http.Request, 8)}
	upgrader := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		es.requests <- r
		if r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"this server requires HTTP Basic authentication"}`))
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer func() { _ = conn.Close() }()
		// Write errors are a client that stopped early (--count); the
		// client's side of the test checks what it got.
		for _, f := range frames {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				return
			}
		}
		if !hold {
			deadline := time.Now().Add(5 * time.Second)
			if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), deadline); err != nil {
				return
			}
		}
		// Returns once the client closes its side.
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	es.url = hs.URL
	return es
}

// clEventFrames are events as cmbs sends them: entity changes, then the
// broker's message_received and delivery_failed.
func clEventFrames() []string {
	member := `{"kind":"http://houssem.org/cmbs#member","mixins":[],"id":"member-b","attributes":{"cmbs":{"member":{"state":"active","local":"false","via":"","topics":["weather.*"],"providers":["compute"]}}}}`
	sent := `{"kind":"http://houssem.org/cmbs#message","mixins":["http://houssem.org/cmbs#l32"],"id":"demo-l32","attributes":{"cmbs":{"message":{"cmbs_layer":"l32","origin":"member-a","topics":["weather.lyon"],"message_content":"demo l32",
		"delivery":{"layer":"l32","state":"done","delivered":1,"failed":0,"destinations":{"member-b":{"member":"member-b","status":"delivered"}}}}}}}`
	received := `{"kind":"http://houssem.org/cmbs#message","mixins":[],"id":"demo-l32","attributes":{"cmbs":{"message":{"cmbs_layer":"l32","origin":"member-a","topics":["weather.lyon"],"message_content":{"temp":21}}}}}`
	failed := `{"kind":"http://houssem.org/cmbs#message","mixins":["http://houssem.org/cmbs#l1"],"id":"lost","attributes":{"cmbs":{"message":{"cmbs_layer":"l1","origin":"member-a","message_content":"hello?",
		"delivery":{"layer":"l1","state":"pending","delivered":0,"failed":0,"destinations":{}}}}}}`
	type frame struct {
		ID       string          `json:"id"`
		Event    string          `json:"event"`
		Time     string          `json:"time"`
		Location string          `json:"location"`
		Kind     string          `json:"kind,omitempty"`
		Entity   json.RawMessage `json:"entity,omitempty"`
		Layer    string          `json:"layer,omitempty"`
		Member   string          `json:"member,omitempty"`
		From     string          `json:"from,omitempty"`
		Reason   string          `json:"reason,omitempty"`
		Endpoint string          `json:"endpoint,omitempty"`
	}
	const memberKind, messageKind = "http://houssem.org/cmbs#member", "http://houssem.org/cmbs#message"
	frames := []frame{
		{Event: "created", Time: "2026-11-25T20:54:08.870652475Z", Location: "/cmbs/member/member-b", Kind: memberKind, Entity: json.RawMessage(member)},
		{Event: "updated", Time: "2026-11-25T20:54:09.1Z", Location: "/cmbs/message/demo-l32", Kind: messageKind, Entity: json.RawMessage(sent)},
		{Event: "message_received", Time: "2026-11-25T21:54:09.2+01:00", Location: "/cmbs/message/demo-l32", Kind: messageKind, Entity: json.RawMessage(received),
			Layer: "l32", Member: "member-b", From: "member-a"},
		{Event: "delivery_failed", Time: "2026-11-25T20:54:10Z", Location: "/cmbs/message/lost", Kind: messageKind, Entity: json.RawMessage(failed),
			Layer: "l1", Member: "tcp://127.0.0.1:6999", Endpoint: "tcp://127.0.0.1:6999", Reason: "unreachable\nafter 2 attempts"},
		{Event: "deleted", Time: "2026-11-25T20:54:11Z", Location: "/cmbs/member/member-b", Kind: memberKind},
		{Event: "created", Time: "not a time", Location: "/things/t1", Kind: "http://example.org#thing",
			Entity: json.RawMessage(`{"kind":"http://example.org#thing","id":"t1","title":"a thing","attributes":{}}`)},
	}
	out := make([]string, len(frames))
	for i, f := range frames {
		f.ID = fmt.Sprintf("ev-%d", i+1)
		raw, err := json.Marshal(f)
		if err != nil {
			panic(err)
		}
		out[i] = string(raw)
	}
	return out
}

func TestClientWatch(t *testing.T) {
	t.Parallel()
	frames := clEventFrames()

	t.Run("table until the server closes", func(t *testing.T) {
		es := clStartEventServer(t, frames, false)
		out, _, err := clRun(t, t.Context(), es.url, "watch", "--user", "user_1:pass",
			"--kind", "http://houssem.org/cmbs#message", "--location", "/cmbs/", "--topic", "weather.lyon", "--topic", "news",
			"--provider", "storage", "--event", "created,delivery_failed")
		if err != nil {
			t.Fatal(err)
		}
		clGolden(t, "client_watch", out)
		r := <-es.requests
		want := url.Values{"kind": {"http://houssem.org/cmbs#message"}, "location": {"/cmbs/"}, "topics": {"weather.lyon,news"},
			"providers": {"storage"}, "events": {"created,delivery_failed"}}
		if got := r.URL.Query(); got.Encode() != want.Encode() {
			t.Errorf("query = %v, want %v", got, want)
		}
		if user, pw, ok := r.BasicAuth(); !ok || user != "user_1" || pw != "pass" {
			t.Errorf("basic auth = %q %q %v", user, pw, ok)
		}
	})

	t.Run("json lines and --count", func(t *testing.T) {
		es := clStartEventServer(t, frames, true)
		out, _, err := clRun(t, t.Context(), es.url, "watch", "--user", "u:p", "-o", "json", "--count", "2")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("got %d lines, want 2:\n%s", len(lines), out)
		}
		for i, line := range lines {
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(frames[i])); err != nil {
				t.Fatal(err)
			}
			if line != want.String() {
				t.Errorf("line %d = %s, want %s", i, line, want.String())
			}
		}
	})

	t.Run("stops when interrupted", func(t *testing.T) {
		es := clStartEventServer(t, frames[:1], true)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stdout := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"watch", "--user", "u:p", "--server", es.url}, strings.NewReader(""), stdout, &bytes.Buffer{})
		}()
		cmbstest.Eventually(t, "member-b on the output", func() bool { return strings.Contains(stdout.String(), "member-b") })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch after interrupt = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("watch still running after its context ended")
		}
	})

	t.Run("refused", func(t *testing.T) {
		es := clStartEventServer(t, nil, false)
		_, _, err := clRun(t, t.Context(), es.url, "watch")
		if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: this server requires HTTP Basic authentication") {
			t.Errorf("watch without user = %v, want the server's problem", err)
		}
	})

	t.Run("no stream", func(t *testing.T) {
		es := clStartEventServer(t, nil, false)
		_, _, err := clRun(t, t.Context(), es.url+"/prefix", "watch", "--user", "u:p")
		if err == nil || !strings.Contains(err.Error(), "404 Not Found") {
			t.Errorf("watch on a server without /events = %v, want 404", err)
		}
	})
}

// clWatcher is a `cmbs watch` running until its count of events.
type clWatcher struct {
	stdout, stderr *syncBuffer
	done           chan error
}

// clStartWatch runs watch with args and waits until its stream is open.
func clStartWatch(t *testing.T, server string, args ...string) *clWatcher {
	t.Helper()
	w := &clWatcher{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	args = append([]string{"watch", "--server", server}, args...)
	go func() { w.done <- run(t.Context(), args, strings.NewReader(""), w.stdout, w.stderr) }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(w.stderr.String(), "watching "+server+"/events") {
		select {
		case err := <-w.done:
			t.Fatalf("watch ended before its stream opened: %v\n%s", err, w.stderr)
		case <-deadline:
			t.Fatalf("watch did not open its stream:\n%s", w.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return w
}

// wait returns what watch printed once it has ended.
func (w *clWatcher) wait(t *testing.T) string {
	t.Helper()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("watch: %v\n%s", err, w.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("watch still running; printed so far:\n%s", w.stdout)
	}
	return w.stdout.String()
}

// TestClientWatchLive watches real servers' /events while members send.
func TestClientWatchLive(t *testing.T) {
	t.Parallel()
	a := clStartServer(t, "a", clOptions{events: true})
	b := clStartServer(t, "b", clOptions{events: true})
	ctx := t.Context()
	for _, args := range [][]string{
		append([]string{"member", "create", "--id", "member-b", "--topic", "weather.*"}, b.socketFlags()...),
		{"member", "start", "all"},
	} {
		if _, _, err := clRun(t, ctx, b.URL, args...); err != nil {
			t.Fatal(err)
		}
	}
	created := clStartWatch(t, a.URL, "--location", "/cmbs/member/", "--event", "created", "--count", "1")
	for _, args := range [][]string{
		append([]string{"member", "create", "--id", "member-a", "--neighbor", b.Sockets["l1"]}, a.socketFlags()...),
		{"member", "start", "all"},
		{"member", "discover"},
	} {
		if _, _, err := clRun(t, ctx, a.URL, args...); err != nil {
			t.Fatal(err)
		}
	}
	if out := created.wait(t); !strings.Contains(out, "  created           member    /cmbs/member/member-a") ||
		!strings.Contains(out, "state=active local=true") {
		t.Errorf("watch of member creations printed:\n%s", out)
	}

	received := clStartWatch(t, b.URL, "--event", "message_received", "--topic", "weather.lyon", "--count", "1")
	failed := clStartWatch(t, a.URL, "--event", "delivery_failed", "--count", "1", "-o", "json")
	if _, _, err := clRun(t, ctx, a.URL, "message", "send", "--layer", "l32", "--id", "live-1", "--topic", "weather.lyon", "--content", `{"temp":21}`, "--wait"); err != nil {
		t.Fatal(err)
	}
	if out := received.wait(t); !strings.Contains(out, "message_received  message   /cmbs/message/live-1") ||
		!strings.Contains(out, "layer=l32 member=member-b from=member-a") || !strings.Contains(out, `content={"temp":21}`) {
		t.Errorf("watch of received messages printed:\n%s", out)
	}

	nowhere := layertest.FreeEndpoint(t)
	if _, _, err := clRun(t, ctx, a.URL, "message", "send", "--layer", "l1", "--id", "live-2", "--to", nowhere, "--content", "x", "--expires", "1s", "--wait"); err == nil {
		t.Fatal("a send to nowhere succeeded")
	}
	var ev struct {
		Event, Location, Layer, Reason string
	}
	out := failed.wait(t)
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Event != "delivery_failed" || ev.Location != "/cmbs/message/live-2" || ev.Layer != "l1" || ev.Reason == "" {
		t.Errorf("watch -o json of failures printed %s (%v)", out, err)
	}
}
