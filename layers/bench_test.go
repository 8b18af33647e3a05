package layers

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/config/cmbstest"
)

// The benchmarks come in pairs: a bare pebbe/zmq4 ROUTER/DEALER exchange
// using the same frames (delimiter, 16-byte id, payload / status, body) next
// to the same exchange through Receiver and Client. The ratio is the cost of
// this package: the worker pool hand-off over inproc, the socket pool, the
// monitor socket polled with every request, and the error bookkeeping.

var benchSizes = []int{64, 1 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

// bareEchoServer runs a ROUTER that answers each request inline, with no
// worker hand-off, until the benchmark ends.
func bareEchoServer(b *testing.B) string {
	b.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	router, err := newSocket(zctx, zmq.ROUTER)
	if err != nil {
		b.Fatal(err)
	}
	ep := freeEndpoint(b)
	if err := router.Bind(ep); err != nil {
		b.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = zctx.Term() }()
		defer func() { _ = router.Close() }()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		ok := []byte(statusOK)
		for {
			select {
			case <-quit:
				return
			default:
			}
			polled, err := poller.Poll(50 * time.Millisecond)
			if err != nil {
				b.Errorf("bare server poll: %v", err)
				return
			}
			if len(polled) == 0 {
				continue
			}
			for {
				frames, err := router.RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				// identity, "", id, payload -> identity, "", id, OK, payload
				if _, err := router.SendMessage(frames[0], frames[1], frames[2], ok, frames[3]); err != nil {
					b.Errorf("bare server send: %v", err)
				}
			}
		}
	}()
	b.Cleanup(func() {
		close(quit)
		<-done
	})
	return ep
}

// bareDealer is one benchmark goroutine's own DEALER.
type bareDealer struct {
	zctx *zmq.Context
	sock *zmq.Socket
	seq  uint64
	id   []byte
}

func newBareDealer(b *testing.B, zctx *zmq.Context, ep string) *bareDealer {
	sock, err := newSocket(zctx, zmq.DEALER)
	if err != nil {
		b.Fatal(err)
	}
	if err := sock.Connect(ep); err != nil {
		b.Fatal(err)
	}
	return &bareDealer{zctx: zctx, sock: sock, id: make([]byte, requestIDLen)}
}

func (d *bareDealer) roundTrip(payload []byte) ([]byte, error) {
	d.seq++
	binary.BigEndian.PutUint64(d.id[8:], d.seq)
	if _, err := d.sock.SendMessage([]byte{}, d.id, payload); err != nil {
		return nil, err
	}
	frames, err := d.sock.RecvMessageBytes(0)
	if err != nil {
		return nil, err
	}
	if len(frames) != 4 || !bytes.Equal(frames[1], d.id) {
		return nil, fmt.Errorf("unexpected reply %d frames", len(frames))
	}
	return frames[3], nil
}

func BenchmarkBareRouterDealerRoundTrip(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			ep := bareEchoServer(b)
			zctx, err := zmq.NewContext()
			if err != nil {
				b.Fatal(err)
			}
			d := newBareDealer(b, zctx, ep)
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				if _, err := d.roundTrip(payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cmbstest.NoError(b, d.sock.Close)
			cmbstest.NoError(b, zctx.Term)
		})
	}
}

func BenchmarkClientRoundTrip(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			r := startReceiver(b, ReceiverConfig{Handler: func(_ context.Context, msg []byte) ([]byte, error) {
				return msg, nil
			}})
			c := newTestClient(b, ClientConfig{Timeout: 10 * time.Second})
			payload := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Request(ctx, r.Endpoint(), payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The throughput pair keeps many requests in flight: every RunParallel
// goroutine (GOMAXPROCS*parallelism of them) has its own outstanding request.
const benchParallelism = 8

func BenchmarkBareRouterDealerThroughput(b *testing.B) {
	ep := bareEchoServer(b)
	zctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	defer cmbstest.NoError(b, zctx.Term)
	payload := make([]byte, 64)
	var failed atomic.Value
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := newBareDealer(b, zctx, ep)
		defer cmbstest.NoError(b, d.sock.Close)
		for pb.Next() {
			if _, err := d.roundTrip(payload); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkClientThroughput(b *testing.B) {
	r := startReceiver(b, ReceiverConfig{Handler: func(_ context.Context, msg []byte) ([]byte, error) {
		return msg, nil
	}})
	c := newTestClient(b, ClientConfig{Timeout: 10 * time.Second, MaxIdlePerEndpoint: 64})
	payload := make([]byte, 64)
	ctx := context.Background()
	var failed atomic.Value
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Request(ctx, r.Endpoint(), payload); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}
