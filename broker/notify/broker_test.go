package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store/bolt"
)

// member is one cmbs server in process, as broker/harness_test.go builds
// it, with a notifier attached to its broker: its own store, OCCI server,
// broker and local member with a socket per layer on loopback.
type member struct {
	*env
	id      string
	sockets map[string]string
}

func freePort(t testing.TB) int {
	t.Helper()
	return layertest.FreePort(t)
}

func startMember(t testing.TB, id string, topics []string, neighbors ...*member) *member {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := quiet()
	srv, err := occi.NewServer(occi.Options{Store: st, Logger: log, Aliases: broker.Aliases()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Store: st, Logger: log, Timeout: 300 * time.Millisecond, Attempts: 2, RouteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Config{Store: st, Logger: log, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.SetEventSink(n)
	mux := http.NewServeMux()
	mux.Handle("/events", n.Handler())
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	e := &env{t: t, st: st, srv: srv, n: n, url: hs.URL}
	// Cleanups run last first: the broker stops (its last events reach the
	// notifier), then the notifier, then the store.
	t.Cleanup(func() { st.Close() })
	t.Cleanup(e.close)
	t.Cleanup(func() { b.Close() })
	t.Cleanup(hs.Close)
	m := &member{env: e, id: id, sockets: map[string]string{}}
	attrs := map[string]any{"local": "true", "state": "active", "topics": topics}
	for _, l := range broker.Layers() {
		m.sockets[string(l)] = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		attrs[string(l)+"_socket"] = m.sockets[string(l)]
	}
	var ns []string
	for _, nb := range neighbors {
		ns = append(ns, nb.sockets["l1"])
	}
	attrs["neighbors_socket"] = ns
	m.must(http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": id, "attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}})
	for _, l := range broker.Layers() {
		m.must(http.StatusOK, "POST", "/cmbs/member/"+id+"?action=start_"+string(l), map[string]any{})
	}
	return m
}

// message creates and sends a message on layer, waiting for the outcome.
func (m *member) send(id, layer string, topics []string) {
	m.t.Helper()
	m.must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MessageKind, "mixins": []any{"http://houssem.org/cmbs#" + layer}, "id": id,
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{
			"cmbs_layer": layer, "topics": topics, "message_content": map[string]any{"hello": id}}}},
	}}})
	m.must(http.StatusAccepted, "POST", "/cmbs/message/"+id+"?action=send_"+layer, map[string]any{})
	waitFor(m.t, "the outcome of "+id, func() bool {
		out := m.must(http.StatusOK, "GET", "/cmbs/message/"+id, nil)
		attrs := out["resources"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
		d, _ := attrs["cmbs"].(map[string]any)["message"].(map[string]any)["delivery"].(map[string]any)
		return d["state"] == "done"
	})
}

// TestBrokerEvents sends real messages between two members: the receiver's
// subscription hears message_received (filtered by topic), and the
// sender's hears delivery_failed once the receiver's layer is down.
func TestBrokerEvents(t *testing.T) {
	b := startMember(t, "member-b", []string{"weather.*", "news"})
	a := startMember(t, "member-a", nil, b)
	a.must(http.StatusOK, "POST", "/cmbs/member/member-a?action=check_neighbors", map[string]any{})

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

	b.must(http.StatusOK, "POST", "/cmbs/member/member-b?action=stop_l2", map[string]any{})
	a.send("m-lost", "l2", nil)
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
