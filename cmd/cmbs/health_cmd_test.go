package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/config/cmbstest"
)

func TestProbeURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"", "http://127.0.0.1:8090/health/ready"},
		{":9000", "http://127.0.0.1:9000/health/ready"},
		{"0.0.0.0:9001", "http://127.0.0.1:9001/health/ready"},
		{"[::]:9002", "http://127.0.0.1:9002/health/ready"},
		{"10.0.0.5:9003", "http://10.0.0.5:9003/health/ready"},
		{"[::1]:9004", "http://[::1]:9004/health/ready"},
	}
	for _, tt := range tests {
		if got := probeURL(tt.addr); got != tt.want {
			t.Errorf("probeURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// hcHealth runs `cmbs health` with args and returns its output and error.
func hcHealth(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"health"}, args...), strings.NewReader(""), &out, io.Discard)
	return out.String(), err
}

// hcDo sends an authenticated OCCI request.
func hcDo(t *testing.T, method, url string, body any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/occi+json")
	req.SetBasicAuth("op", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cmbstest.NoError(t, resp.Body.Close)
	return resp.StatusCode
}

// TestServeProbesAndHealth runs serve with authentication on: the probes
// and /metrics answer without credentials, `cmbs health` follows
// readiness, and a restart that cannot bind a layer the member records as
// running is not ready.
func TestServeProbesAndHealth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("op:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CMBS_USERS_FILE", users)
	dir := t.TempDir()
	s := startServe(t, "--store", "file:"+dir)

	for path, want := range map[string]int{
		"/health/alive": http.StatusOK, "/health/ready": http.StatusOK,
		"/metrics": http.StatusOK, "/-/": http.StatusUnauthorized,
	} {
		if resp := get(t, s.url+path, "", ""); resp.StatusCode != want {
			t.Errorf("GET %s without credentials = %d, want %d", path, resp.StatusCode, want)
		}
	}
	out, err := hcHealth(t, "--url", s.url+"/health/ready")
	if err != nil || !strings.Contains(out, `"status":"ready"`) {
		t.Fatalf("health = %q, %v; want ready", out, err)
	}
	metrics, err := io.ReadAll(get(t, s.url+"/metrics", "", "").Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"cmbs_http_requests_total", "cmbs_store_operations_total",
		"cmbs_layer_messages_sent_total", "cmbs_members_known", "cmbs_layer_receiver_running"} {
		if !bytes.Contains(metrics, []byte("# TYPE "+family+" ")) {
			t.Errorf("/metrics lacks %s", family)
		}
	}

	// A local member with l1 running, then a restart while its port is
	// taken: the layer stays recorded running but cannot bind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l1 := "tcp://" + ln.Addr().String()
	cmbstest.NoError(t, ln.Close)
	if got := hcDo(t, "POST", s.url+"/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#member", "id": "hc-a",
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "true", "l1_socket": l1}}},
	}}}); got != http.StatusCreated {
		t.Fatalf("create member = %d", got)
	}
	if got := hcDo(t, "POST", s.url+"/cmbs/member/hc-a?action=start_l1", map[string]any{}); got != http.StatusOK {
		t.Fatalf("start l1 = %d", got)
	}
	if out, err := hcHealth(t, "--url", s.url+"/health/ready"); err != nil {
		t.Fatalf("health with l1 bound = %q, %v", out, err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := hcHealth(t, "--url", s.url+"/health/ready"); err == nil {
		t.Fatal("health succeeded with the server stopped")
	}

	taken, err := net.Listen("tcp", strings.TrimPrefix(l1, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, taken.Close)
	s = startServe(t, "--store", "file:"+dir)
	_, err = hcHealth(t, "--url", s.url+"/health/ready")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), `"layer l1"`) {
		t.Fatalf("health with l1 unbound = %v; want 503 naming layer l1", err)
	}
	if out, err := hcHealth(t, "--url", s.url+"/health/alive"); err != nil {
		t.Errorf("liveness = %q, %v; want alive while the layer is down", out, err)
	}
	if _, err := hcHealth(t, "--url", "::not a url"); err == nil || !strings.Contains(fmt.Sprint(err), "usage") {
		t.Errorf("bad URL error = %v, want a usage error", err)
	}
}
