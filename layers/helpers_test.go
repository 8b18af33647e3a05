package layers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// freeEndpoint returns a tcp endpoint on a loopback port that was free a
// moment ago. The kernel hands out ephemeral ports round-robin, so reuse by
// another process before the test binds it is unlikely.
func freeEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("release free port: %v", err)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

// testWriter sends log output to the test log, so it only shows for failing
// tests or with -v.
type testWriter struct {
	mu sync.Mutex
	tb testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(&testWriter{tb: t})
	l.SetLevel(logrus.DebugLevel)
	if _, bench := t.(*testing.B); bench {
		l.SetLevel(logrus.WarnLevel)
	}
	return l
}

// startReceiver starts a receiver for cfg (filling Endpoint and Logger when
// empty) and closes it when the test ends.
func startReceiver(t testing.TB, cfg ReceiverConfig) *Receiver {
	t.Helper()
	if cfg.Endpoint == "" {
		cfg.Endpoint = freeEndpoint(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, ErrNotRunning) {
			t.Errorf("close receiver: %v", err)
		}
	})
	return r
}

// newTestClient creates a client closed when the test ends.
func newTestClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close client: %v", err)
		}
	})
	return c
}

// echo replies with "echo:" followed by the request.
func echo(_ context.Context, msg []byte) ([]byte, error) {
	return append([]byte("echo:"), msg...), nil
}

// testContext bounds a test's requests: hitting this deadline means something
// hung, which the assertions then report as KindCanceled.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor blocks until ch is closed or receives, failing the test at the
// deadline.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// asError extracts the *Error from err, failing the test if there is none.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *layers.Error", err, err)
	}
	return e
}

// quietLogger discards everything: for fuzz targets, whose receivers see
// one malformed request after another.
func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
