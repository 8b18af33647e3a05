package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/config/cmbstest"
)

func TestLocalURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{"", "http://127.0.0.1:8090"},
		{":9000", "http://127.0.0.1:9000"},
		{"0.0.0.0:9001", "http://127.0.0.1:9001"},
		{"[::]:9002", "http://127.0.0.1:9002"},
		{"10.0.0.5:9003", "http://10.0.0.5:9003"},
		{"[::1]:9004", "http://[::1]:9004"},
	}
	for _, tt := range tests {
		if got := localURL(tt.addr); got != tt.want {
			t.Errorf("localURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestHealthTarget checks which URL cmbs health asks: --server, else
// CMBS_SERVER, else CMBS_HTTP's address; the probe's path is added to a
// base URL, and a server answering 200 without being a cmbs probe is not
// healthy.
func TestHealthTarget(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		switch r.URL.Path {
		case "/health/ready":
			fmt.Fprint(w, `{"status":"ready","checks":[]}`)
		case "/health/alive":
			fmt.Fprint(w, `{"status":"alive"}`)
		default:
			fmt.Fprint(w, "<html>some page</html>")
		}
	}))
	defer srv.Close()
	t.Setenv(envServer, "")
	t.Setenv("CMBS_HTTP", strings.TrimPrefix(srv.URL, "http://"))
	for _, tt := range []struct {
		args     []string
		env      string
		wantPath string
		wantErr  string
	}{
		{args: nil, wantPath: "/health/ready"},
		{args: []string{"--alive"}, wantPath: "/health/alive"},
		{args: []string{"--server", srv.URL}, wantPath: "/health/ready"},
		{args: nil, env: srv.URL + "/", wantPath: "/health/ready"},
		{args: []string{"--url", srv.URL}, wantPath: "/health/ready"},
		{args: []string{"--url", srv.URL + "/health/alive"}, wantPath: "/health/alive", wantErr: `not a cmbs probe saying "ready"`},
		{args: []string{"--server", srv.URL + "/other"}, wantPath: "/other/health/ready", wantErr: "not a cmbs probe"},
	} {
		t.Run(strings.Join(tt.args, " ")+" "+tt.env, func(t *testing.T) {
			asked = nil
			t.Setenv(envServer, tt.env)
			_, err := hcHealth(t, tt.args...)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("health %q = %v, want error %q", tt.args, err, tt.wantErr)
			}
			if len(asked) != 1 || asked[0] != tt.wantPath {
				t.Errorf("health %q asked %v, want %s", tt.args, asked, tt.wantPath)
			}
		})
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
	out, err := hcHealth(t, "--server", s.url)
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
	if out, err := hcHealth(t, "--server", s.url); err != nil {
		t.Fatalf("health with l1 bound = %q, %v", out, err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := hcHealth(t, "--server", s.url); err == nil {
		t.Fatal("health succeeded with the server stopped")
	}

	taken, err := net.Listen("tcp", strings.TrimPrefix(l1, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, taken.Close)
	s = startServe(t, "--store", "file:"+dir)
	_, err = hcHealth(t, "--server", s.url)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), `"layer l1"`) {
		t.Fatalf("health with l1 unbound = %v; want 503 naming layer l1", err)
	}
	if out, err := hcHealth(t, "--server", s.url, "--alive"); err != nil {
		t.Errorf("liveness = %q, %v; want alive while the layer is down", out, err)
	}
	if _, err := hcHealth(t, "--server", "::not a url"); err == nil || !strings.Contains(fmt.Sprint(err), "usage") {
		t.Errorf("bad URL error = %v, want a usage error", err)
	}
}
