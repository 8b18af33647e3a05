package mec_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/houssem/cmbs/cmd/cmbs/mec"
	"github.com/houssem/cmbs/cmd/cmbs/mec/mectest"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/config"
)

// drainer records the Drain calls and waits as long as told.
type drainer struct {
	mu       sync.Mutex
	calls    int
	deadline time.Time
	takes    time.Duration
}

func (d *drainer) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.calls++
	d.deadline, _ = ctx.Deadline()
	takes := d.takes
	d.mu.Unlock()
	select {
	case <-time.After(takes):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// app is a Lifecycle served on loopback and run in the background.
type app struct {
	lc     *mec.Lifecycle
	addr   net.Addr
	cancel context.CancelFunc
	done   chan error
	log    *test.Hook
}

func mecConfig(p *mectest.Platform) config.Config {
	c := config.Default()
	c.MEC.Platform, c.MEC.AppInstanceID = p.URL, "app-1"
	c.MEC.RetryMax = 200 * time.Millisecond
	c.MEC.AdvertiseHost = "cmbs.example"
	c.Member = &config.Member{ID: "edge-1",
		Sockets: map[string]string{"l1": "tcp://*:5010", "l2": "tcp://10.0.0.5:5020", "l31": "ipc:///run/cmbs/l31", "l32": "inproc://l32", "l4": "tcp://*:5040"},
		Start:   []string{"l1", "l2", "l31", "l32"}}
	return c
}

func startApp(t *testing.T, cfg config.Config, d mec.Drainer) *app {
	t.Helper()
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	lc, err := mec.New(mec.Options{Config: cfg, Version: "1.4.0", Drainer: d, Logger: logger, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(lc.Handler(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	a := &app{lc: lc, addr: srv.Listener.Addr(), cancel: cancel, done: make(chan error, 1), log: hook}
	go func() { a.done <- lc.Run(ctx, a.addr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-a.done; err != nil {
			t.Logf("Run returned %v", err)
		}
	})
	return a
}

// probe evaluates the readiness check.
func (a *app) probe() ops.Check {
	cs := a.lc.Probe()(context.Background())
	if len(cs) != 1 {
		panic("one check expected")
	}
	return cs[0]
}

func (a *app) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "registration", func() bool { return a.probe().State == ops.StateOK })
}

func (a *app) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func messages(h *test.Hook) []string {
	var out []string
	for _, e := range h.AllEntries() {
		out = append(out, e.Message)
	}
	return out
}

// TestLifecycle: start-up, then a termination notice: drained,
// deregistered, confirmed, in that order, and Run returns nil.
func TestLifecycle(t *testing.T) {
	p := mectest.Start(t, mectest.Options{})
	d := &drainer{takes: 100 * time.Millisecond}
	a := startApp(t, mecConfig(p), d)
	if c := a.probe(); c.State != ops.StateFailing || !strings.Contains(c.Error, "not registered yet") {
		t.Errorf("probe before registration = %+v", c)
	}
	a.waitReady(t)
	if got, want := p.Ops(), []string{"confirm_ready", "register", "register", "register", "register", "subscribe"}; !slices.Equal(got, want) {
		t.Fatalf("start-up calls = %v, want %v", got, want)
	}

	type transport struct {
		ID, Type, Protocol string
		Endpoint           struct{ URIs []string }
	}
	got := map[string]transport{}
	for _, raw := range p.Services() {
		var s struct {
			SerName, Version, State, Serializer string
			TransportInfo                       transport
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		if s.SerName != "cmbs" || s.Version != "1.4.0" || s.State != "ACTIVE" || s.Serializer != "JSON" {
			t.Errorf("service %s", raw)
		}
		got[s.TransportInfo.ID] = s.TransportInfo
	}
	uris := map[string]string{}
	for id, tr := range got {
		uris[id] = tr.Type + " " + tr.Protocol + " " + strings.Join(tr.Endpoint.URIs, " ")
	}
	want := map[string]string{
		"cmbs-http": "REST_HTTP HTTP http://" + a.addr.String() + "/",
		"cmbs-l1":   "RPC ZMTP tcp://cmbs.example:5010",
		"cmbs-l2":   "MB_PUBSUB ZMTP tcp://10.0.0.5:5020",
		"cmbs-l31":  "MB_ROUTING ZMTP ipc:///run/cmbs/l31",
	}
	if !reflect.DeepEqual(uris, want) {
		t.Errorf("transports =\n%v\nwant\n%v (l32 is inproc, l4 not started)", uris, want)
	}

	sent := time.Now()
	status, err := p.Terminate(3)
	answered := time.Now()
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("termination notice = %d, %v; want 204", status, err)
	}
	select {
	case action := <-p.Confirmed():
		if action != "TERMINATING" {
			t.Errorf("confirmed %q", action)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no confirm_termination")
	}
	if err := a.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after a confirmed termination", err)
	}
	calls := p.Ops()
	if got, want := calls[6:], []string{"deregister", "deregister", "deregister", "deregister", "unsubscribe", "confirm_termination"}; !slices.Equal(got, want) {
		t.Errorf("termination calls = %v, want %v", got, want)
	}
	if len(p.Services()) != 0 || p.Subscribed() {
		t.Errorf("left registered: %v, subscribed %v", p.Services(), p.Subscribed())
	}
	d.mu.Lock()
	if d.calls != 1 || d.deadline.Before(sent.Add(2*time.Second)) || !d.deadline.Before(answered.Add(3*time.Second)) {
		t.Errorf("Drain called %d times with deadline %v after the notice, want once within the 3s graceful time, less a reserve",
			d.calls, d.deadline.Sub(sent))
	}
	d.mu.Unlock()
	if c := a.probe(); c.State != ops.StateFailing || c.Error != "terminated" {
		t.Errorf("probe after termination = %+v", c)
	}
	logs := strings.Join(messages(a.log), "\n")
	for _, want := range []string{"READY confirmed", "service registered", "registered; ready", "termination notice", "drained", "termination confirmed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestLifecyclePlatformDown: the platform refuses connections, then
// answers 409 (not instantiated yet), then works: the start-up waits, retrying, not ready.
func TestLifecyclePlatformDown(t *testing.T) {
	p := mectest.Start(t, mectest.Options{Down: true, FailFirst: 1})
	a := startApp(t, mecConfig(p), &drainer{})
	waitFor(t, "two refused attempts", func() bool {
		n := 0
		for _, e := range a.log.AllEntries() {
			if strings.Contains(e.Message, "confirm_ready failed; retrying") {
				n++
			}
		}
		return n >= 2
	})
	if c := a.probe(); c.State != ops.StateFailing || !strings.Contains(c.Error, "connection refused") {
		t.Errorf("probe while down = %+v, want failing, saying the connection is refused", c)
	}
	p.Up()
	a.waitReady(t)
	calls := p.Calls()
	if calls[0].Op != "confirm_ready" || calls[0].Status != http.StatusConflict || calls[1].Op != "confirm_ready" || calls[1].Status != http.StatusNoContent {
		t.Errorf("first calls = %+v", calls[:2])
	}
}

// TestLifecycleStop: the server stops without a notice: the services and
// the subscription are deleted, the termination is not confirmed.
func TestLifecycleStop(t *testing.T) {
	p := mectest.Start(t, mectest.Options{})
	d := &drainer{}
	a := startApp(t, mecConfig(p), d)
	a.waitReady(t)
	a.cancel()
	if err := a.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if len(p.Services()) != 0 || p.Subscribed() || slices.Contains(p.Ops(), "confirm_termination") || d.calls != 0 {
		t.Errorf("after stop: services %v, subscribed %v, calls %v, drains %d", p.Services(), p.Subscribed(), p.Ops(), d.calls)
	}
}

// TestLifecycleRefused: an answer that retrying cannot change stops the
// start-up with the platform's detail.
func TestLifecycleRefused(t *testing.T) {
	p := mectest.Start(t, mectest.Options{AppInstanceID: "someone-else"})
	a := startApp(t, mecConfig(p), &drainer{})
	err := a.wait(t)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: no application instance app-1") {
		t.Errorf("Run = %v, want the platform's 404 and its detail", err)
	}
	if calls := p.Ops(); !slices.Equal(calls, []string{"confirm_ready"}) {
		t.Errorf("calls = %v, want one confirm_ready", calls)
	}
}

// TestLifecycleOAuth2: every request carries a token got with the client
// credentials; a token the platform no longer takes is replaced.
func TestLifecycleOAuth2(t *testing.T) {
	p := mectest.Start(t, mectest.Options{ClientID: "cmbs", ClientSecret: "s3cret"})
	cfg := mecConfig(p)
	cfg.MEC.OAuth2 = config.OAuth2{TokenURL: p.TokenURL, ClientID: "cmbs", ClientSecret: "s3cret"}
	a := startApp(t, cfg, &drainer{})
	a.waitReady(t)
	if calls := p.Ops(); calls[0] != "token" || slices.Contains(calls[1:], "token") {
		t.Errorf("calls = %v, want one token first", calls)
	}
	// With its token revoked, cmbs's deregistrations are refused (403:
	// the files allow no 401 there), and confirm_termination answered
	// 401 makes it fetch a new token and confirm.
	p.RevokeTokens()
	if status, err := p.Terminate(2); err != nil || status != http.StatusNoContent {
		t.Fatalf("termination notice = %d, %v", status, err)
	}
	if err := a.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	var confirm []string
	for _, c := range p.Calls()[6:] {
		switch c.Op {
		case "confirm_termination", "token":
			confirm = append(confirm, c.Op+" "+strconv.Itoa(c.Status))
		case "deregister", "unsubscribe":
			if c.Status != http.StatusForbidden {
				t.Errorf("%s with a revoked token answered %d", c.Op, c.Status)
			}
		}
	}
	if want := []string{"confirm_termination 401", "token 200", "confirm_termination 204"}; !slices.Equal(confirm, want) {
		t.Errorf("confirmation calls = %v, want %v", confirm, want)
	}

	// Wrong credentials stop the start-up: the token endpoint says why.
	p2 := mectest.Start(t, mectest.Options{ClientID: "cmbs", ClientSecret: "s3cret"})
	cfg = mecConfig(p2)
	cfg.MEC.OAuth2 = config.OAuth2{TokenURL: p2.TokenURL, ClientID: "cmbs", ClientSecret: "wrong"}
	b := startApp(t, cfg, &drainer{})
	if err := b.wait(t); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("Run with wrong credentials = %v", err)
	}
}

// TestCallbackRefusals: what is not a termination notice for this
// instance changes nothing.
func TestCallbackRefusals(t *testing.T) {
	p := mectest.Start(t, mectest.Options{})
	a := startApp(t, mecConfig(p), &drainer{})
	a.waitReady(t)
	var callback string
	for _, c := range p.Calls() {
		if c.Op == "subscribe" {
			var s struct{ CallbackReference string }
			_ = json.Unmarshal(c.Body, &s)
			callback = s.CallbackReference
		}
	}
	if !strings.HasPrefix(callback, "http://"+a.addr.String()+mec.CallbackPrefix) {
		t.Fatalf("callback %q", callback)
	}
	base := "http://" + a.addr.String()
	for _, tc := range []struct {
		method, url, ctype, body string
		want                     int
	}{
		{"POST", base + mec.CallbackPrefix + "guess", "application/json", "{}", http.StatusNotFound},
		{"GET", callback, "", "", http.StatusMethodNotAllowed},
		{"POST", callback, "text/plain", "x", http.StatusUnsupportedMediaType},
		{"POST", callback, "application/json", "{", http.StatusBadRequest},
		{"POST", callback, "application/json", `{"notificationType":"Other","operationAction":"TERMINATING","maxGracefulTimeout":1,"_links":{"subscription":{}}}`, http.StatusBadRequest},
		{"POST", callback, "application/json", `{"notificationType":"AppTerminationNotification","operationAction":"PAUSING","maxGracefulTimeout":1,"_links":{"subscription":{}}}`, http.StatusBadRequest},
		{"POST", callback, "application/json", `{"notificationType":"AppTerminationNotification","operationAction":"STOPPING","_links":{"subscription":{}}}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s = %d, want %d", tc.method, tc.url, tc.body, resp.StatusCode, tc.want)
		}
	}
	if c := a.probe(); c.State != ops.StateOK {
		t.Errorf("probe after refused notices = %+v", c)
	}
}

// TestSpecServicesPOSTDefect shows why mectest patches the service
// management file: as shipped, no service registration passes it.
func TestSpecServicesPOSTDefect(t *testing.T) {
	body := `{"serName":"cmbs","version":"1","state":"ACTIVE","serializer":"JSON","transportInfo":{"id":"t","name":"n","type":"REST_HTTP","protocol":"HTTP","version":"1.1","endpoint":{"uris":["http://x/"]},"security":{}}}`
	check := func(spec []byte) error {
		doc, err := libopenapi.NewDocument(spec)
		if err != nil {
			t.Fatal(err)
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		req := httptest.NewRequest("POST", "http://127.0.0.1:8081/mec_service_mgmt/v1/applications/a/services", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if ok, errs := v.ValidateHttpRequestSync(req); !ok {
			return errors.New(errs[0].SchemaValidationErrors[0].Reason)
		}
		return nil
	}
	if err := check(mectest.ServiceMgmtSpec()); err == nil || !strings.Contains(err.Error(), "oneOf") {
		t.Errorf("as shipped, a ServiceInfo = %v; if the file is fixed, drop mectest.PatchServicesPOST", err)
	}
	if err := check(mectest.PatchServicesPOST(mectest.ServiceMgmtSpec())); err != nil {
		t.Errorf("patched, a ServiceInfo = %v", err)
	}
}
