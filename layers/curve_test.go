package layers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/config/cmbstest"
)

func newKeys(t testing.TB) KeyPair {
	t.Helper()
	k, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet is a set of admitted keys that tests change while receivers run.
type keySet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func newKeySet(keys ...string) *keySet {
	s := &keySet{keys: map[string]bool{}}
	for _, k := range keys {
		s.keys[k] = true
	}
	return s
}

func (s *keySet) set(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[string]bool{}
	for _, k := range keys {
		s.keys[k] = true
	}
}

func (s *keySet) admit(p Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keys[p.Key] {
		return fmt.Errorf("key %s is not trusted", ShortKey(p.Key))
	}
	return nil
}

// refusals collects what a receiver's OnRefused hears.
type refusals struct {
	mu   sync.Mutex
	list []Refusal
}

func (r *refusals) add(f Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, f)
}

func (r *refusals) count(c RefusalCause) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.list {
		if f.Cause == c {
			n++
		}
	}
	return n
}

func (r *refusals) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range r.list {
		if f.Peer.Key != "" {
			out = append(out, f.Peer.Key)
		}
	}
	return out
}

// curveReceiver starts a CURVE receiver admitting trusted's keys, whose
// handler records the peers it saw.
func curveReceiver(t testing.TB, keys KeyPair, trusted *keySet, seen *refusals, handled *atomic.Int32, peers chan<- Peer) *Receiver {
	t.Helper()
	return startReceiver(t, ReceiverConfig{
		Curve:     &CurveServer{Keys: keys, Admit: trusted.admit},
		OnRefused: seen.add,
		Handler: func(ctx context.Context, msg []byte) ([]byte, error) {
			handled.Add(1)
			p, ok := PeerFrom(ctx)
			if !ok {
				return nil, errors.New("no peer in the handler's context")
			}
			if peers != nil {
				select {
				case peers <- p:
				default:
				}
			}
			return append([]byte(p.Key+":"), msg...), nil
		},
	})
}

// TestCurveRequest: a trusted CURVE client is heard, and the handler knows
// which key sent each request.
func TestCurveRequest(t *testing.T) {
	server, client := newKeys(t), newKeys(t)
	var seen refusals
	var handled atomic.Int32
	peers := make(chan Peer, 1)
	r := curveReceiver(t, server, newKeySet(client.Public), &seen, &handled, peers)
	c := newTestClient(t, ClientConfig{Curve: &client})
	reply, err := c.RequestTo(testContext(t), Target{Endpoint: r.Endpoint(), Key: server.Public}, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if want := client.Public + ":hi"; string(reply) != want {
		t.Errorf("reply %q, want %q", reply, want)
	}
	if p := waitFor(t, peers, "the handler's peer"); p.Key != client.Public || p.Address != "127.0.0.1" {
		t.Errorf("peer %+v, want key %s from 127.0.0.1", p, client.Public)
	}
	// The stream speaks CURVE too.
	s, err := c.OpenStreamTo(Target{Endpoint: r.Endpoint(), Key: server.Public})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Send([]byte("streamed")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Recv(10 * time.Second)
	if err != nil || rep == nil || rep.Err != nil || string(rep.Body) != client.Public+":streamed" {
		t.Fatalf("stream reply %+v, %v", rep, err)
	}
	if !s.Connected() {
		t.Error("stream not connected after a reply")
	}
	if n := len(seen.keys()); n != 0 {
		t.Errorf("%d refusals of a trusted client", n)
	}
}

// TestCurveRefusals: an untrusted key, a client without CURVE and a client
// that does not know the receiver's key are all turned away before their
// request reaches the handler; each is reported, the untrusted key with
// the key. The clients see why: KindAuth, at once for a refusal.
func TestCurveRefusals(t *testing.T) {
	server, trusted, stranger := newKeys(t), newKeys(t), newKeys(t)
	var seen refusals
	var handled atomic.Int32
	r := curveReceiver(t, server, newKeySet(trusted.Public), &seen, &handled, nil)
	target := Target{Endpoint: r.Endpoint(), Key: server.Public}

	t.Run("untrusted key", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{Curve: &stranger, Timeout: 5 * time.Second})
		start := time.Now()
		_, err := c.RequestTo(testContext(t), target, []byte("describe"))
		e := asError(t, err)
		if e.Kind != KindAuth || e.Attempts != 1 || !strings.Contains(e.Reason, "did not admit") {
			t.Fatalf("error %v, want a single KindAuth attempt", err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("refusal took %v: it should not wait for the timeout", took)
		}
		cmbstest.Eventually(t, "the refusal with the key", func() bool {
			keys := seen.keys()
			return len(keys) > 0 && keys[0] == stranger.Public
		})
	})
	t.Run("no CURVE", func(t *testing.T) {
		before := seen.count(RefusedHandshake)
		c := newTestClient(t, ClientConfig{Timeout: 5 * time.Second})
		_, err := c.Request(testContext(t), r.Endpoint(), []byte("deliver"))
		if e := asError(t, err); e.Kind != KindAuth || !strings.Contains(e.Reason, "security differs") {
			t.Fatalf("error %v, want KindAuth for the mismatch", err)
		}
		cmbstest.Eventually(t, "the failed handshake", func() bool { return seen.count(RefusedHandshake) > before })
	})
	t.Run("wrong server key", func(t *testing.T) {
		before := seen.count(RefusedHandshake)
		other := newKeys(t)
		c := newTestClient(t, ClientConfig{Curve: &trusted, Timeout: 300 * time.Millisecond, Attempts: 1})
		_, err := c.RequestTo(testContext(t), Target{Endpoint: r.Endpoint(), Key: other.Public}, []byte("sync"))
		if e := asError(t, err); e.Kind != KindUnreachable || !strings.Contains(e.Reason, "may not hold the CURVE key") {
			t.Fatalf("error %v, want unreachable with a hint at the key", err)
		}
		cmbstest.Eventually(t, "the failed handshake", func() bool { return seen.count(RefusedHandshake) > before })
	})
	t.Run("no server key", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{Curve: &trusted})
		_, err := c.Request(testContext(t), r.Endpoint(), []byte("x"))
		if e := asError(t, err); e.Kind != KindAuth || e.Attempts != 0 {
			t.Fatalf("error %v, want KindAuth before any attempt", err)
		}
		if _, err := c.OpenStreamTo(Target{Endpoint: r.Endpoint(), Key: "not a key"}); !errors.Is(err, ErrAuth) {
			t.Fatalf("OpenStreamTo with a bad key = %v, want ErrAuth", err)
		}
	})
	t.Run("stream of an untrusted key", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{Curve: &stranger})
		s, err := c.OpenStreamTo(target)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Send([]byte("deliver")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			rep, err := s.Recv(100 * time.Millisecond)
			if err != nil {
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("Recv = %v, want ErrAuth", err)
				}
				break
			}
			if rep != nil {
				t.Fatalf("an untrusted stream got a reply: %+v", rep)
			}
			if time.Now().After(deadline) {
				t.Fatal("the refusal never surfaced")
			}
		}
		if e := s.Stalled(time.Second); e.Kind != KindAuth {
			t.Errorf("Stalled = %v, want KindAuth", e)
		}
	})
	if n := handled.Load(); n != 0 {
		t.Errorf("the handler ran %d times for refused peers", n)
	}
	// The trusted client is still served.
	c := newTestClient(t, ClientConfig{Curve: &trusted})
	if _, err := c.RequestTo(testContext(t), target, []byte("ok")); err != nil {
		t.Fatal(err)
	}
}

// TestCurveAdmitChanges: Admit is asked at every handshake, so a key
// trusted later is admitted without restarting the receiver, and a key no
// longer trusted is refused on its next connection.
func TestCurveAdmitChanges(t *testing.T) {
	server, old, fresh := newKeys(t), newKeys(t), newKeys(t)
	var seen refusals
	var handled atomic.Int32
	trusted := newKeySet(old.Public)
	r := curveReceiver(t, server, trusted, &seen, &handled, nil)
	target := Target{Endpoint: r.Endpoint(), Key: server.Public}
	ask := func(k KeyPair) error {
		c := newTestClient(t, ClientConfig{Curve: &k, Attempts: 1})
		_, err := c.RequestTo(testContext(t), target, []byte("x"))
		cmbstest.NoError(t, c.Close)
		return err
	}
	if err := ask(old); err != nil {
		t.Fatal(err)
	}
	if err := ask(fresh); !errors.Is(err, ErrAuth) {
		t.Fatalf("fresh key before it is trusted: %v", err)
	}
	trusted.set(fresh.Public)
	if err := ask(fresh); err != nil {
		t.Fatalf("fresh key once trusted: %v", err)
	}
	if err := ask(old); !errors.Is(err, ErrAuth) {
		t.Fatalf("old key once removed: %v", err)
	}
}

// TestFindKey: a client that knows only a receiver's socket finds which of
// its keys the receiver holds.
func TestFindKey(t *testing.T) {
	server, client := newKeys(t), newKeys(t)
	var seen refusals
	var handled atomic.Int32
	r := curveReceiver(t, server, newKeySet(client.Public), &seen, &handled, nil)
	others := []string{newKeys(t).Public, newKeys(t).Public, newKeys(t).Public}
	c := newTestClient(t, ClientConfig{Curve: &client, Timeout: 2 * time.Second})
	ctx := testContext(t)

	key, err := c.FindKey(ctx, r.Endpoint(), append(append([]string{}, others...), server.Public, "junk"))
	if err != nil || key != server.Public {
		t.Fatalf("FindKey = %q, %v; want the server's key", key, err)
	}
	if _, err := c.FindKey(ctx, r.Endpoint(), others); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "none of the 3") {
		t.Fatalf("FindKey among wrong keys = %v, want ErrAuth", err)
	}
	stranger := newKeys(t)
	sc := newTestClient(t, ClientConfig{Curve: &stranger, Timeout: 2 * time.Second})
	key, err = sc.FindKey(ctx, r.Endpoint(), append(others, server.Public))
	if key != server.Public || !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "did not admit") {
		t.Fatalf("FindKey of a refused client = %q, %v; want the key and ErrAuth", key, err)
	}
	quick := newTestClient(t, ClientConfig{Curve: &client, Timeout: 200 * time.Millisecond})
	if _, err := quick.FindKey(ctx, freeEndpoint(t), others); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("FindKey with nothing listening = %v, want ErrUnreachable", err)
	}
	plain := newTestClient(t, ClientConfig{})
	if _, err := plain.FindKey(ctx, r.Endpoint(), others); err == nil {
		t.Fatal("a plain client found a key")
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("probes ran the handler %d times", n)
	}
}

// TestCurveReceiverValidates: a CURVE receiver needs a key pair that holds
// together and a context of its own.
func TestCurveReceiverValidates(t *testing.T) {
	good, other := newKeys(t), newKeys(t)
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, zctx.Term)
	tests := []struct {
		name string
		cfg  ReceiverConfig
		want string
	}{
		{"mismatched keys", ReceiverConfig{Curve: &CurveServer{Keys: KeyPair{Public: other.Public, Secret: good.Secret}}}, "not the secret key's"},
		{"malformed key", ReceiverConfig{Curve: &CurveServer{Keys: KeyPair{Public: "x", Secret: good.Secret}}}, "40 Z85 characters"},
		{"shared context", ReceiverConfig{Curve: &CurveServer{Keys: good}, Context: zctx}, "own ZeroMQ context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Endpoint, tt.cfg.Handler = "tcp://127.0.0.1:*", echo
			if _, err := NewReceiver(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewReceiver = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewClient(ClientConfig{Curve: &KeyPair{Public: good.Public, Secret: other.Secret}}); err == nil {
		t.Error("NewClient took a mismatched key pair")
	}
}

// TestCurveRestart: a CURVE receiver's ZAP handler goes with it, so the
// receiver starts again, and two run side by side in one process.
func TestCurveRestart(t *testing.T) {
	server, client := newKeys(t), newKeys(t)
	var seen refusals
	var handled atomic.Int32
	trusted := newKeySet(client.Public)
	r := curveReceiver(t, server, trusted, &seen, &handled, nil)
	r2 := curveReceiver(t, server, trusted, &seen, &handled, nil)
	c := newTestClient(t, ClientConfig{Curve: &client})
	for range 2 {
		for _, rr := range []*Receiver{r, r2} {
			if _, err := c.RequestTo(testContext(t), Target{Endpoint: rr.Endpoint(), Key: server.Public}, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckKey(t *testing.T) {
	k := newKeys(t)
	tests := []struct {
		key  string
		want string
	}{
		{k.Public, ""},
		{k.Secret, ""},
		{"", "40 Z85 characters, got 0"},
		{k.Public + "x", "got 41"},
		{strings.Repeat("~", 40), "not Z85"},
		{strings.Repeat("#", 40), "not a Z85 group"},
	}
	for _, tt := range tests {
		err := CheckKey(tt.key)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckKey(%q) = %v, want %q", tt.key, err, tt.want)
		}
	}
	derived, err := KeyPairFromSecret(k.Secret)
	if err != nil || derived != k {
		t.Errorf("KeyPairFromSecret = %+v, %v; want %+v", derived, err, k)
	}
	if got := ShortKey(k.Public); len([]rune(got)) != 13 || !strings.HasPrefix(k.Public, got[:8]) {
		t.Errorf("ShortKey = %q", got)
	}
}

// TestMessageSizeLimit: the client refuses to send a payload over its
// limit, saying why; a receiver with a lower limit drops the sender's
// connection without handing the payload to its handler, and keeps
// serving.
func TestMessageSizeLimit(t *testing.T) {
	var handled atomic.Int32
	r := startReceiver(t, ReceiverConfig{MaxMessageSize: 1 << 10, Handler: func(_ context.Context, msg []byte) ([]byte, error) {
		handled.Add(1)
		return []byte("ok"), nil
	}})
	c := newTestClient(t, ClientConfig{MaxMessageSize: 4 << 10, Timeout: 300 * time.Millisecond, Attempts: 1})
	ctx := testContext(t)
	_, err := c.Request(ctx, r.Endpoint(), make([]byte, 5<<10))
	if e := asError(t, err); e.Kind != KindTooLarge || e.Attempts != 0 || !strings.Contains(e.Reason, "5120 bytes, over the 4096-byte limit") {
		t.Fatalf("error %v, want KindTooLarge before sending", err)
	}
	s, err := c.OpenStream(r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Send(make([]byte, 5<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Stream.Send = %v, want ErrTooLarge", err)
	}
	// Within the client's limit, over the receiver's: never handled.
	if _, err := c.Request(ctx, r.Endpoint(), make([]byte, 2<<10)); err == nil {
		t.Fatal("a payload over the receiver's limit was answered")
	}
	if reply, err := c.Request(ctx, r.Endpoint(), bytes.Repeat([]byte("a"), 1000)); err != nil || string(reply) != "ok" {
		t.Fatalf("a payload within the limit: %q, %v", reply, err)
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("handler ran %d times, want once", n)
	}
}
