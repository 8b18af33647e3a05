package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// outcome is what became of an outbox entry, or of a message at a
// destination that a receipt reported: results to fold into a message's
// delivery, and the document that is settled with them.
type outcome struct {
	// entry is the outbox entry settled; nil for a receipt.
	entry *entry
	// receipt is the receipt document settled; nil for an entry.
	receipt *store.Doc
	// message is the location of the message to update; empty when the
	// message is not this member's (it relayed it).
	message string
	layer   Layer
	results []destResult
	// socket is set for an L1 request to a socket no known member had:
	// the delivery knew that destination by its socket until it answered.
	socket string
}

// outcomeOf settles e with the same status for each of its destinations.
func (b *Broker) outcomeOf(e *entry, status, reason string) outcome {
	to := e.To
	if e.Peer == "" {
		to = []string{e.Endpoint}
	}
	rs := make([]destResult, len(to))
	for i, id := range to {
		rs[i] = destResult{Member: id, Status: status, Reason: reason, Attempts: e.attempts, Endpoint: e.Endpoint}
		if e.Peer != "" && e.Peer != id {
			rs[i].Via = e.Peer
		}
	}
	return outcome{entry: e, message: e.Message, layer: e.Layer, results: rs, socket: e.Endpoint}
}

// outcomeFromResults settles e with the results its peer answered.
func (b *Broker) outcomeFromResults(e *entry, endpoint string, rs []destResult) outcome {
	for i := range rs {
		if rs[i].Endpoint == "" {
			rs[i].Endpoint = endpoint
		}
		if rs[i].Via == "" && e.Peer != "" && rs[i].Member != e.Peer {
			rs[i].Via = e.Peer
		}
		rs[i].Attempts = e.attempts
	}
	return outcome{entry: e, message: e.Message, layer: e.Layer, results: rs, socket: e.Endpoint}
}

// recorder folds outcomes into the messages they concern and deletes the
// entries and receipts they settle, many in one store transaction: it
// takes whatever has arrived since its last commit, so a lone outcome is
// written at once and a flood shares commits. It is the one writer of
// delivery outcomes, so messages see no lost update between deliverers.
type recorder struct {
	b    *Broker
	wake chan struct{}

	mu      sync.Mutex
	pending []outcome
	busy    bool
	// last is how many outcomes the last step took (owned by run).
	last int
}

// maxRecord bounds the outcomes of one commit.
const maxRecord = 4096

func newRecorder(b *Broker) *recorder {
	return &recorder{b: b, wake: make(chan struct{}, 1)}
}

func (r *recorder) add(outs ...outcome) {
	if len(outs) == 0 {
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, outs...)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// idle reports whether nothing waits to be recorded.
func (r *recorder) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) == 0 && !r.busy
}

// run records until ctx ends, then records what is left within a short
// grace, so that a clean shutdown loses no outcome.
func (r *recorder) run(ctx context.Context) {
	for {
		select {
		case <-r.wake:
		case <-ctx.Done():
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			for r.step(grace) {
			}
			cancel()
			return
		}
		for r.step(ctx) {
			if r.last >= lingerAbove {
				// Busy: let the outcomes of the other destinations of the
				// same messages arrive, so each message is written once.
				select {
				case <-ctx.Done():
				case <-time.After(linger):
				}
			}
		}
	}
}

// Under load the recorder waits linger between commits (when the last one
// held lingerAbove outcomes or more); a lone outcome is written at once.
const (
	linger      = 20 * time.Millisecond
	lingerAbove = 256
)

// step records one batch; false when there was none.
func (r *recorder) step(ctx context.Context) bool {
	r.mu.Lock()
	n := min(len(r.pending), maxRecord)
	outs := r.pending[:n:n]
	r.pending = r.pending[n:]
	r.busy = n > 0
	r.mu.Unlock()
	r.last = n
	if n == 0 {
		return false
	}
	r.record(ctx, outs)
	r.mu.Lock()
	r.busy = false
	r.mu.Unlock()
	return true
}

// record commits one batch of outcomes, retrying what the store refuses
// for a reason that goes away: a message changed meanwhile (read again), a
// settled document already gone (dropped), the store unreachable (after a
// pause, until ctx ends; the entries are then delivered again later and
// recognised as duplicates).
func (r *recorder) record(ctx context.Context, outs []outcome) {
	b := r.b
	var settle []store.Write
	var messages []string
	results := map[string][]destResult{}
	layers := map[string]Layer{}
	sockets := map[string][]string{}
	var receipts []*entry
	for _, o := range outs {
		switch {
		case o.entry != nil:
			settle = append(settle, store.Remove(o.entry.id, o.entry.rev))
		case o.receipt != nil:
			settle = append(settle, store.Remove(o.receipt.ID, o.receipt.Rev))
		}
		if o.message != "" {
			if _, ok := results[o.message]; !ok {
				messages = append(messages, o.message)
			}
			results[o.message] = append(results[o.message], o.results...)
			layers[o.message] = o.layer
			if o.socket != "" {
				sockets[o.message] = append(sockets[o.message], o.socket)
			}
		} else if o.entry != nil && o.entry.Kind == kindMessage {
			receipts = append(receipts, b.relayReceipts(ctx, o)...)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var updated, completed []*occi.Entity
	for attempt := 1; ctx.Err() == nil; attempt++ {
		writes := slices.Clone(settle)
		for _, e := range receipts {
			w, err := e.write()
			if err != nil {
				b.log.WithError(err).Error("recorder: receipt not written")
				continue
			}
			writes = append(writes, w)
		}
		updated, completed = updated[:0], completed[:0]
		current, err := store.GetMany(ctx, b.st, messages)
		if err != nil {
			b.log.WithError(err).WithField("attempt", attempt).Warn("recorder: store read failed; retrying")
			r.pause(ctx, attempt)
			continue
		}
		for _, loc := range messages {
			doc, ok := current[loc]
			if !ok {
				continue // deleted since it was sent
			}
			e, err := occi.DecodeEntity(doc)
			var done bool
			if err == nil {
				done, err = applyResults(e, layers[loc], results[loc], sockets[loc], now)
			}
			var d store.Doc
			if err == nil {
				d, err = occi.EncodeEntity(e)
			}
			if err != nil {
				b.log.WithError(err).WithField("message", loc).Error("recorder: outcome not recorded")
				continue
			}
			writes = append(writes, store.Put(d))
			updated = append(updated, e)
			if done {
				completed = append(completed, e)
			}
		}
		revs, err := b.st.Write(ctx, writes)
		if err == nil {
			for i, e := range receipts {
				e.rev = revs[len(settle)+i]
			}
			break
		}
		var we *store.WriteError
		switch {
		case errors.As(err, &we) && we.Index < len(settle):
			// Settled already, by an earlier commit whose answer was lost.
			settle = slices.Delete(settle, we.Index, we.Index+1)
		case errors.As(err, &we) && errors.Is(err, store.ErrConflict):
			// A message changed meanwhile: read it again.
		default:
			b.log.WithError(err).WithField("attempt", attempt).Warn("recorder: store write failed; retrying")
			r.pause(ctx, attempt)
		}
	}
	if ctx.Err() != nil {
		b.log.WithField("outcomes", len(outs)).Warn("recorder: stopped with outcomes unrecorded; their entries are delivered again at the next start")
		return
	}
	r.after(outs, receipts, updated)
	for _, e := range completed {
		if d, err := deliveryOf(e); err == nil {
			b.cfg.Metrics.completed(d.Layer, d.Started)
		}
	}
}

// pause waits before the next attempt at a batch the store refused.
func (r *recorder) pause(ctx context.Context, attempt int) {
	select {
	case <-ctx.Done():
	case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)):
	}
}

// after tells everyone concerned about a committed batch.
func (r *recorder) after(outs []outcome, receipts []*entry, updated []*occi.Entity) {
	b := r.b
	byStream := map[streamKey][]string{}
	for _, o := range outs {
		if o.entry != nil {
			byStream[o.entry.stream()] = append(byStream[o.entry.stream()], o.entry.id)
		}
	}
	for k, ids := range byStream {
		b.deliverer(k).forget(ids...)
	}
	b.enqueue(receipts)
	for _, e := range updated {
		b.waits.notify(e.Location)
	}
	for _, o := range outs {
		if o.message == "" {
			continue
		}
		b.cfg.Metrics.settled(o.layer, o.results)
		b.emitFailures(o.message, o.layer, o.results, updated)
	}
}

// relayReceipts are the receipts to send to a message's origin for the
// destinations a relayed message did not reach.
func (b *Broker) relayReceipts(ctx context.Context, o outcome) []*entry {
	var out []*entry
	for _, r := range o.results {
		if r.Status != statusFailed && r.Status != statusExpired {
			continue
		}
		rc := receipt{Message: o.entry.MessageID, Origin: o.entry.Origin, Result: r}
		e, err := b.receiptEntry(ctx, o.layer, rc, o.entry.Expires)
		if err != nil {
			b.log.WithError(err).WithField("message", o.entry.MessageID).Warn("receipt to the origin not sent")
			continue
		}
		out = append(out, e)
	}
	return out
}

// applyResults folds destination results into a message's delivery
// attribute, and reports whether that made the delivery done. A final
// status is never replaced by one on the way, nor a delivery by anything
// else: results may arrive late or twice.
// An L1 request to a socket no known member had is known by its socket
// until the member there answers: its answer replaces the socket by the
// member's id.
func applyResults(e *occi.Entity, layer Layer, rs []destResult, sockets []string, now string) (bool, error) {
	d, err := deliveryOf(e)
	if err != nil {
		return false, err
	}
	wasDone := d.Done()
	if d.Destinations == nil {
		d.Destinations = map[string]destResult{}
	}
	for _, s := range sockets {
		if cur, ok := d.Destinations[s]; ok && !api.Final(cur.Status) && !slices.ContainsFunc(rs, func(r destResult) bool { return r.Member == s }) {
			delete(d.Destinations, s)
		}
	}
	if d.Layer == "" {
		d.Layer = layer
	}
	var l1Result any
	for _, r := range rs {
		cur, ok := d.Destinations[r.Member]
		if ok && (cur.Status == statusDelivered || api.Final(cur.Status) && !api.Final(r.Status)) {
			continue
		}
		if r.Via == "" {
			r.Via = cur.Via
		}
		if r.Endpoint == "" {
			r.Endpoint = cur.Endpoint
		}
		r.Attempts = max(r.Attempts, cur.Attempts)
		r.Updated = now
		d.Destinations[r.Member] = r
		if r.Status == statusDelivered && r.Result != nil && l1Result == nil {
			l1Result = r.Result
		}
	}
	d.Recount(now)
	if err := setDelivery(e, d); err != nil {
		return false, err
	}
	if d.Layer == L1 && l1Result != nil {
		e.SetAttr(msgResult, l1Result)
	}
	return d.Done() && !wasDone, nil
}

// deliveryOf reads a message's delivery attribute; the zero Delivery when
// it has none.
func deliveryOf(e *occi.Entity) (api.Delivery, error) {
	v, ok := e.Attr(msgDelivery)
	if !ok || v == nil {
		return api.Delivery{}, nil
	}
	d, err := api.DeliveryFrom(v)
	if err != nil {
		return d, fmt.Errorf("message %s: %s: %w", e.ID, msgDelivery, err)
	}
	return d, nil
}

// setDelivery writes d as a message's delivery attribute.
func setDelivery(e *occi.Entity, d api.Delivery) error {
	e.SetAttr(msgDelivery, d.Generic())
	return nil
}

// waiters wakes requests waiting for a message's outcome (Prefer: wait).
type waiters struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

// watch returns a channel closed at the next update of the message at
// location, and a function to stop waiting.
func (w *waiters) watch(location string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string][]chan struct{}{}
	}
	w.m[location] = append(w.m[location], ch)
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.m[location]
		if i := slices.Index(list, ch); i >= 0 {
			w.m[location] = slices.Delete(list, i, i+1)
			if len(w.m[location]) == 0 {
				delete(w.m, location)
			}
		}
	}
}

func (w *waiters) notify(location string) {
	w.mu.Lock()
	list := w.m[location]
	delete(w.m, location)
	w.mu.Unlock()
	for _, ch := range list {
		close(ch)
	}
}
