package broker_test

// Broker benchmarks, each next to a bare pebbe/zmq4 baseline doing the same
// exchange: a DEALER sending the frames layers.Client sends ("", 16-byte
// id, payload) to a ROUTER that answers inline ("", id, "OK", body), with
// request and reply of the sizes the broker's own envelopes have, at the
// same concurrency. Every broker sub-benchmark also runs the baseline
// inline before its timed loop and reports x_baseline, its mean latency
// over the baseline's, so the ratio comes from one run on one machine.
//
// The broker rows also say where their time went. Every store write is a
// bbolt transaction committed with fsync, after waiting up to the store's
// batch delay for other writers to join it: store-% is the share of the
// messages' latency spent in those writes (puts/msg of them), find-% the
// share spent in store queries (members looking themselves and each other
// up). The end-to-end rows add the mean time from the start of a message
// to the send action's 202 (accepted-us), to the receiver's commit of the
// message (stored-us) and to the sender's commit of the outcome
// (recorded-us). Members run in rounds of roundSize messages, so their
// stores hold as many messages whatever b.N is.
//
// Run them all (about a minute and a half; the L1 and Delivery functions
// take about 30 s each):
//
//	go test -run '^$' -bench . ./broker/

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.etcd.io/bbolt"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

const (
	// benchConcurrency is how many messages the throughput benchmarks keep
	// in flight: as many as a receiver runs handlers (layers.DefaultWorkers).
	benchConcurrency = layers.DefaultWorkers
	// baselineRoundTrips is how many bare exchanges the inline baseline
	// averages.
	baselineRoundTrips = 2000
)

// exchange names the size of a request and of its reply.
type exchange struct{ req, rep int }

// --- bare pebbe/zmq4 baseline -------------------------------------------

// bareServer is a ROUTER answering every request inline with a reply body
// of a fixed size: the least work a receiver can do per request.
type bareServer struct {
	endpoint string
	quit     chan struct{}
	done     chan struct{}
	err      error
}

func startBareServer(repSize int) (*bareServer, error) {
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("bare server: %w", err)
	}
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err == nil {
		err = router.SetLinger(0)
	}
	if err == nil {
		err = router.Bind("tcp://127.0.0.1:*")
	}
	var endpoint string
	if err == nil {
		endpoint, err = router.GetLastEndpoint()
	}
	if err != nil {
		if router != nil {
			_ = router.Close()
		}
		_ = zctx.Term()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	s := &bareServer{endpoint: endpoint, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer func() { _ = zctx.Term() }()
		defer func() { _ = router.Close() }()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		ok, body := []byte("OK"), make([]byte, repSize)
		for {
			select {
			case <-s.quit:
				return
			default:
			}
			polled, err := poller.Poll(50 * time.Millisecond)
			if err != nil {
				s.err = fmt.Errorf("bare server poll: %w", err)
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
				// identity, "", id, payload -> identity, "", id, OK, body
				if _, err := router.SendMessage(frames[0], frames[1], frames[2], ok, body); err != nil {
					s.err = fmt.Errorf("bare server send: %w", err)
					return
				}
			}
		}
	}()
	return s, nil
}

func (s *bareServer) close() error {
	close(s.quit)
	<-s.done
	return s.err
}

// bareDealer is one worker's DEALER, used by that worker only.
type bareDealer struct {
	sock *zmq.Socket
	id   []byte
	seq  uint64
}

func (d *bareDealer) roundTrip(payload []byte) error {
	d.seq++
	for i := range 8 {
		d.id[8+i] = byte(d.seq >> (56 - 8*i))
	}
	if _, err := d.sock.SendMessage([]byte{}, d.id, payload); err != nil {
		return err
	}
	frames, err := d.sock.RecvMessageBytes(0)
	if err != nil {
		return err
	}
	if len(frames) != 4 || string(frames[1]) != string(d.id) || string(frames[2]) != "OK" {
		return fmt.Errorf("unexpected reply of %d frames", len(frames))
	}
	return nil
}

// barePair is a bare server with conc connected dealers.
type barePair struct {
	srv     *bareServer
	zctx    *zmq.Context
	dealers []*bareDealer
	payload []byte
}

func openBare(ex exchange, conc int) (*barePair, error) {
	srv, err := startBareServer(ex.rep)
	if err != nil {
		return nil, err
	}
	p := &barePair{srv: srv, payload: make([]byte, ex.req)}
	if p.zctx, err = zmq.NewContext(); err != nil {
		_ = srv.close()
		return nil, fmt.Errorf("bare dealers: %w", err)
	}
	for range conc {
		sock, err := p.zctx.NewSocket(zmq.DEALER)
		if err == nil {
			p.dealers = append(p.dealers, &bareDealer{sock: sock, id: make([]byte, 16)})
			if err = sock.SetLinger(0); err == nil {
				err = sock.Connect(srv.endpoint)
			}
		}
		if err == nil {
			// The first exchange waits for the TCP connection; keep it
			// out of the measurement as the broker's pooled sockets are.
			err = p.dealers[len(p.dealers)-1].roundTrip(p.payload)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("bare dealer: %w", err), p.close())
		}
	}
	return p, nil
}

func (p *barePair) run(n int) (run, error) {
	return concurrently(n, len(p.dealers), func(w, _ int) error { return p.dealers[w].roundTrip(p.payload) })
}

func (p *barePair) close() error {
	var errs []error
	for _, d := range p.dealers {
		errs = append(errs, d.sock.Close())
	}
	return errors.Join(append(errs, p.zctx.Term(), p.srv.close())...)
}

// baseline measures the bare exchange's mean latency.
func baseline(b *testing.B, ex exchange, conc int) time.Duration {
	b.Helper()
	p, err := openBare(ex, conc)
	if err != nil {
		b.Fatal(err)
	}
	r, err := p.run(baselineRoundTrips)
	if err = errors.Join(err, p.close()); err != nil {
		b.Fatal(err)
	}
	return r.mean()
}

// --- measurement ----------------------------------------------------------

// run is the outcome of n operations.
type run struct {
	n       int
	latency time.Duration // summed over operations
	elapsed time.Duration
}

func (r run) mean() time.Duration { return r.latency / time.Duration(max(r.n, 1)) }

// concurrently runs op for i in [0, n) on conc workers and times each call.
func concurrently(n, conc int, op func(worker, i int) error) (run, error) {
	var next, latency atomic.Int64
	errs := make([]error, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(w, i); err != nil {
					errs[w] = err
					return
				}
				latency.Add(int64(time.Since(t)))
			}
		})
	}
	wg.Wait()
	return run{n: n, latency: time.Duration(latency.Load()), elapsed: time.Since(start)}, errors.Join(errs...)
}

// report records a run's throughput and latency, and its ratio to base
// when there is one.
func report(b *testing.B, r run, base time.Duration) {
	b.ReportMetric(float64(r.n)/r.elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(r.mean())/float64(time.Microsecond), "latency-us")
	if base > 0 {
		b.ReportMetric(float64(r.mean())/float64(base), "x_baseline")
	}
}

// reportStore records the store's share of a run: u is the store use of
// every member the run went through, all of it on the measured path.
func reportStore(b *testing.B, r run, u storeUse) {
	n := float64(max(r.n, 1))
	b.ReportMetric(float64(u.puts)/n, "puts/msg")
	b.ReportMetric(100*float64(u.putTime)/float64(r.latency), "store-%")
	b.ReportMetric(100*float64(u.findTime)/float64(r.latency), "find-%")
}

// steps sums the timelines of a run's messages.
type steps struct {
	n, accepted, stored, recorded atomic.Int64
}

func (s *steps) add(tl timeline) {
	s.n.Add(1)
	s.accepted.Add(int64(tl.accepted.Sub(tl.start)))
	s.stored.Add(int64(tl.stored.Sub(tl.start)))
	s.recorded.Add(int64(tl.recorded.Sub(tl.start)))
}

// report records the mean time from the start of an operation to the end
// of each step: the send action answered, the receiver committed the
// message, the sender committed the outcome.
func (s *steps) report(b *testing.B) {
	n := float64(max(s.n.Load(), 1)) * float64(time.Microsecond)
	b.ReportMetric(float64(s.accepted.Load())/n, "accepted-us")
	b.ReportMetric(float64(s.stored.Load())/n, "stored-us")
	b.ReportMetric(float64(s.recorded.Load())/n, "recorded-us")
}

// --- broker envelopes, as broker/wire.go lays them out ---------------------

type wireMember struct {
	ID        string                  `json:"id"`
	Title     string                  `json:"title,omitempty"`
	Sockets   map[broker.Layer]string `json:"sockets"`
	Neighbors []string                `json:"neighbors,omitempty"`
	Topics    []string                `json:"topics,omitempty"`
	Distance  int                     `json:"distance"`
}

type wireMessage struct {
	ID         string         `json:"id"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
}

type wireEnvelope struct {
	Type     string       `json:"type"`
	Layer    string       `json:"layer"`
	From     wireMember   `json:"from"`
	Message  *wireMessage `json:"message,omitempty"`
	To       []string     `json:"to,omitempty"`
	Hops     int          `json:"hops"`
	Deadline time.Time    `json:"deadline"`
}

type wireReply struct {
	Results []struct {
		Member string `json:"member"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"results"`
	Member *wireMember `json:"member"`
}

// envelopes builds what the sender of a pair sends the receiver.
type envelopes struct {
	from wireMember
	to   *benchMember
}

func newEnvelopes(sender, receiver *benchMember) envelopes {
	return envelopes{
		from: wireMember{ID: sender.ID, Title: "member " + sender.ID, Sockets: sender.Sockets,
			Neighbors: []string{receiver.Sockets[broker.L1]}},
		to: receiver,
	}
}

// message is the attributes a message of the benchmarks carries on layer.
func (e envelopes) message(layer string, storable bool) map[string]any {
	attrs := map[string]any{"cmbs_layer": layer, "executable": "True", "sendable": "True", "storable": "False",
		"path_history": []any{e.from.ID}, "origin": e.from.ID}
	if storable {
		attrs["storable"] = "True"
	}
	switch layer {
	case "l1":
		attrs["l1_socket_receiver_member"] = e.to.Sockets[broker.L1]
		attrs["message_content"] = "ping"
	case "l32":
		attrs["topics"] = []any{"bench.load"}
	}
	return attrs
}

// deliver is the envelope carrying message id on layer; l1 requests are
// addressed to whoever answers, the others to the receiver by id.
func (e envelopes) deliver(id, layer string, storable bool) ([]byte, error) {
	attrs := e.message(layer, storable)
	if layer != "l1" {
		attrs["message_content"] = map[string]any{"hello": id}
	}
	env := wireEnvelope{Type: "deliver", Layer: layer, From: e.from, Hops: 1, Deadline: time.Now().Add(10 * time.Second),
		Message: &wireMessage{ID: id, Mixins: []string{"http://houssem.org/cmbs#" + layer},
			Attributes: map[string]any{"cmbs": map[string]any{"message": attrs}}}}
	if layer != "l1" {
		env.To = []string{e.to.ID}
	}
	return json.Marshal(env)
}

func (e envelopes) describe() ([]byte, error) {
	return json.Marshal(wireEnvelope{Type: "describe", Layer: "l1", From: e.from})
}

// request sends payload to the receiver's socket for layer and checks the
// answer is a delivery (or a description).
func (e envelopes) request(ctx context.Context, c *layers.Client, layer string, payload []byte) ([]byte, error) {
	raw, err := c.Request(ctx, e.to.Sockets[broker.Layer(layer)], payload)
	if err != nil {
		return nil, err
	}
	var rep wireReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("reply %s: %w", raw, err)
	}
	if rep.Member == nil && (len(rep.Results) != 1 || rep.Results[0].Status != "delivered") {
		return nil, fmt.Errorf("not delivered: %s", raw)
	}
	return raw, nil
}

func newLayersClient(tb testing.TB) *layers.Client {
	tb.Helper()
	c, err := layers.NewClient(layers.ClientConfig{Timeout: 10 * time.Second, Attempts: 1, Logger: brokertest.Quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmbstest.NoError(tb, c.Close) })
	return c
}

// exchanges measures the request and reply sizes of the broker's
// exchanges, by making each once between two members.
func exchanges(b *testing.B) map[string]exchange {
	b.Helper()
	sender, receiver := pair(b, []string{"bench.*"})
	env := newEnvelopes(sender, receiver)
	c := newLayersClient(b)
	ctx := context.Background()
	out := map[string]exchange{}
	measure := func(name, layer string, payload []byte, err error) {
		if err == nil {
			var raw []byte
			if raw, err = env.request(ctx, c, layer, payload); err == nil {
				out[name] = exchange{req: len(payload), rep: len(raw)}
				return
			}
		}
		b.Fatalf("%s: %v", name, err)
	}
	for _, layer := range []string{"l1", "l2", "l32"} {
		payload, err := env.deliver("size-"+layer, layer, true)
		measure(layer, layer, payload, err)
	}
	payload, err := env.deliver("size-volatile", "l1", false)
	measure("l1-volatile", "l1", payload, err)
	payload, err = env.describe()
	measure("describe", "l1", payload, err)
	return out
}

// --- rounds ---------------------------------------------------------------

// roundSize is how many messages a pair of members carries before a
// benchmark moves on to a fresh pair. Members look themselves up by
// scanning every stored entity, so a pair's latency grows with the
// messages it holds; rounds keep that number the same whatever b.N is,
// which makes runs comparable.
const roundSize = 100

// roundState is one round's members and operation.
type roundState struct {
	op    func(worker, i int) error
	use   func() storeUse // store use of every member the operation goes through
	close func()
}

// inRounds runs b.N operations on conc workers, in rounds of at most size
// on the fresh state setup(count) makes for count operations. Only the
// operations are timed.
func inRounds(b *testing.B, size, conc int, setup func(b *testing.B, count int) roundState) (run, storeUse) {
	b.Helper()
	var total run
	var used storeUse
	// A member takes a while to close (each receiver finishes its poll), so
	// a round's members close while the next is set up.
	var closing sync.WaitGroup
	defer closing.Wait()
	b.ResetTimer()
	b.StopTimer()
	for start := 0; start < b.N; start += size {
		count := min(size, b.N-start)
		rs := setup(b, count)
		before := rs.use()
		b.StartTimer()
		r, err := concurrently(count, conc, rs.op)
		b.StopTimer()
		used = used.add(rs.use().sub(before))
		closing.Go(rs.close)
		if err != nil {
			b.Fatal(err)
		}
		total.n += r.n
		total.latency += r.latency
		total.elapsed += r.elapsed
	}
	return total, used
}

func closePair(sender, receiver *benchMember) func() {
	return func() {
		_ = sender.Close()
		_ = receiver.Close()
	}
}

func benchBare(b *testing.B, ex exchange, conc int) {
	p, err := openBare(ex, conc)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	r, err := p.run(b.N)
	b.StopTimer()
	if err = errors.Join(err, p.close()); err != nil {
		b.Fatal(err)
	}
	report(b, r, 0)
}

// --- benchmarks -----------------------------------------------------------

// BenchmarkL1RoundTrip measures an L1 request and its reply between two
// members, one at a time:
//
//   - bare: the baseline exchange, with the sizes of an L1 deliver;
//   - transport/*: an envelope sent straight to the receiver's L1 socket
//     with layers.Client, so only the receiver's handler runs (deliver
//     stores and executes the message; deliver-volatile is not storable,
//     so nothing is written; describe records the asking member);
//   - e2e: the whole path through the sender's HTTP interface: create the
//     message, send_l1, and wait until the reply is written into its
//     result; e2e-no-batch-delay does the same on stores whose writes do
//     not wait for others to join their transaction.
func BenchmarkL1RoundTrip(b *testing.B) {
	sizes := exchanges(b)
	b.Run("bare", func(b *testing.B) { benchBare(b, sizes["l1"], 1) })
	for _, tc := range []struct {
		name, size string
		payload    func(env envelopes, id string) ([]byte, error)
	}{
		{"deliver", "l1", func(env envelopes, id string) ([]byte, error) { return env.deliver(id, "l1", true) }},
		{"deliver-volatile", "l1-volatile", func(env envelopes, id string) ([]byte, error) { return env.deliver(id, "l1", false) }},
		{"describe", "describe", func(env envelopes, _ string) ([]byte, error) { return env.describe() }},
	} {
		b.Run("transport/"+tc.name, func(b *testing.B) {
			base := baseline(b, sizes[tc.size], 1)
			ctx := context.Background()
			r, used := inRounds(b, roundSize, 1, func(b *testing.B, _ int) roundState {
				sender, receiver := pair(b, nil)
				env := newEnvelopes(sender, receiver)
				c, err := layers.NewClient(layers.ClientConfig{Timeout: 10 * time.Second, Attempts: 1, Logger: brokertest.Quiet()})
				if err != nil {
					b.Fatal(err)
				}
				// Warm the client's socket to the receiver, as the broker's is.
				warm, err := tc.payload(env, "warm")
				if err == nil {
					_, err = env.request(ctx, c, "l1", warm)
				}
				if err != nil {
					b.Fatal(err)
				}
				return roundState{
					op: func(_, i int) error {
						payload, err := tc.payload(env, fmt.Sprint("t", i))
						if err == nil {
							_, err = env.request(ctx, c, "l1", payload)
						}
						return err
					},
					use:   receiver.st.use,
					close: func() { _ = c.Close(); closePair(sender, receiver)() },
				}
			})
			report(b, r, base)
			reportStore(b, r, used)
		})
	}
	for _, v := range storeVariants {
		b.Run("e2e"+v.suffix, func(b *testing.B) {
			base := baseline(b, sizes["l1"], 1)
			ctx := context.Background()
			var st steps
			r, used := inRounds(b, roundSize, 1, func(b *testing.B, _ int) roundState {
				sender, receiver := pair(b, nil, v.opts...)
				extra := map[string]any{"l1_socket_receiver_member": receiver.Sockets[broker.L1], "message_content": "ping"}
				roundTrip := func(id string) (timeline, error) {
					tl := timeline{start: time.Now()}
					if err := sender.create(id, "l1", extra); err != nil {
						return tl, err
					}
					result, err := sender.sendAndWait(ctx, id, "l1", receiver, &tl)
					if err == nil && (result["member"] != receiver.ID || result["content"] != "ping") {
						err = fmt.Errorf("reply not written into the result: %v", result)
					}
					return tl, err
				}
				if _, err := roundTrip("warm"); err != nil {
					b.Fatal(err)
				}
				return roundState{
					op: func(_, i int) error {
						tl, err := roundTrip(fmt.Sprint("e", i))
						st.add(tl)
						return err
					},
					use:   func() storeUse { return sender.st.use().add(receiver.st.use()) },
					close: closePair(sender, receiver),
				}
			})
			report(b, r, base)
			reportStore(b, r, used)
			st.report(b)
		})
	}
}

// storeVariants are the stores the end-to-end rows run on: the default,
// and one whose writes do not wait for others to join their transaction,
// which shows what the batch delay costs.
var storeVariants = []struct {
	suffix string
	opts   []bolt.Option
}{
	{"", nil},
	{"-no-batch-delay", []bolt.Option{bolt.WithBatchDelay(0)}},
}

// BenchmarkDelivery measures L2 and L3.2 deliveries from a sender to one
// receiver with benchConcurrency messages in flight: msgs/s, and the mean
// latency from the send action's request to the outcome committed in the
// sender's store. Each round's messages (roundSize, or backlog) are
// created, untimed, before it starts, so the sender holds that many
// throughout; the receiver stores each one it gets. bare is the baseline
// at the same concurrency with the sizes of the layer's deliver envelope
// and its acknowledgement.
func BenchmarkDelivery(b *testing.B) {
	sizes := exchanges(b)
	type variant struct {
		suffix  string
		opts    []bolt.Option
		backlog int
	}
	variants := []variant{{"", nil, roundSize}}
	for _, v := range storeVariants[1:] {
		variants = append(variants, variant{v.suffix, v.opts, roundSize})
	}
	// The growth with stored messages, shown once.
	variants = append(variants, variant{"-backlog-1000", nil, 1000})
	for _, tc := range []struct {
		layer          string
		receiverTopics []string
		variants       []variant
	}{
		{"l2", nil, variants},
		{"l32", []string{"bench.*"}, variants[:1]},
	} {
		b.Run(tc.layer+"/bare", func(b *testing.B) { benchBare(b, sizes[tc.layer], benchConcurrency) })
		for _, v := range tc.variants {
			b.Run(tc.layer+"/broker"+v.suffix, func(b *testing.B) {
				base := baseline(b, sizes[tc.layer], benchConcurrency)
				ctx := context.Background()
				var st steps
				r, used := inRounds(b, v.backlog, benchConcurrency, func(b *testing.B, _ int) roundState {
					sender, receiver := pair(b, tc.receiverTopics, v.opts...)
					extra := newEnvelopes(sender, receiver).message(tc.layer, true)
					delete(extra, "path_history")
					delete(extra, "origin")
					if err := sender.createMany(v.backlog, benchConcurrency, "d", tc.layer, extra); err != nil {
						b.Fatal(err)
					}
					// Warm the sender's socket to the receiver.
					if err := sender.create("warm", tc.layer, extra); err != nil {
						b.Fatal(err)
					}
					if _, err := sender.sendAndWait(ctx, "warm", tc.layer, receiver, &timeline{}); err != nil {
						b.Fatal(err)
					}
					return roundState{
						op: func(_, i int) error {
							tl := timeline{start: time.Now()}
							_, err := sender.sendAndWait(ctx, fmt.Sprint("d", i), tc.layer, receiver, &tl)
							st.add(tl)
							return err
						},
						use:   func() storeUse { return sender.st.use().add(receiver.st.use()) },
						close: closePair(sender, receiver),
					}
				})
				report(b, r, base)
				reportStore(b, r, used)
				st.report(b)
			})
		}
	}
}

// BenchmarkStoreCommit is the reference for the store-% of the broker
// rows: one document write at a time, through the bolt store as the broker
// makes it (bbolt Batch, waiting up to its batch delay for other writers,
// then fsync), with no batch delay, and as a bare bbolt transaction with
// and without fsync.
func BenchmarkStoreCommit(b *testing.B) {
	body := json.RawMessage(`{"doc":"entity","attributes":{"cmbs":{"message":{"hello":"world"}}}}`)
	for _, tc := range []struct {
		name string
		opts []bolt.Option
	}{
		{"bolt-put", nil},
		{"bolt-put-no-batch-delay", []bolt.Option{bolt.WithBatchDelay(0)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "s.db"), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer cmbstest.NoError(b, st.Close)
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if _, err := st.Put(ctx, store.Doc{ID: fmt.Sprint("/d/", i), Body: body}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, noSync := range []bool{false, true} {
		name := "bbolt-update-fsync"
		if noSync {
			name = "bbolt-update-nosync"
		}
		b.Run(name, func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "s.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cmbstest.NoError(b, db.Close)
			db.NoSync = noSync
			for i := 0; b.Loop(); i++ {
				if err := db.Update(func(tx *bbolt.Tx) error {
					bk, err := tx.CreateBucketIfNotExists([]byte("docs"))
					if err != nil {
						return err
					}
					return bk.Put([]byte(fmt.Sprint("/d/", i)), body)
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
