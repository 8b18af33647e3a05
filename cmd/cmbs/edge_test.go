package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/mec/mectest"
	"github.com/houssem/cmbs/config/cmbstest"
)

// mecArgs are the flags that make serve a MEC application of p.
func mecArgs(p *mectest.Platform) []string {
	return []string{"--mec-platform", p.URL, "--mec-app-instance-id", "app-1", "--mec-retry-max", "500ms"}
}

// e2eMsgs returns the msg of each JSON log line, in order.
func e2eMsgs(log string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line.Msg)
		}
	}
	return out
}

// indexOf is the index of the first message containing s, or -1.
func indexOf(msgs []string, s string) int {
	return slices.IndexFunc(msgs, func(m string) bool { return strings.Contains(m, s) })
}

func (n *e2eNode) ready(t *testing.T) (int, string) {
	t.Helper()
	resp, err := n.client.Get(n.url + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestE2EMECTermination runs cmbs as a MEC application against the
// platform stand-in, which validates every request against the MEC 011
// OpenAPI files: READY, a service per transport and the termination
// subscription at start; then, while a delivery to a member that stopped
// answering runs, a termination notice: sends are refused, the delivery
// drains, the services and subscription are deleted, the termination is
// confirmed and the process exits 0.
func TestE2EMECTermination(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	p := mectest.Start(t, mectest.Options{})
	b := e2eStartNode(t, bin, e2eNodeSpec{name: "B", httpAddr: "127.0.0.1:0"})
	b.createMember(t, "member-b", e2eSockets(t), nil, nil, nil)
	cfgPath, _ := memberConfig(t, "member-a", "  neighbors: ["+b.sockets["l1"]+"]\n  discover: true\n", "")
	a := e2eStartNode(t, bin, e2eNodeSpec{name: "A", httpAddr: "127.0.0.1:0", extra: append([]string{"--config", cfgPath}, mecArgs(p)...)})
	a.id = "member-a"

	cmbstest.EventuallyWithin(t, 30*time.Second, "A ready", func() bool { status, _ := a.ready(t); return status == http.StatusOK })
	if got, want := p.Ops(), []string{"confirm_ready", "register", "register", "register", "register", "register", "register", "subscribe"}; !slices.Equal(got, want) {
		t.Fatalf("start-up calls = %v, want %v", got, want)
	}

	// B stops answering: A's delivery to it is retried until the message
	// expires, 3s after the send; the drain waits for it.
	_ = b.stop(t, syscall.SIGKILL) // killed: its exit status says only that
	a.message(t, "before", "l2", map[string]any{"expires": "3s"})
	a.must(t, http.StatusAccepted, "POST", "/cmbs/message/before?action=send_l2", map[string]any{})
	if status, err := p.Terminate(20); err != nil || status != http.StatusNoContent {
		t.Fatalf("termination notice = %d, %v; want 204", status, err)
	}
	a.message(t, "after", "l2", nil)
	var refused map[string]any
	cmbstest.EventuallyWithin(t, 10*time.Second, "A refusing sends", func() bool {
		var status int
		status, refused = a.do(t, "POST", "/cmbs/message/after?action=send_l2", map[string]any{})
		return status == http.StatusServiceUnavailable
	})
	if detail, _ := refused["detail"].(string); !strings.Contains(detail, "terminating") {
		t.Errorf("refused send = %v, want a problem saying the member is terminating", refused)
	}

	r := a.current()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("A did not exit after the termination")
	}
	if r.err != nil {
		t.Fatalf("A exited with %v, want status 0\n%s", r.err, r.log)
	}
	select {
	case action := <-p.Confirmed():
		if action != "TERMINATING" {
			t.Errorf("confirm_termination said %q", action)
		}
	default:
		t.Error("no confirm_termination")
	}
	if got, want := p.Ops()[8:], []string{"deregister", "deregister", "deregister", "deregister", "deregister", "deregister", "unsubscribe", "confirm_termination"}; !slices.Equal(got, want) {
		t.Errorf("termination calls = %v, want %v", got, want)
	}
	if len(p.Services()) != 0 || p.Subscribed() {
		t.Errorf("left on the platform: services %v, subscribed %v", p.Services(), p.Subscribed())
	}
	// The drain ended with the delivery to B, before the deregistration.
	msgs := e2eMsgs(r.log.String())
	notice, drained, confirmed := indexOf(msgs, "termination notice"), indexOf(msgs, "drained; no delivery running"), indexOf(msgs, "termination confirmed")
	if notice < 0 || drained < notice || confirmed < drained {
		t.Errorf("log order: notice %d, drained %d, confirmed %d:\n%s", notice, drained, confirmed, strings.Join(msgs, "\n"))
	}
}

// TestE2EMECSigterm: a MEC application stopped by SIGTERM deletes its
// registrations, confirms no termination, and exits 0.
func TestE2EMECSigterm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	p := mectest.Start(t, mectest.Options{})
	cfgPath, _ := memberConfig(t, "member-s", "", "")
	a := e2eStartNode(t, bin, e2eNodeSpec{name: "A", httpAddr: "127.0.0.1:0", extra: append([]string{"--config", cfgPath}, mecArgs(p)...)})
	cmbstest.EventuallyWithin(t, 30*time.Second, "A ready", func() bool { status, _ := a.ready(t); return status == http.StatusOK })
	if err := a.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("A exited with %v after SIGTERM, want status 0", err)
	}
	if len(p.Services()) != 0 || p.Subscribed() || slices.Contains(p.Ops(), "confirm_termination") {
		t.Errorf("after SIGTERM: services %v, subscribed %v, calls %v", p.Services(), p.Subscribed(), p.Ops())
	}
	if msgs := e2eMsgs(a.current().log.String()); indexOf(msgs, "service deregistered") < 0 {
		t.Errorf("no deregistration logged:\n%s", strings.Join(msgs, "\n"))
	}
}

// TestServeMECPlatformDown: with the platform unreachable at start, serve
// retries and readiness answers 503, naming why, until the registration
// succeeds.
func TestServeMECPlatformDown(t *testing.T) {
	p := mectest.Start(t, mectest.Options{Down: true, FailFirst: 1})
	cfgPath, _ := memberConfig(t, "member-d", "", "")
	s := startServe(t, append([]string{"--config", cfgPath}, mecArgs(p)...)...)
	ready := func() (int, string) {
		resp := get(t, s.url+"/health/ready", "", "")
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	cmbstest.EventuallyWithin(t, 20*time.Second, "two refused attempts logged", func() bool {
		return strings.Count(s.stderr.String(), "confirm_ready failed; retrying") >= 2
	})
	if status, body := ready(); status != http.StatusServiceUnavailable || !strings.Contains(body, `"name":"mec"`) || !strings.Contains(body, "connection refused") {
		t.Errorf("ready while the platform is down = %d %s", status, body)
	}
	p.Up()
	cmbstest.EventuallyWithin(t, 20*time.Second, "ready once registered", func() bool { status, _ := ready(); return status == http.StatusOK })
	if calls := p.Calls(); calls[0].Status != http.StatusConflict || len(p.Services()) != 6 || !p.Subscribed() {
		t.Errorf("calls %v, services %d, subscribed %v", p.Ops(), len(p.Services()), p.Subscribed())
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve = %v", err)
	}
	if len(p.Services()) != 0 || p.Subscribed() {
		t.Errorf("stopped, left on the platform: services %v, subscribed %v", p.Services(), p.Subscribed())
	}
}
