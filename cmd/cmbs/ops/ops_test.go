package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/auth"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// server is one cmbs server in-process, wired as serve wires it: the store
// instrumented, the broker counting, the OCCI interface behind
// authentication and the operations endpoints ahead of it.
type server struct {
	t       *testing.T
	id      string
	url     string
	st      store.Store
	broker  *broker.Broker
	sockets map[broker.Layer]string
	user    string
	pw      string
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func freeEndpoint(t *testing.T) string {
	t.Helper()
	return layertest.FreeEndpoint(t)
}

// startServer brings up a server whose OCCI interface requires user "op".
func startServer(t *testing.T, id string) *server {
	t.Helper()
	ctx := context.Background()
	log := quiet()
	o, err := ops.New(ops.Options{Logger: log, Host: id, ReadyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := o.WrapStore(raw)
	srv, err := occi.NewServer(occi.Options{Store: st, Logger: log, Aliases: broker.Aliases()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Store: st, Logger: log, Timeout: 300 * time.Millisecond, Attempts: 2,
		RouteTimeout: 5 * time.Second, Metrics: o.BrokerMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if err := o.WatchBroker(b); err != nil {
		t.Fatal(err)
	}
	// The lowest bcrypt cost keeps the test quick; the middleware is the
	// one serve runs.
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersFile, []byte("op:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := auth.Load(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(o.Handler(users.Middleware(srv.Handler())))
	t.Cleanup(func() {
		hs.Close()
		b.Close()
		st.Close()
	})
	s := &server{t: t, id: id, url: hs.URL, st: st, broker: b, sockets: map[broker.Layer]string{}, user: "op", pw: "secret"}
	for _, l := range broker.Layers() {
		s.sockets[l] = freeEndpoint(t)
	}
	return s
}

// do sends a request, authenticated when auth is set, and returns the
// status and body.
func (s *server) do(method, path string, body any, withAuth bool) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/occi+json")
	req.Header.Set("Accept", "application/occi+json")
	if withAuth {
		req.SetBasicAuth(s.user, s.pw)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, raw
}

func (s *server) must(status int, method, path string, body any) []byte {
	s.t.Helper()
	got, raw := s.do(method, path, body, true)
	if got != status {
		s.t.Fatalf("%s %s on %s: status %d, want %d: %s", method, path, s.id, got, status, raw)
	}
	return raw
}

// createMember creates the local member (or, with local false, a record
// of another server's member) with the given sockets and neighbours.
func (s *server) createMember(id string, local bool, sockets map[broker.Layer]string, neighbors []string) {
	s.t.Helper()
	attrs := map[string]any{"local": fmt.Sprint(local), "state": "active", "neighbors_socket": neighbors}
	for l, ep := range sockets {
		attrs[string(l)+"_socket"] = ep
	}
	s.must(http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": id, "attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}})
}

func (s *server) start(l broker.Layer) {
	s.t.Helper()
	s.must(http.StatusOK, "POST", "/cmbs/member/"+s.id+"?action=start_"+string(l), map[string]any{})
}

// ready fetches /health/ready without credentials.
func (s *server) ready() (int, ops.Report) {
	s.t.Helper()
	status, raw := s.do("GET", ops.ReadyPath, nil, false)
	var rep ops.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		s.t.Fatalf("ready body %q: %v", raw, err)
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
	s := startServer(t, "probe-a")
	ctx := context.Background()

	if status, raw := s.do("GET", ops.AlivePath, nil, false); status != http.StatusOK || !strings.Contains(string(raw), `"alive"`) {
		t.Fatalf("alive = %d %s", status, raw)
	}
	if status, _ := s.do("GET", "/-/", nil, false); status != http.StatusUnauthorized {
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
				s.createMember(s.id, true, s.sockets, nil)
				s.start(broker.L1)
				s.start(broker.L2)
			},
			status: http.StatusOK,
			want:   map[string]string{"store": ops.StateOK, "layer l1": ops.StateOK, "layer l2": ops.StateOK},
		},
		{
			name: "a layer recorded running is not bound",
			prepare: func(t *testing.T) {
				// As a restart leaves it when the port is taken: the member
				// says l31 runs, no receiver is bound.
				if _, err := occi.UpdateEntity(ctx, s.st, "/cmbs/member/"+s.id, func(e *occi.Entity) error {
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
				s.start(broker.L31)
			},
			status: http.StatusOK,
			want: map[string]string{"store": ops.StateOK, "layer l1": ops.StateOK, "layer l2": ops.StateOK,
				"layer l31": ops.StateOK},
		},
		{
			name:    "store closed",
			prepare: func(t *testing.T) { s.st.Close() },
			status:  http.StatusServiceUnavailable,
			want:    map[string]string{"store": ops.StateFailing, "layers": ops.StateFailing},
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
	if status, _ := s.do("GET", ops.AlivePath, nil, false); status != http.StatusOK {
		t.Errorf("alive = %d with the store closed, want 200", status)
	}
}

func TestProbeMethods(t *testing.T) {
	s := startServer(t, "probe-m")
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
		if got, raw := s.do(tt.method, tt.path, nil, false); got != tt.want {
			t.Errorf("%s %s = %d, want %d: %s", tt.method, tt.path, got, tt.want, raw)
		}
	}
}

// scrape parses /metrics, fetched without credentials.
func (s *server) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	status, raw := s.do("GET", ops.MetricsPath, nil, false)
	if status != http.StatusOK {
		s.t.Fatalf("metrics = %d: %s", status, raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		s.t.Fatalf("parse metrics: %v\n%s", err, raw)
	}
	return families
}

// series returns the value of the series of f whose labels include want:
// a counter's or gauge's value, a histogram's sample count; -1 when absent.
func series(f *dto.MetricFamily, want map[string]string) float64 {
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAfterTraffic runs two servers, A and B: entities are created
// and read, B discovers A and sends it a message, then every metric family
// is found in each exposition.
func TestMetricsAfterTraffic(t *testing.T) {
	a := startServer(t, "metrics-a")
	b := startServer(t, "metrics-b")
	a.createMember(a.id, true, a.sockets, nil)
	b.createMember(b.id, true, b.sockets, []string{a.sockets[broker.L1]})
	for _, l := range broker.Layers() {
		a.start(l)
		b.start(l)
	}
	b.must(http.StatusOK, "POST", "/cmbs/member/"+b.id+"?action=check_neighbors", map[string]any{})
	b.must(http.StatusOK, "GET", "/-/", nil)
	b.must(http.StatusOK, "GET", "/cmbs/member/", nil)
	b.must(http.StatusOK, "GET", "/cmbs/member/"+a.id, nil)
	b.must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MessageKind, "mixins": []any{"http://houssem.org/cmbs#l2"}, "id": "hello",
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{
			"cmbs_layer": "l2", "message_content": "hello from b"}}},
	}}})
	b.must(http.StatusAccepted, "POST", "/cmbs/message/hello?action=send_l2", map[string]any{})
	waitUntil(t, 20*time.Second, func() bool {
		return series(b.scrape()["cmbs_layer_delivery_duration_seconds"], map[string]string{"layer": "l2"}) == 1
	})
	if status, _ := b.do("GET", "/cmbs/member/", nil, false); status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated collection read = %d", status)
	}
	b.do("GET", ops.AlivePath, nil, false)

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

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebSocketThroughMiddleware: an upgrade passes through the counting
// middleware and is counted as 101 once upgraded.
func TestWebSocketThroughMiddleware(t *testing.T) {
	o, err := ops.New(ops.Options{Logger: quiet(), Host: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	events := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte("event"))
		c.ReadMessage() // until the client closes
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
	c.Close()
	families, err := o.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var fam *dto.MetricFamily
	for _, f := range families {
		if f.GetName() == "cmbs_http_requests_total" {
			fam = f
		}
	}
	if got := series(fam, map[string]string{"route": "events", "method": "GET", "code": "101"}); got != 1 {
		t.Errorf("events upgrades counted %v, want 1", got)
	}
}

func TestRoute(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/-/", ops.RouteQuery},
		{"/.well-known/org/ogf/occi/-/", ops.RouteQuery},
		{"/health/alive", ops.RouteHealth},
		{"/health/ready", ops.RouteHealth},
		{"/metrics", ops.RouteMetrics},
		{"/events", ops.RouteEvents},
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
