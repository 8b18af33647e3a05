package layers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBroadcast(t *testing.T) {
	var endpoints []string
	for i := range 3 {
		r := startReceiver(t, ReceiverConfig{Handler: func(_ context.Context, msg []byte) ([]byte, error) {
			return []byte(fmt.Sprintf("ack from %d: %s", i, msg)), nil
		}})
		endpoints = append(endpoints, r.Endpoint())
	}
	failing := startReceiver(t, ReceiverConfig{Handler: func(context.Context, []byte) ([]byte, error) {
		return nil, errors.New("store unavailable")
	}})
	dead := freeEndpoint(t)
	// The dead and failing members sit between live ones: their failures
	// must not affect anyone else's delivery.
	targets := []string{endpoints[0], dead, endpoints[1], failing.Endpoint(), endpoints[2]}

	c := newTestClient(t, ClientConfig{Timeout: 500 * time.Millisecond, Attempts: 2, BroadcastConcurrency: 2})
	results := c.Broadcast(testContext(t), targets, []byte("l2-update"))
	if len(results) != len(targets) {
		t.Fatalf("%d results for %d endpoints", len(results), len(targets))
	}
	for i, res := range results {
		if res.Endpoint != targets[i] {
			t.Errorf("result %d is for %s, want %s (input order)", i, res.Endpoint, targets[i])
		}
	}
	for i, idx := range []int{0, 2, 4} {
		res := results[idx]
		if want := fmt.Sprintf("ack from %d: l2-update", i); res.Err != nil || string(res.Reply) != want {
			t.Errorf("live member %s: %q, %v, want %q", res.Endpoint, res.Reply, res.Err, want)
		}
	}
	if err := results[1].Err; !errors.Is(err, ErrUnreachable) {
		t.Errorf("dead member: %v, want ErrUnreachable", err)
	} else if e := asError(t, err); e.Attempts != 2 || e.Reason == "" {
		t.Errorf("dead member error %+v lacks attempts or reason", e)
	}
	if err := results[3].Err; !errors.Is(err, ErrRemote) || asError(t, err).Reason != "store unavailable" {
		t.Errorf("failing member: %v, want remote error %q", err, "store unavailable")
	}
}

func TestBroadcastEmpty(t *testing.T) {
	c := newTestClient(t, ClientConfig{})
	if res := c.Broadcast(testContext(t), nil, []byte("x")); len(res) != 0 {
		t.Fatalf("Broadcast to nobody = %v", res)
	}
}
