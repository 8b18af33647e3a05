package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
)

// observed is a member whose broker counts into its own registry.
type observed struct {
	*brokertest.Member
	reg *prometheus.Registry
}

// startObserved brings up a member with broker metrics and the broker's
// collector registered; layers lists the layers started (all when nil).
func startObserved(t *testing.T, opts brokertest.Options, layers ...broker.Layer) *observed {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := broker.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Broker.Metrics = metrics
	opts.Layers = layers
	opts.Attach = func(m *brokertest.Member) error { return reg.Register(m.Broker.Collector()) }
	return &observed{Member: brokertest.Start(t, opts), reg: reg}
}

// value reads the series of family name whose labels include want.
func (o *observed) value(name string, want map[string]string) float64 {
	o.T.Helper()
	families, err := o.reg.Gather()
	if err != nil {
		o.T.Fatal(err)
	}
	v, ok := brokertest.Series(brokertest.Family(families, name), want)
	if !ok {
		o.T.Fatalf("no series %s%v", name, want)
	}
	return v
}

func layer(l string) map[string]string { return map[string]string{"layer": l} }

// TestMetricsFollowTraffic runs a chain C→B→A: discovery, a message from C
// that B forwards to A, then a send from B to a member whose layer
// is down.
func TestMetricsFollowTraffic(t *testing.T) {
	a := startObserved(t, brokertest.Options{ID: "obs-a", Providers: []string{"storage"}})
	b := startObserved(t, brokertest.Options{ID: "obs-b", Neighbors: []*brokertest.Member{a.Member}})
	c := startObserved(t, brokertest.Options{ID: "obs-c", Neighbors: []*brokertest.Member{b.Member}})

	c.Discover()
	if got := c.value("cmbs_members_known", nil); got != 2 {
		t.Errorf("C knows %v members, want 2", got)
	}
	if got := c.value("cmbs_members_reachable", nil); got != 2 {
		t.Errorf("C reaches %v members, want 2", got)
	}

	b.Discover()
	// Make C reach A only through B, so B forwards.
	c.Must(http.StatusOK, "POST", "/cmbs/member/obs-a", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "obs-b", "distance": 2}}}}}})

	c.Message("obs-1", "l31", map[string]any{"providers": []any{"storage"}})
	if d := c.Send("obs-1", "l31"); brokertest.Outcome(d)["obs-a"] != "delivered" || len(brokertest.Outcome(d)) != 1 {
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
	// The metrics follow the commits the outcome shows, a moment later.
	cmbstest.Eventually(t, "the metrics of obs-1", func() bool {
		for _, ck := range checks {
			if ck.who.value(ck.name, ck.labels) != ck.want {
				return false
			}
		}
		return true
	})

	// A stops listening on l2: the next l2 send from B expires before A
	// takes it, and A no longer counts as reachable.
	a.Must(http.StatusOK, "POST", "/cmbs/member/obs-a?action=stop_l2", map[string]any{})
	if got := a.value("cmbs_layer_receiver_running", layer("l2")); got != 0 {
		t.Errorf("A's l2 receiver running = %v after stop", got)
	}
	b.Message("obs-2", "l2", map[string]any{"expires": "1s"})
	if got := brokertest.Outcome(b.Send("obs-2", "l2")); got["obs-a"] != "expired" {
		t.Fatalf("outcome %v, want expired for obs-a", got)
	}
	// Metrics follow the commit that the outcome shows.
	cmbstest.Eventually(t, "B to count the expired delivery", func() bool {
		return b.value("cmbs_layer_messages_failed_total", layer("l2")) == 1
	})
	if got := b.value("cmbs_members_reachable", nil); got != 1 {
		t.Errorf("B reaches %v members, want 1 (C only)", got)
	}
}

func TestReady(t *testing.T) {
	ctx := context.Background()
	t.Run("no local member", func(t *testing.T) {
		b, err := broker.New(broker.Config{Store: brokertest.OpenBolt(t), Logger: brokertest.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmbstest.NoError(t, b.Close) })
		checks := b.Ready(ctx)
		if len(checks) != 1 || checks[0].Name != "layers" || checks[0].Err != nil {
			t.Fatalf("Ready = %+v, want one passing layers check", checks)
		}
	})

	m := startObserved(t, brokertest.Options{ID: "ready-a"}, broker.L1, broker.L2)
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
				m.Must(http.StatusOK, "POST", "/cmbs/member/ready-a?action=stop_l2", map[string]any{})
				// Record l2 running behind the broker's back, as a
				// restart whose bind failed leaves it.
				if _, err := occi.UpdateEntity(ctx, m.Store, "/cmbs/member/ready-a", func(e *occi.Entity) error {
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
			prepare: func(t *testing.T) { cmbstest.NoError(t, m.CloseBroker) },
			failing: []string{"layer l1", "layer l2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			got := map[string]error{}
			for _, c := range m.Broker.Ready(ctx) {
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
	m := startObserved(t, brokertest.Options{ID: "closed-a"}, broker.L1)
	if err := m.CloseStore(); err != nil {
		t.Fatal(err)
	}
	_, err := m.reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "read members") {
		t.Fatalf("Gather error = %v, want the members read failure", err)
	}
}
