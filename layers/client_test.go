package layers

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/config/cmbstest"
)

func TestRequestRoundTrip(t *testing.T) {
	large := make([]byte, 1<<20)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"small", []byte(`{"kind":"l1.discover","member":"m1"}`)},
		{"binary", []byte{0, 1, 2, 0, 255}},
		{"1MiB", large},
	}
	r := startReceiver(t, ReceiverConfig{Handler: echo})
	c := newTestClient(t, ClientConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := c.Request(testContext(t), r.Endpoint(), tt.payload)
			if err != nil {
				t.Fatalf("Request: %v", err)
			}
			if want := append([]byte("echo:"), tt.payload...); !bytes.Equal(reply, want) {
				t.Fatalf("reply of %d bytes differs from the %d expected", len(reply), len(want))
			}
		})
	}
}

func TestRequestHandlerError(t *testing.T) {
	var calls atomic.Int32
	r := startReceiver(t, ReceiverConfig{Handler: func(_ context.Context, msg []byte) ([]byte, error) {
		calls.Add(1)
		return nil, fmt.Errorf("member %s unknown", msg)
	}})
	c := newTestClient(t, ClientConfig{})
	_, err := c.Request(testContext(t), r.Endpoint(), []byte("m7"))
	if !errors.Is(err, ErrRemote) {
		t.Fatalf("Request error = %v, want ErrRemote", err)
	}
	e := asError(t, err)
	if e.Reason != "member m7 unknown" || e.Endpoint != r.Endpoint() || e.Attempts != 1 {
		t.Fatalf("error = %+v, want the handler's message, endpoint and a single attempt", e)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1: remote errors are not retried", n)
	}
}

func TestRequestDeadEndpoint(t *testing.T) {
	c := newTestClient(t, ClientConfig{Timeout: 200 * time.Millisecond, Attempts: 2})
	ep := freeEndpoint(t)
	// testContext's deadline is far beyond Attempts*Timeout: if the request
	// hung, it would end as KindCanceled instead of KindUnreachable.
	_, err := c.Request(testContext(t), ep, []byte("hello?"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Request to dead endpoint = %v, want ErrUnreachable", err)
	}
	e := asError(t, err)
	if e.Attempts != 2 || !strings.Contains(e.Reason, "no ZeroMQ connection") {
		t.Fatalf("error = %+v, want 2 attempts and an explanation", e)
	}
}

func TestRequestNonZeroMQPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = l.Close() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			_ = conn.Close()
		}
	}()
	c := newTestClient(t, ClientConfig{Timeout: 300 * time.Millisecond, Attempts: 1})
	_, err = c.Request(testContext(t), "tcp://"+l.Addr().String(), []byte("x"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Request to an HTTP-ish peer = %v, want ErrUnreachable", err)
	}
}

func TestRequestSlowHandlerTimesOut(t *testing.T) {
	var calls atomic.Int32
	r := startReceiver(t, ReceiverConfig{Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		calls.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	c := newTestClient(t, ClientConfig{Timeout: 200 * time.Millisecond, Attempts: 2})
	_, err := c.Request(testContext(t), r.Endpoint(), []byte("x"))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Request = %v, want ErrTimeout", err)
	}
	if e := asError(t, err); e.Attempts != 2 || !strings.Contains(e.Reason, "connected, but no reply") {
		t.Fatalf("error = %+v, want 2 attempts, connected but no reply", e)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2 (one per attempt)", n)
	}
}

// TestRequestRetryGetsFreshReply loses the first attempt's reply (the handler
// only answers once the retry has arrived, by which time the first socket is
// gone) and checks the retry's reply is the one returned.
func TestRequestRetryGetsFreshReply(t *testing.T) {
	var calls atomic.Int32
	retried := make(chan struct{})
	var once sync.Once
	r := startReceiver(t, ReceiverConfig{Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		if calls.Add(1) == 1 {
			select {
			case <-retried:
			case <-ctx.Done():
			}
			return []byte("late"), nil
		}
		once.Do(func() { close(retried) })
		return []byte("fresh"), nil
	}})
	c := newTestClient(t, ClientConfig{Timeout: 300 * time.Millisecond, Attempts: 3})
	reply, err := c.Request(testContext(t), r.Endpoint(), []byte("x"))
	if err != nil || string(reply) != "fresh" {
		t.Fatalf("Request = %q, %v, want the retry's reply", reply, err)
	}
}

// rawRouter serves one request on a bare ROUTER socket with the replies built
// by respond, for exercising the client against a misbehaving receiver. The
// returned stop function shuts the server down; call it once the client has
// its answer, since closing earlier (LINGER 0) could discard unsent replies.
func rawRouter(t *testing.T, respond func(envelope [][]byte, id []byte) [][][]byte) (endpoint string, stop func()) {
	t.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	router, err := newSocket(zctx, zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	ep := freeEndpoint(t)
	if err := router.Bind(ep); err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = zctx.Term() }()
		defer func() { _ = router.Close() }()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		answered := false
		for {
			select {
			case <-quit:
				return
			default:
			}
			polled, err := poller.Poll(20 * time.Millisecond)
			if err != nil {
				t.Errorf("raw router: poll: %v", err)
				return
			}
			if len(polled) == 0 {
				continue
			}
			frames, err := router.RecvMessageBytes(0)
			if err != nil {
				t.Errorf("raw router: %v", err)
				return
			}
			envelope, body, ok := splitEnvelope(frames)
			if answered || !ok || len(body) != 2 {
				t.Errorf("raw router: unexpected request %q", frames)
				continue
			}
			answered = true
			for _, msg := range respond(envelope, body[0]) {
				if _, err := router.SendMessage(msg); err != nil {
					t.Errorf("raw router: send: %v", err)
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		waitFor(t, done, "raw router")
	}
	t.Cleanup(stop)
	return ep, stop
}

func TestRequestDiscardsStaleReplies(t *testing.T) {
	ep, wait := rawRouter(t, func(env [][]byte, id []byte) [][][]byte {
		stale := bytes.Clone(id)
		stale[len(stale)-1]++
		reply := func(id []byte, body string) [][]byte {
			return append(append([][]byte{}, env...), []byte{}, id, []byte(statusOK), []byte(body))
		}
		return [][][]byte{reply(stale, "stale"), reply(id, "current")}
	})
	c := newTestClient(t, ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	reply, err := c.Request(testContext(t), ep, []byte("x"))
	if err != nil || string(reply) != "current" {
		t.Fatalf("Request = %q, %v, want the reply carrying our request id", reply, err)
	}
	cmbstest.NoError(t, c.Close)
	wait()
}

func TestRequestProtocolErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames func(id []byte) [][]byte
		reason string
	}{
		{"too few frames", func(id []byte) [][]byte { return [][]byte{{}, id} }, "2 frames"},
		{"no delimiter", func(id []byte) [][]byte { return [][]byte{[]byte("x"), id, []byte("OK"), {}} }, "delimiter"},
		{"unknown status", func(id []byte) [][]byte { return [][]byte{{}, id, []byte("MAYBE"), {}} }, "MAYBE"},
		{"rejected as malformed", func(id []byte) [][]byte { return [][]byte{{}, id, []byte(statusBad), []byte("nope")} }, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, wait := rawRouter(t, func(env [][]byte, id []byte) [][][]byte {
				return [][][]byte{append(append([][]byte{}, env...), tt.frames(id)...)}
			})
			c := newTestClient(t, ClientConfig{Timeout: 5 * time.Second, Attempts: 3})
			_, err := c.Request(testContext(t), ep, []byte("x"))
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Request = %v, want ErrProtocol mentioning %q", err, tt.reason)
			}
			if e := asError(t, err); e.Attempts != 1 {
				t.Fatalf("protocol error after %d attempts, want 1 (not retried)", e.Attempts)
			}
			cmbstest.NoError(t, c.Close)
			wait()
		})
	}
}

func TestRequestInvalidEndpoint(t *testing.T) {
	c := newTestClient(t, ClientConfig{})
	for _, ep := range []string{"", "tcp://*:5010", "tcp://127.0.0.1:*", "http://127.0.0.1:5010"} {
		_, err := c.Request(testContext(t), ep, nil)
		if !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("Request(%q) = %v, want ErrInvalidEndpoint", ep, err)
		}
	}
}

func TestRequestConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 64, 25
	r := startReceiver(t, ReceiverConfig{Handler: echo})
	c := newTestClient(t, ClientConfig{Timeout: 5 * time.Second})
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				msg := fmt.Sprintf("g%d-i%d", g, i)
				reply, err := c.Request(ctx, r.Endpoint(), []byte(msg))
				if err != nil {
					errs <- fmt.Errorf("%s: %w", msg, err)
					return
				}
				if string(reply) != "echo:"+msg {
					errs <- fmt.Errorf("%s: got reply %q", msg, reply)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRequestContextCanceled(t *testing.T) {
	started := make(chan struct{}, 1)
	r := startReceiver(t, ReceiverConfig{Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	c := newTestClient(t, ClientConfig{Timeout: 15 * time.Second})
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, r.Endpoint(), []byte("x"))
		errc <- err
	}()
	waitFor(t, started, "handler")
	cancel()
	err := waitFor(t, errc, "canceled request")
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Request = %v, want ErrCanceled wrapping context.Canceled", err)
	}
	if e := asError(t, err); !strings.Contains(e.Reason, "connected") {
		t.Fatalf("error %+v does not describe the connection state", e)
	}
}

func TestClientCloseAbortsInFlight(t *testing.T) {
	const inflight = 5
	started := make(chan struct{}, inflight)
	r := startReceiver(t, ReceiverConfig{Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	c := newTestClient(t, ClientConfig{Timeout: 15 * time.Second})
	ctx := testContext(t)
	errs := make(chan error, inflight)
	for range inflight {
		go func() {
			_, err := c.Request(ctx, r.Endpoint(), []byte("x"))
			errs <- err
		}()
	}
	for range inflight {
		waitFor(t, started, "handlers")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range inflight {
		if err := waitFor(t, errs, "aborted requests"); !errors.Is(err, ErrClosed) {
			t.Errorf("in-flight request = %v, want ErrClosed", err)
		}
	}
	if _, err := c.Request(ctx, r.Endpoint(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// TestRequestAfterPeerRestart checks that a pooled connection to a receiver
// that restarted is not trusted blindly: the next request still succeeds.
func TestRequestAfterPeerRestart(t *testing.T) {
	ep := freeEndpoint(t)
	c := newTestClient(t, ClientConfig{Timeout: 2 * time.Second})
	ctx := testContext(t)
	for round := range 3 {
		r, err := NewReceiver(ReceiverConfig{Endpoint: ep, Logger: testLogger(t),
			Handler: func(context.Context, []byte) ([]byte, error) { return []byte(fmt.Sprint(round)), nil }})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		for range 3 {
			reply, err := c.Request(ctx, ep, nil)
			if err != nil || string(reply) != fmt.Sprint(round) {
				t.Fatalf("round %d: Request = %q, %v", round, reply, err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
		is   error
	}{
		{&Error{Endpoint: "tcp://a:1", Kind: KindTimeout, Attempts: 3, Reason: "connected, but no reply within 1s"},
			"layers: request to tcp://a:1: timeout after 3 attempts: connected, but no reply within 1s", ErrTimeout},
		{&Error{Endpoint: "tcp://a:1", Kind: KindRemote, Attempts: 1, Reason: "bad member"},
			"layers: request to tcp://a:1: remote error: bad member", ErrRemote},
		{&Error{Endpoint: "tcp://a:1", Kind: KindCanceled, Err: context.DeadlineExceeded},
			"layers: request to tcp://a:1: canceled", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.is) {
			t.Errorf("%v is not %v", tt.err, tt.is)
		}
		if errors.Is(tt.err, ErrUnreachable) {
			t.Errorf("%v unexpectedly matches ErrUnreachable", tt.err)
		}
	}
}

// TestRequestBoundsReplySize: with MaxMessageSize set, a receiver cannot make
// the client read a reply of any size it likes.
func TestRequestBoundsReplySize(t *testing.T) {
	ep, stop := rawRouter(t, func(env [][]byte, id []byte) [][][]byte {
		return [][][]byte{append(append([][]byte{}, env...), []byte{}, id, []byte(statusOK), make([]byte, 64<<10))}
	})
	c := newTestClient(t, ClientConfig{Timeout: 5 * time.Second, Attempts: 1, MaxMessageSize: 1 << 10})
	reply, err := c.Request(testContext(t), ep, []byte("x"))
	if err == nil {
		t.Fatalf("Request read a %d-byte reply beyond MaxMessageSize", len(reply))
	}
	cmbstest.NoError(t, c.Close)
	stop()
}
