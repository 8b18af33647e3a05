package layers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// collect receives n replies from s, failing the test at a deadline.
func collect(t *testing.T, s *Stream, n int) map[uint64]*StreamReply {
	t.Helper()
	got := map[uint64]*StreamReply{}
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replies before the deadline", len(got), n)
		}
		rep, err := s.Recv(100 * time.Millisecond)
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if rep != nil {
			if got[rep.Seq] != nil {
				t.Fatalf("two replies for request %d", rep.Seq)
			}
			got[rep.Seq] = rep
		}
	}
	return got
}

// TestStreamPipelines sends many requests before reading any reply; each
// reply answers its own request.
func TestStreamPipelines(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Handler: echo})
	c := newTestClient(t, ClientConfig{})
	s, err := c.OpenStream(r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 250 // within the receiver's capacity; more are refused as BUSY
	sent := map[uint64]string{}
	for i := range n {
		payload := strconv.Itoa(i)
		seq, err := s.Send([]byte(payload))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		sent[seq] = payload
	}
	for seq, rep := range collect(t, s, n) {
		if rep.Err != nil || string(rep.Body) != "echo:"+sent[seq] {
			t.Fatalf("reply to %d = %q, %v; want echo:%s", seq, rep.Body, rep.Err, sent[seq])
		}
	}
	if rep, err := s.Recv(50 * time.Millisecond); rep != nil || err != nil {
		t.Fatalf("Recv with nothing outstanding = %+v, %v", rep, err)
	}
}

// TestStreamPeerOrder: with PeerOrder, a stream's requests run one at a
// time, in the order sent, while another stream runs beside it.
func TestStreamPeerOrder(t *testing.T) {
	var mu sync.Mutex
	order := map[string][]int{}
	running := map[string]int{}
	handler := func(_ context.Context, msg []byte) ([]byte, error) {
		var peer string
		var i int
		if _, err := fmt.Sscanf(string(msg), "%s %d", &peer, &i); err != nil {
			return nil, err
		}
		mu.Lock()
		running[peer]++
		overlap := running[peer] > 1
		order[peer] = append(order[peer], i)
		mu.Unlock()
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		mu.Lock()
		running[peer]--
		mu.Unlock()
		if overlap {
			return nil, errors.New("two requests of one peer ran at once")
		}
		return msg, nil
	}
	r := startReceiver(t, ReceiverConfig{Handler: handler, PeerOrder: true, Workers: 4})
	c := newTestClient(t, ClientConfig{})
	// 3 peers of 80 requests stay within the receiver's capacity (4
	// workers + 256 queued); beyond it, requests are refused as BUSY.
	const n = 80
	var wg sync.WaitGroup
	for _, peer := range []string{"a", "b", "c"} {
		s, err := c.OpenStream(r.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		for i := range n {
			if _, err := s.Send([]byte(fmt.Sprintf("%s %d", peer, i))); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, rep := range collect(t, s, n) {
				if rep.Err != nil {
					t.Errorf("peer %s: %v", peer, rep.Err)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for peer, got := range order {
		for i, v := range got {
			if v != i {
				t.Fatalf("peer %s: request %d handled in place %d", peer, v, i)
			}
		}
	}
}

// TestStreamReportsFailures: a handler's error comes back on its request;
// a receiver that goes away ends the stream with KindDisconnected; one that
// never was explains itself as unreachable.
func TestStreamReportsFailures(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Handler: func(_ context.Context, msg []byte) ([]byte, error) {
		if string(msg) == "fail" {
			return nil, errors.New("no thanks")
		}
		return msg, nil
	}})
	c := newTestClient(t, ClientConfig{})
	s, err := c.OpenStream(r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, err := s.Send([]byte("fail"))
	if err != nil {
		t.Fatal(err)
	}
	rep := collect(t, s, 1)[seq]
	if rep.Err == nil || rep.Err.Kind != KindRemote || rep.Err.Reason != "no thanks" {
		t.Fatalf("reply to a failing request = %+v", rep)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Recv(100 * time.Millisecond)
		if err != nil {
			if e := asError(t, err); e.Kind != KindDisconnected {
				t.Fatalf("Recv after the receiver closed: %v, want KindDisconnected", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Recv never reported the dropped connection")
		}
	}

	nobody, err := c.OpenStream(freeEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nobody.Close()
	if _, err := nobody.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if rep, err := nobody.Recv(300 * time.Millisecond); rep != nil || err != nil {
		t.Fatalf("Recv from nobody = %+v, %v; want nothing", rep, err)
	}
	if e := nobody.Stalled(300 * time.Millisecond); e.Kind != KindUnreachable {
		t.Fatalf("Stalled = %v, want KindUnreachable", e)
	}
}

// TestStreamClientClose: closing the Client ends its streams' Recv with
// KindClosed, and waits for them to be closed.
func TestStreamClientClose(t *testing.T) {
	r := startReceiver(t, ReceiverConfig{Handler: echo})
	c, err := NewClient(ClientConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStream(r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	for {
		_, err := s.Recv(50 * time.Millisecond)
		if err != nil {
			if e := asError(t, err); e.Kind != KindClosed {
				t.Fatalf("Recv once the client closes: %v", err)
			}
			break
		}
	}
	s.Close()
	if err := waitFor(t, closed, "Client.Close"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenStream(r.Endpoint()); asError(t, err).Kind != KindClosed {
		t.Fatalf("OpenStream on a closed client: %v", err)
	}
}
