package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
)

// server is one cmbs server in-process, wired as serve wires it: the store
// instrumented, the broker counting, the OCCI interface behind
// authentication (user "op") and the operations endpoints ahead of it.
type server struct {
	*brokertest.Member
}

// startServer brings up the server opts describe, its requests made as
// user "op".
func startServer(t *testing.T, opts brokertest.Options) *server {
	t.Helper()
	o, err := ops.New(ops.Options{Logger: brokertest.Quiet(), Host: opts.ID, ReadyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	users := brokertest.Users(t, "op", "secret")
	opts.WrapStore = o.WrapStore
	opts.Broker.Metrics = o.BrokerMetrics()
	opts.Attach = func(m *brokertest.Member) error { return o.WatchBroker(m.Broker) }
	opts.Wrap = func(h http.Handler) http.Handler { return o.Handler(users.Middleware(h)) }
	opts.User, opts.Password = "op", "secret"
	return &server{Member: brokertest.Start(t, opts)}
}

// anon sends a request without credentials and returns the status and
// body.
func (s *server) anon(method, path string) (int, []byte) {
	s.T.Helper()
	res := s.Anonymous().Request(method, path, nil)
	return res.Status, res.Raw
}

// ready fetches /health/ready without credentials.
func (s *server) ready() (int, ops.Report) {
	s.T.Helper()
	status, raw := s.anon("GET", ops.ReadyPath)
	var rep ops.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		s.T.Fatalf("ready body %q: %v", raw, err)
	}
	return status, rep
}

func states(rep ops.Report) map[string]string {
	out := map[string]string{}
	for _, c := range rep.Checks {
		out[c.Name] = c.State
	}
	return out
}

func TestAliveAndReady(t *testing.T) {
	t.Parallel()
	s := startServer(t, brokertest.Options{ID: "probe-a", NoMember: true})
	ctx := context.Background()

	if status, raw := s.anon("GET", ops.AlivePath); status != http.StatusOK || !strings.Contains(string(raw), `"alive"`) {
		t.Fatalf("alive = %d %s", status, raw)
	}
	if status, _ := s.anon("GET", "/-/"); status != http.StatusUnauthorized {
		t.Fatalf("the OCCI interface answered %d without credentials; the test needs it protected", status)
	}

	tests := []struct {
		name    string
		prepare func(t *testing.T)
		status  int
		want    map[string]string
	}{
		{
			name:   "no local member",
			status: http.StatusOK,
			want:   map[string]string{"store": ops.StateOK, "layers": ops.StateOK},
		},
		{
			name: "recorded layers bound",
			prepare: func(t *testing.T) {
				s.CreateMember()
				s.StartLayer(broker.L1)
				s.StartLayer(broker.L2)
			},
			status: http.StatusOK,
			want:   map[string]string{"store": ops.StateOK, "layer l1": ops.StateOK, "layer l2": ops.StateOK},
		},
		{
			name: "a layer recorded running is not bound",
			prepare: func(t *testing.T) {
				// As a restart leaves it when the port is taken: the member
				// says l31 runs, no receiver is bound.
				if _, err := occi.UpdateEntity(ctx, s.Store, "/cmbs/member/"+s.ID, func(e *occi.Entity) error {
					e.SetAttr("cmbs.member.layers", map[string]any{"l1": "running", "l2": "running",
						"l31": "running", "l32": "stopped", "l4": "stopped"})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			},
			status: http.StatusServiceUnavailable,
			want: map[string]string{"store": ops.StateOK, "layer l1": ops.StateOK, "layer l2": ops.StateOK,
				"layer l31": ops.StateFailing},
		},
		{
			name: "bound again",
			prepare: func(t *testing.T) {
				s.StartLayer(broker.L31)
			},
			status: http.StatusOK,
			want: map[string]string{"store": ops.StateOK, "layer l1": ops.StateOK, "layer l2": ops.StateOK,
				"layer l31": ops.StateOK},
		},
		{
			name: "store closed",
			prepare: func(t *testing.T) {
				if err := s.CloseStore(); err != nil {
					t.Fatal(err)
				}
			},
			status: http.StatusServiceUnavailable,
			want:   map[string]string{"store": ops.StateFailing, "layers": ops.StateFailing},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			status, rep := s.ready()
			if status != tt.status {
				t.Errorf("status %d, want %d: %+v", status, tt.status, rep)
			}
			wantStatus := "ready"
			if tt.status != http.StatusOK {
				wantStatus = "not ready"
			}
			if rep.Status != wantStatus {
				t.Errorf("report status %q, want %q", rep.Status, wantStatus)
			}
			if got := states(rep); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("checks %v, want %v (%+v)", got, tt.want, rep.Checks)
			}
			for _, c := range rep.Checks {
				if c.State == ops.StateFailing && c.Error == "" {
					t.Errorf("failing check %s gives no error", c.Name)
				}
			}
		})
	}
	// Liveness does not follow the store: restarting would not bring it back.
	if status, _ := s.anon("GET", ops.AlivePath); status != http.StatusOK {
		t.Errorf("alive = %d with the store closed, want 200", status)
	}
}

func TestProbeMethods(t *testing.T) {
	t.Parallel()
	s := startServer(t, brokertest.Options{ID: "probe-m", NoMember: true})
	tests := []struct {
		method, path string
		want         int
	}{
		{"HEAD", ops.AlivePath, http.StatusOK},
		{"HEAD", ops.ReadyPath, http.StatusOK},
		{"POST", ops.ReadyPath, http.StatusMethodNotAllowed},
		{"DELETE", ops.AlivePath, http.StatusMethodNotAllowed},
		{"GET", ops.MetricsPath, http.StatusOK},
	}
	for _, tt := range tests {
		if got, raw := s.anon(tt.method, tt.path); got != tt.want {
			t.Errorf("%s %s = %d, want %d: %s", tt.method, tt.path, got, tt.want, raw)
		}
	}
}

// scrape parses /metrics, fetched without credentials.
func (s *server) scrape() map[string]*dto.MetricFamily {
	s.T.Helper()
	status, raw := s.anon("GET", ops.MetricsPath)
	if status != http.StatusOK {
		s.T.Fatalf("metrics = %d: %s", status, raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		s.T.Fatalf("parse metrics: %v\n%s", err, raw)
	}
	return families
}

// series returns the value of the series of f whose labels include want:
// a counter's or gauge's value, a histogram's sample count; -1 when absent.
func series(f *dto.MetricFamily, want map[string]string) float64 {
	if v, ok := brokertest.Series(f, want); ok {
		return v
	}
	return -1
}

// TestMetricsAfterTraffic runs two servers, A and B: entities are created
// and read, B discovers A and sends it a message, then every metric family
// is found in each exposition.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	a := startServer(t, brokertest.Options{ID: "metrics-a"})
	b := startServer(t, brokertest.Options{ID: "metrics-b", Neighbors: []*brokertest.Member{a.Member}})
	b.Discover()
	b.Must(http.StatusOK, "GET", "/-/", nil)
	b.Must(http.StatusOK, "GET", "/cmbs/member/", nil)
	b.Must(http.StatusOK, "GET", "/cmbs/member/"+a.ID, nil)
	b.Message("hello", "l2", map[string]any{"message_content": "hello from b"})
	b.Must(http.StatusAccepted, "POST", "/cmbs/message/hello?action=send_l2", map[string]any{})
	cmbstest.Eventually(t, "B's l2 delivery counted", func() bool {
		return series(b.scrape()["cmbs_layer_delivery_duration_seconds"], map[string]string{"layer": "l2"}) == 1
	})
	if status, _ := b.anon("GET", "/cmbs/member/"); status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated collection read = %d", status)
	}
	b.anon("GET", ops.AlivePath)

	fb, fa := b.scrape(), a.scrape()
	families := []struct {
		name string
		typ  dto.MetricType
	}{
		{"cmbs_http_requests_total", dto.MetricType_COUNTER},
		{"cmbs_http_request_duration_seconds", dto.MetricType_HISTOGRAM},
		{"cmbs_http_requests_in_flight", dto.MetricType_GAUGE},
		{"cmbs_store_operations_total", dto.MetricType_COUNTER},
		{"cmbs_store_errors_total", dto.MetricType_COUNTER},
		{"cmbs_store_operation_duration_seconds", dto.MetricType_HISTOGRAM},
		{"cmbs_layer_messages_sent_total", dto.MetricType_COUNTER},
		{"cmbs_layer_messages_received_total", dto.MetricType_COUNTER},
		{"cmbs_layer_messages_forwarded_total", dto.MetricType_COUNTER},
		{"cmbs_layer_messages_failed_total", dto.MetricType_COUNTER},
		{"cmbs_layer_delivery_duration_seconds", dto.MetricType_HISTOGRAM},
		{"cmbs_members_known", dto.MetricType_GAUGE},
		{"cmbs_members_reachable", dto.MetricType_GAUGE},
		{"cmbs_layer_receiver_running", dto.MetricType_GAUGE},
		{"go_goroutines", dto.MetricType_GAUGE},
	}
	for _, f := range families {
		for name, fams := range map[string]map[string]*dto.MetricFamily{"A": fa, "B": fb} {
			got, ok := fams[f.name]
			if !ok {
				t.Errorf("%s exposes no %s", name, f.name)
				continue
			}
			if got.GetType() != f.typ {
				t.Errorf("%s %s is a %v, want %v", name, f.name, got.GetType(), f.typ)
			}
		}
	}

	values := []struct {
		who    string
		fams   map[string]*dto.MetricFamily
		name   string
		labels map[string]string
		want   float64
	}{
		{"B", fb, "cmbs_layer_messages_sent_total", map[string]string{"layer": "l2"}, 1},
		{"B", fb, "cmbs_layer_messages_failed_total", map[string]string{"layer": "l2"}, 0},
		{"A", fa, "cmbs_layer_messages_received_total", map[string]string{"layer": "l2"}, 1},
		{"B", fb, "cmbs_members_known", nil, 1},
		{"B", fb, "cmbs_members_reachable", nil, 1},
		{"A", fa, "cmbs_members_known", nil, 1},
		{"B", fb, "cmbs_layer_receiver_running", map[string]string{"layer": "l32"}, 1},
		{"B", fb, "cmbs_http_requests_total", map[string]string{"route": "query", "method": "GET", "code": "200"}, 1},
		{"B", fb, "cmbs_http_requests_total", map[string]string{"route": "collection", "method": "GET", "code": "401"}, 1},
		{"B", fb, "cmbs_http_requests_total", map[string]string{"route": "collection", "method": "POST", "code": "201"}, 2},
		{"B", fb, "cmbs_http_requests_total", map[string]string{"route": "entity", "method": "POST", "code": "202"}, 1},
		{"B", fb, "cmbs_http_requests_total", map[string]string{"route": "health", "method": "GET", "code": "200"}, 1},
		{"B", fb, "cmbs_store_operations_total", map[string]string{"op": "put", "backend": "bolt"}, -2},
		{"B", fb, "cmbs_store_errors_total", map[string]string{"op": "get", "backend": "bolt"}, 0},
	}
	for _, v := range values {
		got := series(v.fams[v.name], v.labels)
		switch {
		case v.want == -2 && got <= 0:
			t.Errorf("%s %s%v = %v, want some", v.who, v.name, v.labels, got)
		case v.want != -2 && got != v.want:
			t.Errorf("%s %s%v = %v, want %v", v.who, v.name, v.labels, got, v.want)
		}
	}
	for _, m := range fb["cmbs_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "/") {
				t.Errorf("a raw path became a route label: %q", l.GetValue())
			}
		}
	}
}

// TestWebSocketThroughMiddleware: an upgrade passes through the counting
// middleware and is counted as 101 once upgraded.
func TestWebSocketThroughMiddleware(t *testing.T) {
	t.Parallel()
	o, err := ops.New(ops.Options{Logger: brokertest.Quiet(), Host: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	events := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		_ = c.WriteMessage(websocket.TextMessage, []byte("event"))
		_, _, _ = c.ReadMessage() // until the client closes
	})
	hs := httptest.NewServer(o.Handler(events))
	defer hs.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "event" {
		t.Fatalf("read %q, %v", msg, err)
	}
	cmbstest.NoError(t, c.Close)
	families, err := o.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := series(brokertest.Family(families, "cmbs_http_requests_total"), map[string]string{"route": "events", "method": "GET", "code": "101"}); got != 1 {
		t.Errorf("events upgrades counted %v, want 1", got)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, want string }{
		{"/-/", ops.RouteQuery},
		{"/.well-known/org/ogf/occi/-/", ops.RouteQuery},
		{"/health/alive", ops.RouteHealth},
		{"/health/ready", ops.RouteHealth},
		{"/metrics", ops.RouteMetrics},
		{"/events", ops.RouteEvents},
		{"/ui/", ops.RouteUI},
		{"/ui/js/main.js", ops.RouteUI},
		{"/uix", ops.RouteEntity},
		{"/cmbs/member/", ops.RouteCollection},
		{"/", ops.RouteCollection},
		{"/a/b/c/", ops.RouteCollection},
		{"/cmbs/member/m1", ops.RouteEntity},
		{"/health/other", ops.RouteEntity},
		{"/metricsx", ops.RouteEntity},
	}
	for _, tt := range tests {
		if got := ops.Route(tt.path); got != tt.want {
			t.Errorf("Route(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
