package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the broker's traffic per layer and remembers which members
// the latest exchange with succeeded. Create it with NewMetrics and hand it
// to New in Config.Metrics; a nil *Metrics records nothing.
type Metrics struct {
	sent      *prometheus.CounterVec
	received  *prometheus.CounterVec
	forwarded *prometheus.CounterVec
	failed    *prometheus.CounterVec
	delivery  *prometheus.HistogramVec
	// refused counts the peers this member's receivers turned away;
	// refusedBy the connections peers refused to this member.
	refused   *prometheus.CounterVec
	refusedBy *prometheus.CounterVec

	mu sync.Mutex
	// reach holds, per member id, whether the latest exchange with it
	// succeeded: it described itself or was described by a neighbour, it
	// sent a message here, or a delivery to it was (or was not) made.
	reach map[string]bool
}

// NewMetrics creates the per-layer collectors and registers them with reg.
// The gauges computed from the store and the receivers at scrape time come
// from Broker.Collector, registered once the broker exists.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"layer"})
	}
	m := &Metrics{
		sent: counter("cmbs_layer_messages_sent_total",
			"Messages this member started sending, by layer."),
		received: counter("cmbs_layer_messages_received_total",
			"Messages that reached this member as a destination and were taken, duplicates included, by layer."),
		forwarded: counter("cmbs_layer_messages_forwarded_total",
			"Messages this member passed on towards other members, by layer."),
		failed: counter("cmbs_layer_messages_failed_total",
			"Destinations that messages sent from this member did not reach, by layer."),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cmbs_layer_delivery_duration_seconds",
			Help:    "Time from a send's start to its recorded outcome, by layer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"layer"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cmbs_layer_peers_refused_total",
			Help: "Peers a layer receiver of this member turned away, by layer and reason: untrusted_key (not among the trusted keys), " +
				"handshake (no CURVE, or not this member's key) or identity (a request speaking for another member than its key's)."},
			[]string{"layer", "reason"}),
		refusedBy: counter("cmbs_layer_refused_by_peers_total",
			"Connections of this member that a peer's receiver refused (its key not admitted there, or the two sides' security differs), by layer."),
		reach: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{m.sent, m.received, m.forwarded, m.failed, m.delivery, m.refused, m.refusedBy} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("broker: register metrics: %w", err)
		}
	}
	for _, l := range Layers() {
		for _, c := range []*prometheus.CounterVec{m.sent, m.received, m.forwarded, m.failed, m.refusedBy} {
			c.WithLabelValues(string(l))
		}
		for _, reason := range []string{refusedKey, refusedHandshake, refusedIdentity} {
			m.refused.WithLabelValues(string(l), reason)
		}
		m.delivery.WithLabelValues(string(l))
	}
	return m, nil
}

// sentOn counts a send started on layer l.
func (m *Metrics) sentOn(l Layer) {
	if m == nil {
		return
	}
	m.sent.WithLabelValues(string(l)).Inc()
}

// receivedHere counts a message taken at this member and notes that its
// last hop is reachable.
func (m *Metrics) receivedHere(env envelope, res destResult) {
	if m == nil || res.Status != statusDelivered {
		return
	}
	m.received.WithLabelValues(string(env.Layer)).Inc()
	m.contact(env.From.ID, true)
}

// forwardedOn counts a message passed on towards other members.
func (m *Metrics) forwardedOn(l Layer) {
	if m == nil {
		return
	}
	m.forwarded.WithLabelValues(string(l)).Inc()
}

// settled counts the outcomes of a message's destinations that became
// final, and how long the message took to get there.
func (m *Metrics) settled(l Layer, results []destResult) {
	if m == nil {
		return
	}
	layer := string(l)
	for _, r := range results {
		switch r.Status {
		case statusDelivered:
			m.contact(r.Member, true)
			if r.Via != "" {
				m.contact(r.Via, true)
			}
		case statusFailed, statusExpired:
			m.failed.WithLabelValues(layer).Inc()
			m.contact(r.Member, false)
		}
	}
}

// peerRefused counts a peer a receiver of layer l turned away.
func (m *Metrics) peerRefused(l Layer, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(string(l), reason).Inc()
}

// refusedByPeer counts a connection on layer l a peer refused.
func (m *Metrics) refusedByPeer(l Layer) {
	if m == nil {
		return
	}
	m.refusedBy.WithLabelValues(string(l)).Inc()
}

// learned notes that a member was described, by itself or a neighbour.
// completed observes a message whose delivery just became done.
func (m *Metrics) completed(l Layer, started string) {
	if m == nil {
		return
	}
	if t, err := time.Parse(time.RFC3339Nano, started); err == nil {
		m.delivery.WithLabelValues(string(l)).Observe(time.Since(t).Seconds())
	}
}

func (m *Metrics) learned(id string, err error) {
	if m == nil || err != nil {
		return
	}
	m.contact(id, true)
}

func (m *Metrics) contact(id string, ok bool) {
	if m == nil || id == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reach[id] = ok
}

// reachable counts the members among known whose latest exchange
// succeeded, and forgets the others it remembers (members deleted since,
// senders never recorded), so the table stays as small as the store's.
func (m *Metrics) reachable(known map[string]bool) int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, ok := range m.reach {
		switch {
		case !known[id]:
			delete(m.reach, id)
		case ok:
			n++
		}
	}
	return n
}

// collectTimeout bounds the store query a scrape makes.
const collectTimeout = 5 * time.Second

// Collector reports, at each scrape, the members this server knows
// (cmbs_members_known), those of them the latest exchange with succeeded
// (cmbs_members_reachable; none when the broker has no Metrics) and whether
// each layer's receiver is running (cmbs_layer_receiver_running).
func (b *Broker) Collector() prometheus.Collector {
	return &collector{
		b: b,
		known: prometheus.NewDesc("cmbs_members_known",
			"Members other than the local one that this server knows of.", nil, nil),
		reachable: prometheus.NewDesc("cmbs_members_reachable",
			"Known members whose latest exchange with this member succeeded.", nil, nil),
		running: prometheus.NewDesc("cmbs_layer_receiver_running",
			"Whether the layer's receiver is bound and serving (1) or not (0).", []string{"layer"}, nil),
	}
}

type collector struct {
	b                         *Broker
	known, reachable, running *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.known
	ch <- c.reachable
	ch <- c.running
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	states := c.b.layerStates()
	for _, l := range Layers() {
		v := 0.0
		if states[string(l)] == stateRunning {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, v, string(l))
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	remotes, err := c.b.remoteMembers(ctx)
	if err != nil {
		err = fmt.Errorf("read members: %w", err)
		ch <- prometheus.NewInvalidMetric(c.known, err)
		ch <- prometheus.NewInvalidMetric(c.reachable, err)
		return
	}
	known := make(map[string]bool, len(remotes))
	for _, m := range remotes {
		known[m.ID] = true
	}
	reachable := c.b.cfg.Metrics.reachable(known)
	ch <- prometheus.MustNewConstMetric(c.known, prometheus.GaugeValue, float64(len(remotes)))
	ch <- prometheus.MustNewConstMetric(c.reachable, prometheus.GaugeValue, float64(reachable))
}

// Check is one readiness condition: Err is nil when it holds.
type Check struct {
	Name string
	// Detail says what was checked, e.g. the endpoint a layer is bound to.
	Detail string
	Err    error
}

// Ready checks that every layer the local member records as running has a
// receiver bound: one check per such layer, or a single "layers" check
// when there are none or the member cannot be read.
func (b *Broker) Ready(ctx context.Context) []Check {
	local, err := b.localMember(ctx)
	if err != nil {
		return []Check{{Name: "layers", Err: fmt.Errorf("read the local member: %w", err)}}
	}
	if local == nil {
		return []Check{{Name: "layers", Detail: "no local member"}}
	}
	recorded, _ := local.Attr(attrLayers)
	states, _ := recorded.(map[string]any)
	live := b.layerStates()
	var out []Check
	for _, l := range Layers() {
		if states[string(l)] != stateRunning {
			continue
		}
		c := Check{Name: "layer " + string(l), Detail: str(local, l.SocketAttr())}
		if live[string(l)] != stateRunning {
			c.Err = errors.New("recorded running but no receiver is bound")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return []Check{{Name: "layers", Detail: "no layer recorded running on " + local.ID}}
	}
	return out
}
