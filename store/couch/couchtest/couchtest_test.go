package couchtest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer cmbstest.NoError(t, resp.Body.Close)
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func put(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	cmbstest.NoError(t, resp.Body.Close)
	return resp.StatusCode
}

func TestStartServesAndStops(t *testing.T) {
	var base string
	t.Run("server", func(t *testing.T) {
		base = Start(t)
		if !strings.HasPrefix(base, "http://127.0.0.1:") {
			t.Errorf("base URL %q is not on loopback", base)
		}
		status, body := get(t, base+"/")
		if status != http.StatusOK || body["version"] == nil {
			t.Fatalf("GET / = %d %v", status, body)
		}
		if code := put(t, base+"/somedb"); code != http.StatusCreated {
			t.Fatalf("PUT db = %d", code)
		}
	})
	// The subtest's cleanup has killed the server.
	if status, _ := get(t, base+"/"); status != 0 {
		t.Errorf("server still answers after its test ended (status %d)", status)
	}
}

func TestNewDBURL(t *testing.T) {
	a, b := NewDBURL(t), NewDBURL(t)
	if a == b {
		t.Fatalf("NewDBURL returned %q twice", a)
	}
	if strings.TrimSuffix(a, a[strings.LastIndex(a, "/"):]) != strings.TrimSuffix(b, b[strings.LastIndex(b, "/"):]) {
		t.Errorf("databases %q and %q are on different servers", a, b)
	}
	for _, u := range []string{a, b} {
		if code := put(t, u); code != http.StatusCreated {
			t.Fatalf("PUT %s = %d, want 201", u, code)
		}
	}
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv(EnvServer, filepath.Join(t.TempDir(), "no-such-server"))
	if _, err := start(t.TempDir()); err == nil {
		t.Fatal("start succeeded with a missing binary")
	}
}

func TestExitingBinaryFails(t *testing.T) {
	t.Setenv(EnvServer, "/bin/false")
	_, err := start(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("start error = %v, want the server to be reported as exited", err)
	}
}
