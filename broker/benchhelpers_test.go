package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// meteredStore wraps the bbolt store a benchmark member runs on. It times
// every write (each one a bbolt transaction committed with fsync) and every
// query, so a benchmark can say how much of a message's latency is spent in
// the store, and it tells watchers when a document they watch is written,
// so a benchmark learns of a delivery outcome the moment it is committed
// instead of polling the HTTP interface.
type meteredStore struct {
	store.Store
	puts, putNanos   atomic.Int64
	finds, findNanos atomic.Int64

	mu      sync.Mutex // guards watched and each watch's written
	watched map[string]*watch
}

// watch follows the writes of one document.
type watch struct {
	ch      chan struct{} // signalled after each write
	written time.Time     // when the last write returned
}

var (
	_ store.Store  = (*meteredStore)(nil)
	_ store.Finder = (*meteredStore)(nil)
)

func (s *meteredStore) Put(ctx context.Context, doc store.Doc) (string, error) {
	start := time.Now()
	rev, err := s.Store.Put(ctx, doc)
	end := time.Now()
	s.putNanos.Add(int64(end.Sub(start)))
	s.puts.Add(1)
	if err == nil {
		s.mu.Lock()
		if w := s.watched[doc.ID]; w != nil {
			w.written = end
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
	return rev, err
}

// watch starts following writes of the message id; stop ends it.
func (s *meteredStore) watch(id string) (w *watch, stop func()) {
	loc := broker.MessageLocation + id
	w = &watch{ch: make(chan struct{}, 1)}
	s.mu.Lock()
	s.watched[loc] = w
	s.mu.Unlock()
	return w, func() {
		s.mu.Lock()
		delete(s.watched, loc)
		s.mu.Unlock()
	}
}

// lastWrite is when the watched document was last written, zero if never.
func (s *meteredStore) lastWrite(w *watch) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return w.written
}

// Find keeps the backend's native query: without it store.Find would fall
// back to List and the benchmark would measure a different scan.
func (s *meteredStore) Find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	start := time.Now()
	docs, err := store.Find(ctx, s.Store, q)
	s.findNanos.Add(int64(time.Since(start)))
	s.finds.Add(1)
	return docs, err
}

// storeUse is a snapshot of a meteredStore's counters.
type storeUse struct {
	puts, finds       int64
	putTime, findTime time.Duration
}

func (s *meteredStore) use() storeUse {
	return storeUse{puts: s.puts.Load(), finds: s.finds.Load(),
		putTime: time.Duration(s.putNanos.Load()), findTime: time.Duration(s.findNanos.Load())}
}

func (u storeUse) sub(v storeUse) storeUse {
	return storeUse{puts: u.puts - v.puts, finds: u.finds - v.finds,
		putTime: u.putTime - v.putTime, findTime: u.findTime - v.findTime}
}

func (u storeUse) add(v storeUse) storeUse {
	return storeUse{puts: u.puts + v.puts, finds: u.finds + v.finds,
		putTime: u.putTime + v.putTime, findTime: u.findTime + v.findTime}
}

// outcome waits until the delivery of message id is recorded done and
// returns its delivery attribute, its result and when the outcome was
// committed. The document is watched before send is called, so no write
// can be missed.
func (s *meteredStore) outcome(ctx context.Context, id string, send func() error) (delivery, result map[string]any, recorded time.Time, err error) {
	w, stop := s.watch(id)
	defer stop()
	if err := send(); err != nil {
		return nil, nil, time.Time{}, err
	}
	for {
		select {
		case <-w.ch:
		case <-ctx.Done():
			return nil, nil, time.Time{}, fmt.Errorf("outcome of %s: %w", id, ctx.Err())
		}
		e, err := occi.GetEntity(ctx, s.Store, broker.MessageLocation+id)
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		d, _ := e.Attr("cmbs.message.delivery")
		dm, _ := d.(map[string]any)
		if dm["state"] == "done" {
			r, _ := e.Attr("cmbs.message.result")
			rm, _ := r.(map[string]any)
			return dm, rm, s.lastWrite(w), nil
		}
	}
}

// benchMember is a member on a metered store, with an HTTP client for
// many requests in flight; its Try returns errors instead of failing the
// benchmark, so worker goroutines can use it.
type benchMember struct {
	*brokertest.Member
	st *meteredStore
}

// startBenchMember brings up a member whose store is metered and opened
// with opts. Its broker waits long for a member, once: a benchmark
// measures deliveries, not retries.
func startBenchMember(tb testing.TB, spec brokertest.Options, opts ...bolt.Option) *benchMember {
	tb.Helper()
	var st *meteredStore
	spec.BoltOptions = opts
	spec.WrapStore = func(inner store.Store) store.Store {
		st = &meteredStore{Store: inner, watched: map[string]*watch{}}
		return st
	}
	spec.Broker = broker.Config{Timeout: 5 * time.Second, Attempts: 1}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	spec.HTTP = client
	m := brokertest.Start(tb, spec)
	tb.Cleanup(client.CloseIdleConnections)
	return &benchMember{Member: m, st: st}
}

// create posts message id.
func (m *benchMember) create(id, layer string, extra map[string]any) error {
	_, err := m.Try(http.StatusCreated, "POST", broker.MessageLocation, brokertest.MessageBody(id, layer, extra))
	return err
}

// timeline is when the steps of one message's delivery ended.
type timeline struct {
	start    time.Time // the operation began
	accepted time.Time // the send action answered 202
	stored   time.Time // the receiver committed the message
	recorded time.Time // the sender committed the outcome
}

// sendAndWait triggers send_<layer> on message id and waits until its
// outcome is committed; it fails unless every destination was delivered.
// It fills tl's steps after start.
func (m *benchMember) sendAndWait(ctx context.Context, id, layer string, receiver *benchMember, tl *timeline) (result map[string]any, err error) {
	w, stop := receiver.st.watch(id)
	defer stop()
	d, result, recorded, err := m.st.outcome(ctx, id, func() error {
		_, err := m.Try(http.StatusAccepted, "POST", broker.MessageLocation+id+"?action=send_"+layer, map[string]any{})
		tl.accepted = time.Now()
		return err
	})
	if err != nil {
		return nil, err
	}
	if d["delivered"] != 1.0 || d["failed"] != 0.0 {
		return nil, fmt.Errorf("delivery of %s on %s: %v", id, layer, d)
	}
	tl.stored, tl.recorded = receiver.st.lastWrite(w), recorded
	return result, nil
}

// createMany creates n messages named prefix0..prefix<n-1> with conc
// requests in flight, so bbolt commits them in shared transactions.
func (m *benchMember) createMany(n, conc int, prefix, layer string, extra map[string]any) error {
	var next atomic.Int64
	errs := make([]error, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := m.create(fmt.Sprintf("%s%d", prefix, i), layer, extra); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pair starts a receiver and a sender that has it as its only neighbour,
// and runs discovery so the sender knows it. Both stores are opened with
// opts.
func pair(tb testing.TB, receiverTopics []string, opts ...bolt.Option) (sender, receiver *benchMember) {
	tb.Helper()
	receiver = startBenchMember(tb, brokertest.Options{ID: "receiver", Topics: receiverTopics}, opts...)
	sender = startBenchMember(tb, brokertest.Options{ID: "sender", Neighbors: []*brokertest.Member{receiver.Member}}, opts...)
	sender.Discover()
	return sender, receiver
}
