package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// observed is a member whose broker counts into its own registry.
type observed struct {
	*member
	reg *prometheus.Registry
	st  store.Store
}

// startObserved brings up a member as startMember does, with broker
// metrics and the broker's collector registered; layers lists the layers
// started (all when nil).
func startObserved(t *testing.T, spec memberSpec, layers ...broker.Layer) *observed {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := broker.NewMetrics(reg)
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
	b, err := broker.New(broker.Config{Store: st, Logger: log, Timeout: 300 * time.Millisecond, Attempts: 2,
		RouteTimeout: 5 * time.Second, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(b.Collector())
	if err := b.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	m := &member{t: t, id: spec.id, url: hs.URL, broker: b, sockets: map[string]string{}}
	closed := false
	m.close = func() {
		if closed {
			return
		}
		closed = true
		hs.Close()
		b.Close()
		st.Close()
	}
	t.Cleanup(m.close)
	attrs := map[string]any{"local": "true", "state": "active", "topics": spec.topics, "providers": spec.providers}
	for _, l := range broker.Layers() {
		m.sockets[string(l)] = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		attrs[string(l)+"_socket"] = m.sockets[string(l)]
	}
	var neighbors []string
	for _, n := range spec.neighbors {
		neighbors = append(neighbors, n.sockets["l1"])
	}
	attrs["neighbors_socket"] = neighbors
	m.must(http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": spec.id,
		"attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}})
	if layers == nil {
		layers = broker.Layers()
	}
	for _, l := range layers {
		m.must(http.StatusOK, "POST", "/cmbs/member/"+spec.id+"?action=start_"+string(l), map[string]any{})
	}
	return &observed{member: m, reg: reg, st: st}
}

// value reads the series of family name whose labels include want.
func (o *observed) value(name string, want map[string]string) float64 {
	o.t.Helper()
	families, err := o.reg.Gather()
	if err != nil {
		o.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	o.t.Fatalf("no series %s%v", name, want)
	return 0
}

func layer(l string) map[string]string { return map[string]string{"layer": l} }

// TestMetricsFollowTraffic runs a chain C→B→A: discovery, a message from C
// that B forwards to A, then a send from B to a member whose layer
// is down.
func TestMetricsFollowTraffic(t *testing.T) {
	a := startObserved(t, memberSpec{id: "obs-a", providers: []string{"storage"}})
	b := startObserved(t, memberSpec{id: "obs-b", neighbors: []*member{a.member}})
	c := startObserved(t, memberSpec{id: "obs-c", neighbors: []*member{b.member}})

	c.must(http.StatusOK, "POST", "/cmbs/member/obs-c?action=check_neighbors", map[string]any{})
	if got := c.value("cmbs_members_known", nil); got != 2 {
		t.Errorf("C knows %v members, want 2", got)
	}
	if got := c.value("cmbs_members_reachable", nil); got != 2 {
		t.Errorf("C reaches %v members, want 2", got)
	}

	b.must(http.StatusOK, "POST", "/cmbs/member/obs-b?action=check_neighbors", map[string]any{})
	// Make C reach A only through B, so B forwards.
	c.must(http.StatusOK, "POST", "/cmbs/member/obs-a", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "obs-b", "distance": 2}}}}}})

	c.message("obs-1", "l31", map[string]any{"providers": []any{"storage"}})
	if d := c.send("obs-1", "l31"); outcome(d)["obs-a"] != "delivered" || len(outcome(d)) != 1 {
		t.Fatalf("outcome %v", d)
	}
	checks := []struct {
		who    *observed
		name   string
		labels map[string]string
		want   float64
	}{
		{c, "cmbs_layer_messages_sent_total", layer("l31"), 1},
		{c, "cmbs_layer_messages_sent_total", layer("l2"), 0},
		{c, "cmbs_layer_delivery_duration_seconds", layer("l31"), 1},
		{c, "cmbs_layer_messages_failed_total", layer("l31"), 0},
		{b, "cmbs_layer_messages_received_total", layer("l31"), 0},
		{b, "cmbs_layer_messages_forwarded_total", layer("l31"), 1},
		{a, "cmbs_layer_messages_received_total", layer("l31"), 1},
		{a, "cmbs_layer_messages_forwarded_total", layer("l31"), 0},
		{a, "cmbs_layer_messages_sent_total", layer("l31"), 0},
		{a, "cmbs_layer_receiver_running", layer("l4"), 1},
	}
	for _, ck := range checks {
		if got := ck.who.value(ck.name, ck.labels); got != ck.want {
			t.Errorf("%s: %s%v = %v, want %v", ck.who.id, ck.name, ck.labels, got, ck.want)
		}
	}

	// A stops listening on l2: the next l2 send from B fails for A, which
	// no longer counts as reachable.
	a.must(http.StatusOK, "POST", "/cmbs/member/obs-a?action=stop_l2", map[string]any{})
	if got := a.value("cmbs_layer_receiver_running", layer("l2")); got != 0 {
		t.Errorf("A's l2 receiver running = %v after stop", got)
	}
	b.message("obs-2", "l2", nil)
	if got := outcome(b.send("obs-2", "l2")); got["obs-a"] != "failed" {
		t.Fatalf("outcome %v, want failed for obs-a", got)
	}
	if got := b.value("cmbs_layer_messages_failed_total", layer("l2")); got != 1 {
		t.Errorf("B failed{l2} = %v, want 1", got)
	}
	if got := b.value("cmbs_members_reachable", nil); got != 1 {
		t.Errorf("B reaches %v members, want 1 (C only)", got)
	}
}

func TestReady(t *testing.T) {
	ctx := context.Background()
	t.Run("no local member", func(t *testing.T) {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		b, err := broker.New(broker.Config{Store: st, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		checks := b.Ready(ctx)
		if len(checks) != 1 || checks[0].Name != "layers" || checks[0].Err != nil {
			t.Fatalf("Ready = %+v, want one passing layers check", checks)
		}
	})

	m := startObserved(t, memberSpec{id: "ready-a"}, broker.L1, broker.L2)
	tests := []struct {
		name    string
		prepare func(t *testing.T)
		failing []string
		passing []string
	}{
		{name: "recorded layers bound", passing: []string{"layer l1", "layer l2"}},
		{
			name: "recorded running without a receiver",
			prepare: func(t *testing.T) {
				m.must(http.StatusOK, "POST", "/cmbs/member/ready-a?action=stop_l2", map[string]any{})
				// Record l2 running behind the broker's back, as a
				// restart whose bind failed leaves it.
				if _, err := occi.UpdateEntity(ctx, m.st, "/cmbs/member/ready-a", func(e *occi.Entity) error {
					e.SetAttr("cmbs.member.layers", map[string]any{"l1": "running", "l2": "running",
						"l31": "stopped", "l32": "stopped", "l4": "stopped"})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			},
			passing: []string{"layer l1"},
			failing: []string{"layer l2"},
		},
		{
			name:    "broker closed",
			prepare: func(t *testing.T) { m.broker.Close() },
			failing: []string{"layer l1", "layer l2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			got := map[string]error{}
			for _, c := range m.broker.Ready(ctx) {
				got[c.Name] = c.Err
			}
			if len(got) != len(tt.passing)+len(tt.failing) {
				t.Errorf("checks %v, want %v passing and %v failing", got, tt.passing, tt.failing)
			}
			for _, name := range tt.passing {
				if err, ok := got[name]; !ok || err != nil {
					t.Errorf("%s: present %v, error %v; want passing", name, ok, err)
				}
			}
			for _, name := range tt.failing {
				if err := got[name]; err == nil || !strings.Contains(err.Error(), "no receiver") {
					t.Errorf("%s: error %v, want no receiver bound", name, err)
				}
			}
		})
	}
}

// TestCollectorReportsStoreFailure: a scrape while the store is closed
// reports the members gauges as errors, not as zero members.
func TestCollectorReportsStoreFailure(t *testing.T) {
	m := startObserved(t, memberSpec{id: "closed-a"}, broker.L1)
	if err := m.st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := m.reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "read members") {
		t.Fatalf("Gather error = %v, want the members read failure", err)
	}
}
