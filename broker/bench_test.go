package broker_test

// Delivery benchmarks, each next to a bare baseline measured in the same
// run, so that the ratio, not the machine, is what they report:
//
//	BenchmarkL2Durable: L2 between two members, messages created in
//	batches that send them as they are created, until every outcome is
//	recorded at the sender; beside a bare pebbe/zmq4 DEALER→ROUTER pair
//	keeping the same window of the same messages in flight.
//	BenchmarkSendOnCreate: one message per HTTP request from 8 clients,
//	created and queued; beside an HTTP server whose handler does one
//	fsync'd store put per request.
//	BenchmarkL1Wait: an L1 request answered under Prefer: wait; beside a
//	bare REQ/REP round trip plus a bare HTTP round trip.
//
// Run them with make bench, or:
//
//	go test -run '^$' -bench . -benchtime 3x ./broker/

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

const (
	benchWindow = broker.DefaultWindow
	benchSize   = 256 // bytes of message content
)

// --- bare baselines -----------------------------------------------------

// bareWindowed sends n messages of size bytes from a DEALER to a ROUTER
// that acknowledges each at once, keeping up to window unacknowledged, and
// returns the messages per second.
func bareWindowed(n, window, size int) (float64, error) {
	router, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		return 0, err
	}
	defer func() { _ = router.Close() }()
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		return 0, err
	}
	endpoint, err := router.GetLastEndpoint()
	if err != nil {
		return 0, err
	}
	dealer, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return 0, err
	}
	defer func() { _ = dealer.Close() }()
	if err := dealer.Connect(endpoint); err != nil {
		return 0, err
	}
	acker := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			frames, err := router.RecvMessageBytes(0)
			if err != nil {
				acker <- err
				return
			}
			if _, err := router.SendMessage(frames[0], "", frames[2], "OK", ""); err != nil {
				acker <- err
				return
			}
		}
		acker <- nil
	}()
	payload := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	sent, acked := 0, 0
	id := make([]byte, 16)
	for acked < n {
		for sent < n && sent-acked < window {
			if _, err := dealer.SendMessage("", id, payload); err != nil {
				return 0, err
			}
			sent++
		}
		if _, err := dealer.RecvMessageBytes(0); err != nil {
			return 0, err
		}
		acked++
	}
	elapsed := time.Since(start)
	if err := <-acker; err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// bareReqRep times n round trips of size bytes between a REQ and a REP.
func bareReqRep(n, size int) ([]time.Duration, error) {
	rep, err := zmq.NewSocket(zmq.REP)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rep.Close() }()
	if err := rep.Bind("tcp://127.0.0.1:*"); err != nil {
		return nil, err
	}
	endpoint, err := rep.GetLastEndpoint()
	if err != nil {
		return nil, err
	}
	req, err := zmq.NewSocket(zmq.REQ)
	if err != nil {
		return nil, err
	}
	defer func() { _ = req.Close() }()
	if err := req.Connect(endpoint); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			msg, err := rep.RecvBytes(0)
			if err == nil {
				_, err = rep.SendBytes(msg, 0)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	payload := bytes.Repeat([]byte("x"), size)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := req.SendBytes(payload, 0); err != nil {
			return nil, err
		}
		if _, err := req.RecvBytes(0); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, <-done
}

// bareHTTP serves handler on loopback and returns its URL and a client.
func bareHTTP(tb testing.TB, handler http.HandlerFunc) (string, *http.Client) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with Close below
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// --- helpers ------------------------------------------------------------

// benchPair starts members A and B, A discovering B, with logs off.
func benchPair(b *testing.B) (a, r *brokertest.Member) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	r = brokertest.Start(b, brokertest.Options{ID: "bench-b", HTTP: client})
	a = brokertest.Start(b, brokertest.Options{ID: "bench-a", Neighbors: []*brokertest.Member{r}, HTTP: client})
	a.Discover()
	return a, r
}

// content is a message content of benchSize bytes.
var content = strings.Repeat("x", benchSize)

// batchBody creates count messages named prefix-N on layer, sent as they
// are created, with extra attributes.
func batchBody(prefix string, from, count int, layer string, extra map[string]any) map[string]any {
	resources := make([]any, 0, count)
	for i := from; i < from+count; i++ {
		attrs := map[string]any{"cmbs_layer": layer, "send_on_create": "True", "message_content": content}
		for k, v := range extra {
			attrs[k] = v
		}
		resources = append(resources, map[string]any{
			"kind": broker.MessageKind, "mixins": []any{"http://houssem.org/cmbs#" + layer}, "id": fmt.Sprintf("%s-%d", prefix, i),
			"attributes": map[string]any{"cmbs": map[string]any{"message": attrs}},
		})
	}
	return map[string]any{"resources": resources}
}

// settled waits until the member's outbox is empty: every outcome of what
// it sent is recorded.
func settled(ctx context.Context, st store.Store) error {
	for {
		docs, err := st.Scan(ctx, "outbox/", "", 1)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("outbox not empty: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// --- benchmarks ---------------------------------------------------------

// BenchmarkL2Durable: msgs/s of durable L2 delivery between two members,
// through batched ingest, and the bare windowed pair's msgs/s beside it.
func BenchmarkL2Durable(b *testing.B) {
	const (
		perRound   = 20000
		publishers = 4
		batch      = 500
	)
	bare, err := bareWindowed(100000, benchWindow, benchSize)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := benchPair(b)
	ctx := b.Context()
	var total, accepted time.Duration
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		start := time.Now()
		var wg sync.WaitGroup
		var failed atomic.Value
		for p := 0; p < publishers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for from := p * perRound / publishers; from < (p+1)*perRound/publishers; from += batch {
					n := min(batch, (p+1)*perRound/publishers-from)
					if _, err := a.Try(http.StatusCreated, "POST", broker.MessageLocation, batchBody(fmt.Sprintf("r%d", round), from, n, "l2", nil)); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		accepted += time.Since(start)
		if err := settled(ctx, a.Store); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	rate := float64(perRound*b.N) / total.Seconds()
	b.ReportMetric(float64(perRound*b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(bare, "bare-msgs/s")
	b.ReportMetric(100*rate/bare, "%-of-bare")
}

// BenchmarkSendOnCreate: creates per second of one message per request,
// sent as created, from 8 clients; and a bare HTTP POST doing one fsync'd
// store put per request, from 8 clients, beside it.
func BenchmarkSendOnCreate(b *testing.B) {
	const (
		clients  = 8
		perRound = 4000
	)
	st, err := bolt.Open(filepath.Join(b.TempDir(), "bare.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	var seq atomic.Int64
	url, client := bareHTTP(b, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = st.Put(r.Context(), store.Doc{ID: fmt.Sprintf("d%d", seq.Add(1)), Body: body})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	one, err := json.Marshal(batchBody("x", 0, 1, "l2", nil))
	if err != nil {
		b.Fatal(err)
	}
	bare := parallelRate(clients, perRound, func(int) error {
		res, err := client.Post(url, "application/json", bytes.NewReader(one))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body) // drained for the connection's reuse
		_ = res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("bare POST: %s", res.Status)
		}
		return nil
	})

	a, _ := benchPair(b)
	var rates []float64
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		rates = append(rates, parallelRate(clients, perRound, func(i int) error {
			_, err := a.Try(http.StatusCreated, "POST", broker.MessageLocation, batchBody(fmt.Sprintf("s%d", round), i, 1, "l2", nil))
			return err
		}))
	}
	b.StopTimer()
	if err := settled(b.Context(), a.Store); err != nil {
		b.Fatal(err)
	}
	rate := mean(rates)
	b.ReportMetric(rate, "creates/s")
	b.ReportMetric(bare, "bare-posts/s")
	b.ReportMetric(100*rate/bare, "%-of-bare")
}

// BenchmarkL1Wait: the median time of an L1 request answered under Prefer:
// wait, and the median of a bare REQ/REP round trip plus a bare HTTP round
// trip beside it.
func BenchmarkL1Wait(b *testing.B) {
	const perRound = 300
	rr, err := bareReqRep(2000, benchSize)
	if err != nil {
		b.Fatal(err)
	}
	url, client := bareHTTP(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the bare server only answers
		w.WriteHeader(http.StatusOK)
	})
	var httpRT []time.Duration
	for range 2000 {
		start := time.Now()
		res, err := client.Post(url, "application/json", strings.NewReader(`{}`))
		if err != nil {
			b.Fatal(err)
		}
		_ = res.Body.Close()
		httpRT = append(httpRT, time.Since(start))
	}
	bare := median(rr) + median(httpRT)

	a, r := benchPair(b)
	var lat []time.Duration
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		for i := range perRound {
			body := batchBody(fmt.Sprintf("w%d", round), i, 1, "l1", map[string]any{"l1_socket_receiver_member": r.Sockets[broker.L1]})
			start := time.Now()
			res := a.Request("POST", broker.MessageLocation, body, "Prefer", "wait=10")
			lat = append(lat, time.Since(start))
			if res.Status != http.StatusCreated || res.Header.Get("Preference-Applied") == "" {
				b.Fatalf("L1 create: %d %s", res.Status, res.Raw)
			}
		}
	}
	b.StopTimer()
	m := median(lat)
	b.ReportMetric(float64(m.Microseconds()), "median-us")
	b.ReportMetric(float64(bare.Microseconds()), "bare-median-us")
	b.ReportMetric(float64(m)/float64(bare), "x-bare")
}

// parallelRate runs op n times from clients goroutines and returns the
// operations per second.
func parallelRate(clients, n int, op func(i int) error) float64 {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		panic(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(v []float64) float64 {
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}
