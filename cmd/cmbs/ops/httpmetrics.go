package ops

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route label values. Raw paths never become labels: entity ids are
// unbounded.
const (
	RouteQuery      = "query"
	RouteCollection = "collection"
	RouteEntity     = "entity"
	RouteHealth     = "health"
	RouteMetrics    = "metrics"
	RouteEvents     = "events"
	RouteUI         = "ui"
)

// Route classifies a request path. Paths ending in "/" are collections
// (kind and mixin locations and plain paths alike: telling them apart would
// cost a store read per request); other OCCI paths are entities.
func Route(path string) string {
	switch {
	case path == "/-/" || path == "/.well-known/org/ogf/occi/-/":
		return RouteQuery
	case path == AlivePath || path == ReadyPath:
		return RouteHealth
	case path == MetricsPath:
		return RouteMetrics
	case path == "/events" || strings.HasPrefix(path, "/events/"):
		return RouteEvents
	case path == "/ui" || strings.HasPrefix(path, "/ui/"):
		return RouteUI
	case strings.HasSuffix(path, "/"):
		return RouteCollection
	default:
		return RouteEntity
	}
}

// method bounds the method label to the methods HTTP defines.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cmbs_http_requests_total",
			Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cmbs_http_request_duration_seconds",
			Help:    "Time taken to answer HTTP requests, by route and method. Event streams count until they are upgraded.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cmbs_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ops: register HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// instrument counts and times every request next answers.
func (m *httpMetrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Inc()
		rec := &recorder{ResponseWriter: w, m: m, route: Route(r.URL.Path), method: method(r.Method), start: time.Now()}
		defer func() {
			m.inFlight.Dec()
			// A handler that panics is answered 500 by net/http (or its
			// connection dropped); count it so, then let the panic go on.
			if p := recover(); p != nil {
				rec.observe(http.StatusInternalServerError)
				panic(p)
			}
			rec.observe(rec.status())
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder notes the status a handler answers with. It keeps the optional
// abilities handlers use (flushing for streams, hijacking for WebSocket
// upgrades) and unwraps for http.ResponseController.
type recorder struct {
	http.ResponseWriter
	m             *httpMetrics
	route, method string
	start         time.Time
	code          int
	observed      bool
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Flush implements http.Flusher for streaming handlers.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker for WebSocket upgrades. The request is
// counted then, as 101, and its duration ends there: what follows is the
// stream, not the answer.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.observe(http.StatusSwitchingProtocols)
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		// Nothing written: net/http answers 200 with an empty body.
		return http.StatusOK
	}
	return r.code
}

// observe records the request once.
func (r *recorder) observe(code int) {
	if r.observed {
		return
	}
	r.observed = true
	r.m.requests.WithLabelValues(r.route, r.method, strconv.Itoa(code)).Inc()
	r.m.duration.WithLabelValues(r.route, r.method).Observe(time.Since(r.start).Seconds())
}
