package layers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/config/cmbstest"
)

func TestNewReceiverValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReceiverConfig
		want string
	}{
		{"bad endpoint", ReceiverConfig{Endpoint: "tcp://127.0.0.1", Handler: echo}, "invalid endpoint"},
		{"unsupported transport", ReceiverConfig{Endpoint: "udp://127.0.0.1:5010", Handler: echo}, "unsupported transport"},
		{"nil handler", ReceiverConfig{Endpoint: "tcp://127.0.0.1:5010"}, "nil Handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReceiver(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewReceiver error = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestReceiverLifecycle(t *testing.T) {
	ep := freeEndpoint(t)
	r, err := NewReceiver(ReceiverConfig{Endpoint: ep, Handler: echo, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Running() {
		t.Fatal("Running before Start")
	}
	if err := r.Close(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Close before Start = %v, want ErrNotRunning", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !r.Running() || r.Endpoint() != ep {
		t.Fatalf("after Start: Running=%v Endpoint=%q, want true %q", r.Running(), r.Endpoint(), ep)
	}
	if err := r.Start(); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start = %v, want ErrAlreadyRunning", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r.Running() {
		t.Fatal("Running after Close")
	}
	if err := r.Close(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Close = %v, want ErrNotRunning", err)
	}
}

func TestReceiverBindFailures(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, held.Close)
	heldEP := "tcp://" + held.Addr().String()

	taken := startReceiver(t, ReceiverConfig{Handler: echo})

	tests := []struct {
		name     string
		endpoint string
		errno    error // nil: only check that Start fails
	}{
		{"port held by another listener", heldEP, syscall.EADDRINUSE},
		{"port held by another receiver", taken.Endpoint(), syscall.EADDRINUSE},
		{"unknown interface", "tcp://nosuchiface0:5010", nil},
		{"ipc directory missing", "ipc:///nonexistent-cmbs-dir/l1.sock", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReceiver(ReceiverConfig{Endpoint: tt.endpoint, Handler: echo, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Start()
			if err == nil {
				_ = r.Close()
				t.Fatalf("Start on %s succeeded, want bind error", tt.endpoint)
			}
			if !strings.Contains(err.Error(), tt.endpoint) || !strings.Contains(err.Error(), "bind") {
				t.Errorf("error %q does not name the endpoint and the failed bind", err)
			}
			if tt.errno != nil && !errors.Is(err, tt.errno) {
				t.Errorf("error %v is not %v", err, tt.errno)
			}
			if r.Running() {
				t.Error("Running after failed Start")
			}
		})
	}
}

func TestReceiverRestartSamePort(t *testing.T) {
	ep := freeEndpoint(t)
	c := newTestClient(t, ClientConfig{})
	ctx := testContext(t)
	r, err := NewReceiver(ReceiverConfig{Endpoint: ep, Handler: echo, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		if err := r.Start(); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		msg := []byte(fmt.Sprintf("round %d", round))
		reply, err := c.Request(ctx, ep, msg)
		if err != nil {
			t.Fatalf("round %d: Request: %v", round, err)
		}
		if want := "echo:" + string(msg); string(reply) != want {
			t.Fatalf("round %d: reply %q, want %q", round, reply, want)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		// The port must be free right away, for anyone.
		l, err := net.Listen("tcp", strings.TrimPrefix(ep, "tcp://"))
		if err != nil {
			t.Fatalf("round %d: port not released by Close: %v", round, err)
		}
		cmbstest.NoError(t, l.Close)
	}
}

func TestReceiverEphemeralPort(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Endpoint: "tcp://127.0.0.1:*", Handler: echo})
	ep := r.Endpoint()
	if err := ValidateConnectEndpoint(ep); err != nil {
		t.Fatalf("Endpoint() = %q is not dialable: %v", ep, err)
	}
	c := newTestClient(t, ClientConfig{})
	if reply, err := c.Request(testContext(t), ep, []byte("x")); err != nil || string(reply) != "echo:x" {
		t.Fatalf("Request = %q, %v", reply, err)
	}
}

func TestReceiverInprocSharedContext(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	// Registered first so it runs last, after receiver and client closed
	// their sockets.
	t.Cleanup(func() { cmbstest.NoError(t, zctx.Term) })
	r := startReceiver(t, ReceiverConfig{Endpoint: "inproc://cmbs-test-l1", Handler: echo, Context: zctx})
	c := newTestClient(t, ClientConfig{Context: zctx})
	if reply, err := c.Request(testContext(t), r.Endpoint(), []byte("in")); err != nil || string(reply) != "echo:in" {
		t.Fatalf("Request = %q, %v", reply, err)
	}
}

func TestReceiverBoundsConcurrentHandlers(t *testing.T) {
	const workers, requests = 2, 8
	var running, peak atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, requests)
	r := startReceiver(t, ReceiverConfig{Workers: workers, Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return msg, nil
	}})
	c := newTestClient(t, ClientConfig{Timeout: 15 * time.Second, Attempts: 1})
	ctx := testContext(t)

	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Request(ctx, r.Endpoint(), []byte{byte(i)})
			errs <- err
		}()
	}
	for range workers {
		waitFor(t, started, "handlers to start")
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Request: %v", err)
		}
	}
	if p := peak.Load(); p > workers {
		t.Fatalf("%d handlers ran at once, want at most %d", p, workers)
	}
}

func TestReceiverRefusesWhenQueueFull(t *testing.T) {
	// One worker and one queue slot: with the handler stuck, of three
	// requests exactly one runs, one waits and one is refused.
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	r := startReceiver(t, ReceiverConfig{Workers: 1, QueueSize: 1, Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return msg, nil
	}})
	c := newTestClient(t, ClientConfig{Timeout: 15 * time.Second, Attempts: 1})
	ctx := testContext(t)

	results := make(chan error, 3)
	go func() {
		_, err := c.Request(ctx, r.Endpoint(), []byte("first"))
		results <- err
	}()
	waitFor(t, started, "first handler")
	for _, m := range []string{"second", "third"} {
		go func() {
			_, err := c.Request(ctx, r.Endpoint(), []byte(m))
			results <- err
		}()
	}
	refused := waitFor(t, results, "a refusal")
	if !errors.Is(refused, ErrRefused) {
		t.Fatalf("first result while handler blocked = %v, want ErrRefused", refused)
	}
	if e := asError(t, refused); e.Attempts != 1 || !strings.Contains(e.Reason, "queue full") {
		t.Errorf("refusal = %+v, want one attempt and a queue-full reason", e)
	}
	close(release)
	for range 2 {
		if err := waitFor(t, results, "remaining replies"); err != nil {
			t.Errorf("queued request failed: %v", err)
		}
	}
}

func TestReceiverCloseWithRequestsInFlight(t *testing.T) {
	const inflight = 6
	var canceled atomic.Int32
	started := make(chan struct{}, inflight)
	ep := freeEndpoint(t)
	r := startReceiver(t, ReceiverConfig{Endpoint: ep, Workers: inflight, Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		canceled.Add(1)
		return nil, ctx.Err()
	}})
	// A long per-attempt timeout: the requests must end because the
	// connection dropped, not because they timed out.
	c := newTestClient(t, ClientConfig{Timeout: 15 * time.Second, Attempts: 1})
	ctx := testContext(t)
	errs := make(chan error, inflight)
	for i := range inflight {
		go func() {
			_, err := c.Request(ctx, ep, []byte{byte(i)})
			errs <- err
		}()
	}
	for range inflight {
		waitFor(t, started, "every handler to start")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := canceled.Load(); n != inflight {
		t.Errorf("%d handlers saw ctx canceled, want %d", n, inflight)
	}
	for range inflight {
		err := waitFor(t, errs, "requests to fail")
		if !errors.Is(err, ErrDisconnected) {
			t.Errorf("in-flight request error = %v, want ErrDisconnected", err)
		}
	}
}

func TestReceiverHandlerPanic(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Handler: func(context.Context, []byte) ([]byte, error) {
		panic("boom")
	}})
	c := newTestClient(t, ClientConfig{})
	_, err := c.Request(testContext(t), r.Endpoint(), []byte("x"))
	if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "handler panic: boom") {
		t.Fatalf("Request = %v, want remote error about the panic", err)
	}
	// The receiver survives the panic.
	r2, err2 := c.Request(testContext(t), r.Endpoint(), []byte("y"))
	if !errors.Is(err2, ErrRemote) {
		t.Fatalf("second Request = %q, %v, want a remote error again", r2, err2)
	}
}

// TestReceiverMalformedRequests drives the receiver with a raw DEALER that
// breaks the wire format, and checks it answers "BAD" where it can and keeps
// serving.
func TestReceiverMalformedRequests(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Handler: echo})
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, zctx.Term)
	d, err := newSocket(zctx, zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, d.Close)
	if err := d.Connect(r.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := d.SetRcvtimeo(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	goodID := bytes.Repeat([]byte{7}, requestIDLen)
	tests := []struct {
		name   string
		send   [][]byte
		status string
	}{
		{"short request id", [][]byte{{}, []byte("short"), []byte("x")}, statusBad},
		{"missing payload frame", [][]byte{{}, goodID}, statusBad},
		{"extra frame", [][]byte{{}, goodID, []byte("a"), []byte("b")}, statusBad},
		{"well formed", [][]byte{{}, goodID, []byte("ok")}, statusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.SendMessage(tt.send); err != nil {
				t.Fatal(err)
			}
			frames, err := d.RecvMessageBytes(0)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			if len(frames) != 4 || string(frames[2]) != tt.status {
				t.Fatalf("reply frames %q, want status %s", frames, tt.status)
			}
		})
	}
}
