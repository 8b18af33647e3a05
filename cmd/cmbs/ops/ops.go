package ops

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/instrumented"
)

// Paths the operations endpoints are served on.
const (
	AlivePath   = "/health/alive"
	ReadyPath   = "/health/ready"
	MetricsPath = "/metrics"
)

// DefaultReadyTimeout bounds one readiness evaluation, all checks
// together; it is below the 5s timeout the documented probes give.
const DefaultReadyTimeout = 4 * time.Second

// Options configures New.
type Options struct {
	// Logger receives scrape errors; nothing is logged when nil.
	Logger logrus.FieldLogger
	// ReadyTimeout bounds one readiness evaluation; DefaultReadyTimeout
	// when zero.
	ReadyTimeout time.Duration
	// Host names this server in the store probe's document id; the host
	// name when empty.
	Host string
}

// Ops holds a server's registry, its metrics and its readiness probes.
// Wire it before serving: WrapStore, BrokerMetrics, WatchBroker, then
// Handler.
type Ops struct {
	reg          *prometheus.Registry
	log          logrus.FieldLogger
	host         string
	readyTimeout time.Duration
	store        *instrumented.Metrics
	broker       *broker.Metrics
	http         *httpMetrics
	probes       []Probe
}

// New creates the registry with the Go runtime and process collectors and
// the cmbs HTTP, store and broker metrics.
func New(opts Options) (*Ops, error) {
	o := &Ops{reg: prometheus.NewRegistry(), log: opts.Logger, host: opts.Host, readyTimeout: opts.ReadyTimeout}
	if o.log == nil {
		o.log = discardLogger()
	}
	if o.readyTimeout <= 0 {
		o.readyTimeout = DefaultReadyTimeout
	}
	if o.host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("ops: host name for the store probe: %w", err)
		}
		o.host = h
	}
	if err := o.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	if err := o.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	var err error
	if o.http, err = newHTTPMetrics(o.reg); err != nil {
		return nil, err
	}
	if o.store, err = instrumented.NewMetrics(o.reg); err != nil {
		return nil, err
	}
	if o.broker, err = broker.NewMetrics(o.reg); err != nil {
		return nil, err
	}
	return o, nil
}

// Registry returns the registry /metrics exposes, for further collectors.
func (o *Ops) Registry() *prometheus.Registry { return o.reg }

// WrapStore returns st instrumented with the store metrics, and makes
// readiness check that st answers and accepts writes.
func (o *Ops) WrapStore(st store.Store) store.Store {
	wrapped := instrumented.Wrap(st, Backend(st), o.store)
	o.AddProbe(StoreProbe(wrapped, ProbeDocID(o.host)))
	return wrapped
}

// Backend names a store's backend for the backend label.
func Backend(st store.Store) string {
	switch instrumented.Unwrap(st).(type) {
	case *bolt.Store:
		return "bolt"
	case *couch.Store:
		return "couch"
	default:
		return "other"
	}
}

// BrokerMetrics is what broker.Config.Metrics takes.
func (o *Ops) BrokerMetrics() *broker.Metrics { return o.broker }

// WatchBroker registers b's members and receivers gauges and makes
// readiness check that the layers its local member records as running are
// bound.
func (o *Ops) WatchBroker(b *broker.Broker) error {
	if err := o.reg.Register(b.Collector()); err != nil {
		return fmt.Errorf("ops: register the broker collector: %w", err)
	}
	o.AddProbe(BrokerProbe(b))
	return nil
}

// AddProbe adds a readiness probe. Call it before Handler serves.
func (o *Ops) AddProbe(p Probe) { o.probes = append(o.probes, p) }

// Handler serves the probes and /metrics, passes every other request to
// next (the OCCI interface, behind its authentication), and counts all of
// them in the HTTP metrics.
func (o *Ops) Handler(next http.Handler) http.Handler {
	health := &health{probes: o.probes, timeout: o.readyTimeout}
	mux := http.NewServeMux()
	mux.HandleFunc(AlivePath, health.alive)
	mux.HandleFunc(ReadyPath, health.ready)
	mux.Handle(MetricsPath, promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{
		// A collector that fails (members read from a store that is down)
		// must not hide the others.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      o.log.WithField("component", "metrics"),
		Registry:      o.reg,
	}))
	ops := map[string]bool{AlivePath: true, ReadyPath: true, MetricsPath: true}
	return o.http.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ops[r.URL.Path] {
			mux.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// discardLogger is the logger of a registry built without one: it drops
// everything, so the package never writes to logrus's global logger behind
// its caller's back.
func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
