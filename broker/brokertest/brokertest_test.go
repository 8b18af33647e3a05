package brokertest_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
)

// TestMembersExchange brings up two members, the second naming the first
// as neighbour, and sends a message between them.
func TestMembersExchange(t *testing.T) {
	a := brokertest.Start(t, brokertest.Options{ID: "a", Topics: []string{"weather.*"}, Layers: []broker.Layer{broker.L1, broker.L2}})
	b := brokertest.Start(t, brokertest.Options{ID: "b", Neighbors: []*brokertest.Member{a}})

	attrs := b.Attrs("/cmbs/member/b", "member")
	want := map[string]any{"l1": "running", "l2": "running", "l31": "running", "l32": "running", "l4": "running"}
	if !reflect.DeepEqual(attrs["layers"], want) || !reflect.DeepEqual(attrs["neighbors_socket"], []any{a.Sockets[broker.L1]}) {
		t.Errorf("b's member = %v", attrs)
	}
	if got := a.Attrs("/cmbs/member/a", "member")["layers"].(map[string]any); got["l1"] != "running" || got["l31"] != "stopped" {
		t.Errorf("a's layers = %v, want l1 and l2 only running", got)
	}
	if res := b.Discover(); !reflect.DeepEqual(res["discovered"], []any{"a"}) || res["unreachable"] != nil {
		t.Errorf("discovery = %v, want a discovered", res)
	}
	b.Message("hello", "l2", map[string]any{"message_content": "hi"})
	if got := brokertest.Outcome(b.Send("hello", "l2")); !reflect.DeepEqual(got, map[string]string{"a": "delivered"}) {
		t.Errorf("outcome %v", got)
	}
	if !a.Has("hello") || a.Has("nothing") {
		t.Errorf("a stores hello: %v, nothing: %v", a.Has("hello"), a.Has("nothing"))
	}
	if _, err := b.Try(http.StatusOK, "GET", "/cmbs/message/nothing", nil); err == nil || !strings.Contains(err.Error(), "status 404, want 200") {
		t.Errorf("Try of a missing message = %v", err)
	}
}

// TestNoMemberAuthAndEvents: a member left to be created later, behind
// authentication, with an event stream.
func TestNoMemberAuthAndEvents(t *testing.T) {
	users := brokertest.Users(t, "op", "secret")
	m := brokertest.Start(t, brokertest.Options{ID: "late", NoMember: true,
		Events: &notify.Config{}, Wrap: users.Middleware, User: "op", Password: "secret"})
	if status, _ := m.Anonymous().Do("GET", "/cmbs/member/", nil); status != http.StatusUnauthorized {
		t.Errorf("anonymous read = %d, want 401", status)
	}
	if res := m.MustRequest(http.StatusOK, "GET", "/cmbs/member/", nil); len(res.Locations()) != 0 {
		t.Errorf("members before CreateMember: %v", res.Locations())
	}
	m.CreateMember()
	m.StartLayer(broker.L2)
	if res := m.MustRequest(http.StatusOK, "GET", "/cmbs/member/", nil); len(res.Locations()) != 1 || !strings.HasSuffix(res.Locations()[0], "/cmbs/member/late") {
		t.Errorf("members after CreateMember: %v", res.Locations())
	}
	// The stream answers at EventsPath, behind the same authentication.
	if res := m.Anonymous().Request("GET", brokertest.EventsPath, nil); res.Status != http.StatusUnauthorized {
		t.Errorf("anonymous /events = %d", res.Status)
	}
	if res := m.Request("GET", brokertest.EventsPath, nil); res.Status != http.StatusUpgradeRequired {
		t.Errorf("/events without an upgrade = %d, want 426", res.Status)
	}
	if m.Notifier == nil {
		t.Fatal("no notifier")
	}
	if err := m.CloseNotifier(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestServeSharedStore runs two plain servers on one store.
func TestServeSharedStore(t *testing.T) {
	st := brokertest.OpenBolt(t)
	a := brokertest.Serve(t, brokertest.ServerOptions{Store: st})
	b := brokertest.Serve(t, brokertest.ServerOptions{Store: st, OCCI: occi.Options{Strict: true}})
	a.Must(http.StatusCreated, "POST", "/resource/", map[string]any{"resources": []any{map[string]any{
		"kind": occi.ResourceKind, "id": "r1", "title": "one"}}})
	res := b.MustRequest(http.StatusOK, "GET", "/resource/r1", "", "Accept", "text/plain")
	if res.Body != nil || !strings.Contains(string(res.Raw), `"one"`) {
		t.Errorf("text answer %q decoded as %v", res.Raw, res.Body)
	}
	if err := a.CloseStore(); err == nil {
		t.Error("CloseStore closed a store the test passed in")
	}
}

func TestSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sent_total", Help: "sent"}, []string{"layer"})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "took_seconds", Help: "took"})
	reg.MustRegister(sent, took)
	sent.WithLabelValues("l2").Add(3)
	took.Observe(0.1)
	took.Observe(0.2)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		family string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"sent_total", map[string]string{"layer": "l2"}, 3, true},
		{"sent_total", nil, 3, true},
		{"sent_total", map[string]string{"layer": "l4"}, 0, false},
		{"took_seconds", nil, 2, true},
		{"absent", nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := brokertest.Series(brokertest.Family(families, tt.family), tt.labels)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Series(%s%v) = %v, %v; want %v, %v", tt.family, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
}
