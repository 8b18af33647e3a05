package broker

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/layers"
)

// deliverer drains one stream of the outbox: the entries for one peer on
// one layer. It owns a layers.Stream to the peer (one goroutine per
// socket, as the ZeroMQ guide has it), opens a session, keeps up to a
// window of entries in flight in batches, and hands every acknowledged or
// expired entry to the recorder, which deletes it with its outcome. A
// broken connection or a silent peer closes the stream: what was in flight
// goes back to the front of the queue, and the deliverer reconnects after
// a capped exponential backoff with jitter, until each entry expires.
type deliverer struct {
	b   *Broker
	key streamKey
	log logrus.FieldLogger

	wake chan struct{}

	mu sync.Mutex
	// offered are entries committed since run last looked.
	offered []*entry
	// known holds the ids of the entries queued, in flight or waiting for
	// the recorder to delete them, so a read of the store does not take
	// them twice.
	known map[string]bool
	// dropped holds, while a refill reads the store, the ids dropped from
	// known meanwhile (deleted by the recorder, or moved): the read may
	// have seen them before they went, and must not queue them again.
	dropped map[string]bool
	// state is what the deliverer is doing, for the messages' readers.
	state peerState
	// retracted are entries moved to other streams, by id, with the
	// revision moved, to drop from the queue and the batches in flight
	// (which run owns).
	retracted map[string]string
	// reread asks run to read the store again: another server sharing it
	// wrote to this stream (see recheck).
	reread bool
	// relayed tells that entries naming members behind the peer were
	// offered since rerouteStranded last looked.
	relayed bool

	// Owned by run.
	queue []*entry
	// moved are the retracted entries that were in flight, by id, with
	// the revision moved: a batch given up on does not send them again.
	moved    map[string]string
	backlog  bool // the store may hold entries that are not in queue
	stream   *layers.Stream
	endpoint string // the peer's socket, as last dialled
	peerMax  int    // the peer's size limit, when it published one
	self     memberInfo
	session  string
	syncReq  uint64 // the stream request of the session's sync
	syncSent time.Time
	synced   bool
	next     uint64 // sequence number of the next entry sent
	inflight []*batch
	failures int
	retryAt  time.Time
	// pausedUntil holds back new batches after the peer said it is busy.
	pausedUntil time.Time
	// expired is when the queue was last looked at for expired entries,
	// leaseChecked when the stream's lease was.
	expired, leaseChecked time.Time
	lastUsed              time.Time
}

// batch is one deliver request in flight.
type batch struct {
	req     uint64 // the Stream's request number
	first   uint64 // the first entry's sequence number
	entries []*entry
	sent    time.Time
}

// peerState tells a message's readers why its entries to a peer are still
// pending.
type peerState struct {
	Failing  bool
	Reason   string
	Since    time.Time
	Failures int
}

// Deliverer tuning that is not configuration.
const (
	// busyPause is how long a deliverer waits after its peer refused a
	// batch for a full queue.
	busyPause = 50 * time.Millisecond
	// idleClose closes the stream of a deliverer with nothing to send.
	idleClose = time.Minute
	// maxQueued bounds the entries a deliverer holds in memory, in
	// windows; the rest stay in the store until it is their turn.
	maxQueued = 8
	// expireEvery is how often the queue is looked at for entries past
	// their expiry.
	expireEvery = 100 * time.Millisecond
)

func newDeliverer(b *Broker, k streamKey) *deliverer {
	return &deliverer{b: b, key: k, log: b.log.WithField("stream", k.String()),
		wake: make(chan struct{}, 1), known: map[string]bool{}, backlog: true}
}

// offer hands the deliverer entries just committed.
func (d *deliverer) offer(entries ...*entry) {
	d.mu.Lock()
	d.offered = append(d.offered, entries...)
	for _, e := range entries {
		if slices.ContainsFunc(e.To, func(id string) bool { return id != d.key.peer }) {
			d.relayed = true
		}
	}
	d.mu.Unlock()
	d.poke()
}

// takeRelayed reports whether entries naming members behind the peer were
// offered since it was last called.
func (d *deliverer) takeRelayed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.relayed
	d.relayed = false
	return r
}

// markRelayed asks the next takeRelayed to report true.
func (d *deliverer) markRelayed() {
	d.mu.Lock()
	d.relayed = true
	d.mu.Unlock()
}

func (d *deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// retract takes back the versions of entries (id and revision) that moved
// to other streams, wholly or in part: those queued are dropped; one in
// flight is settled by its answer, and is not sent again if none comes. An
// entry rewritten with the destinations that stay is offered again after.
func (d *deliverer) retract(entries ...*entry) {
	d.mu.Lock()
	if d.retracted == nil {
		d.retracted = map[string]string{}
	}
	for _, e := range entries {
		d.retracted[e.id] = e.rev
		d.untrack(e.id)
	}
	d.offered = slices.DeleteFunc(d.offered, func(e *entry) bool { _, gone := d.retracted[e.id]; return gone })
	d.mu.Unlock()
	d.poke()
}

// expects reports whether the entry id is one the deliverer holds or was
// offered, so a change feed reporting it brings nothing new.
func (d *deliverer) expects(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known[id] {
		return true
	}
	for _, e := range d.offered {
		if e.id == id {
			return true
		}
	}
	return false
}

// recheck makes the deliverer read its stream from the store again: a
// server sharing the store wrote entries this one was not offered.
func (d *deliverer) recheck() {
	d.mu.Lock()
	d.reread = true
	d.mu.Unlock()
	d.poke()
}

// forget drops ids the recorder deleted.
func (d *deliverer) forget(ids ...string) {
	d.mu.Lock()
	for _, id := range ids {
		d.untrack(id)
	}
	d.mu.Unlock()
}

// untrack removes id from known, noting it for a refill under way. d.mu is
// held.
func (d *deliverer) untrack(id string) {
	delete(d.known, id)
	if d.dropped != nil {
		d.dropped[id] = true
	}
}

// status returns the deliverer's state.
func (d *deliverer) status() peerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// idle reports whether the deliverer has nothing left to deliver.
func (d *deliverer) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.known) == 0 && len(d.offered) == 0
}

// run delivers until ctx ends.
func (d *deliverer) run(ctx context.Context) {
	defer d.closeStream()
	for ctx.Err() == nil {
		d.take()
		if d.backlog && len(d.queue) < d.b.cfg.Window {
			if err := d.refill(ctx); err != nil && ctx.Err() == nil {
				d.log.WithError(err).Warn("outbox: reading pending entries")
				d.sleep(ctx, time.Second)
				continue
			}
		}
		if now := time.Now(); now.Sub(d.expired) >= expireEvery {
			d.expire(now)
			d.expired = now
		}
		if len(d.queue) == 0 && len(d.inflight) == 0 {
			d.rest(ctx)
			continue
		}
		if d.stream == nil {
			if wait := time.Until(d.retryAt); wait > 0 {
				d.sleep(ctx, min(wait, time.Second))
				continue
			}
			if !d.leased(ctx) {
				// Another server delivers this stream; look again later,
				// and read the store then, since it may have delivered
				// what this one holds in memory.
				d.drop()
				d.sleep(ctx, leaseRetry)
				continue
			}
			d.leaseChecked = time.Now()
			if err := d.connect(ctx); err != nil {
				d.fail(err)
				continue
			}
		}
		if d.b.cfg.Leases != nil && time.Since(d.leaseChecked) > leaseRetry {
			d.leaseChecked = time.Now()
			if !d.leased(ctx) {
				// Taken over (this server paused past the lease): stop,
				// and leave the stream to the holder.
				d.log.Warn("outbox: the stream's lease went to another server")
				d.closeStream()
				d.drop()
				continue
			}
		}
		if d.synced && time.Now().After(d.pausedUntil) {
			if err := d.fill(); err != nil {
				d.fail(err)
				continue
			}
		}
		d.receive()
	}
}

// take moves the offered entries into the queue, keeping it in key order
// and within its bound.
func (d *deliverer) take() {
	d.mu.Lock()
	offered := d.offered
	d.offered = nil
	if len(d.retracted) > 0 {
		gone := d.retracted
		d.retracted = nil
		d.queue = slices.DeleteFunc(d.queue, func(e *entry) bool { _, ok := gone[e.id]; return ok })
		for id := range gone {
			// A refill since the retraction may have queued the version
			// rewritten for this stream, just dropped: the one offered
			// after the retraction takes its place.
			delete(d.known, id)
		}
		for _, b := range d.inflight {
			for _, e := range b.entries {
				if rev, ok := gone[e.id]; ok && rev == e.rev {
					if d.moved == nil {
						d.moved = map[string]string{}
					}
					d.moved[e.id] = rev
				}
			}
		}
	}
	if d.reread {
		d.reread, d.backlog = false, true
	}
	for _, e := range offered {
		if !d.known[e.id] {
			d.known[e.id] = true
			d.queue = append(d.queue, e)
		}
	}
	if limit := maxQueued * d.b.cfg.Window; len(d.queue) > limit {
		// The rest waits in the store, read again when there is room.
		for _, e := range d.queue[limit:] {
			delete(d.known, e.id)
		}
		d.queue = d.queue[:limit]
		d.backlog = true
	}
	d.mu.Unlock()
	if len(offered) > 0 && !slices.IsSortedFunc(d.queue, byID) {
		slices.SortStableFunc(d.queue, byID)
	}
}

func byID(a, b *entry) int { return strings.Compare(a.id, b.id) }

// refill reads the stream's pending entries from the store, from the
// first: entries committed out of key order are found too.
func (d *deliverer) refill(ctx context.Context) error {
	d.mu.Lock()
	limit := 2*d.b.cfg.Window + len(d.known)
	d.dropped = map[string]bool{}
	d.mu.Unlock()
	docs, err := d.b.st.Scan(ctx, d.key.prefix(), "", limit)
	d.mu.Lock()
	dropped := d.dropped
	d.dropped = nil
	if err != nil {
		d.mu.Unlock()
		return err
	}
	for _, doc := range docs {
		if d.known[doc.ID] || dropped[doc.ID] {
			continue
		}
		e, err := decodeEntry(doc)
		if err != nil {
			d.log.WithError(err).Error("outbox: skipping an unreadable entry")
			continue
		}
		d.known[e.id] = true
		d.queue = append(d.queue, e)
	}
	d.mu.Unlock()
	slices.SortStableFunc(d.queue, byID)
	d.backlog = len(docs) == limit
	return nil
}

// expire hands the queued entries past their expiry to the recorder.
func (d *deliverer) expire(now time.Time) {
	kept := d.queue[:0]
	var expired []outcome
	for _, e := range d.queue {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			reason := fmt.Sprintf("expired at %s before %s acknowledged it", e.Expires.Format(time.RFC3339), d.key.peerName())
			if why := d.blocker(); why != "" {
				reason += " (last attempt: " + why + ")"
			}
			o := d.b.outcomeOf(e, statusExpired, reason)
			for i := range o.results {
				if o.results[i].Endpoint == "" {
					o.results[i].Endpoint = d.endpoint
				}
			}
			expired = append(expired, o)
			continue
		}
		kept = append(kept, e)
	}
	d.queue = kept
	if len(expired) > 0 {
		d.b.rec.add(expired...)
	}
}

// leaseRetry is how often a deliverer whose stream another server holds
// looks whether it may take it.
const leaseRetry = 2 * time.Second

// leased reports whether this server may deliver the stream: always when
// it is alone on its store, else while it holds the stream's lease.
func (d *deliverer) leased(ctx context.Context) bool {
	if d.b.cfg.Leases == nil {
		return true
	}
	held, err := d.b.cfg.Leases.Acquire(ctx, d.key.prefix())
	if err != nil && ctx.Err() == nil {
		d.log.WithError(err).Warn("outbox: lease of the stream not read")
	}
	return held
}

// drop forgets what the deliverer holds in memory; it reads the store
// again when it delivers next.
func (d *deliverer) drop() {
	if len(d.inflight) > 0 {
		d.void(0)
	}
	d.mu.Lock()
	for _, e := range d.queue {
		delete(d.known, e.id)
	}
	d.offered = nil
	d.mu.Unlock()
	d.queue, d.backlog = nil, true
}

// blocker says why the peer is not taking entries, when it is not.
func (d *deliverer) blocker() string {
	if st := d.status(); st.Failing {
		return st.Reason
	}
	if d.stream != nil && !d.synced {
		return d.stream.Stalled(time.Since(d.syncSent).Round(time.Millisecond)).Error()
	}
	return ""
}

// rest waits for entries while there is nothing to do, closing an unused
// stream after a while.
func (d *deliverer) rest(ctx context.Context) {
	if d.stream != nil && time.Since(d.lastUsed) > idleClose {
		d.closeStream()
	}
	timer := time.NewTimer(idleClose)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-timer.C:
	}
}

// sleep waits for d or ctx; new entries do not cut a backoff short.
func (d *deliverer) sleep(ctx context.Context, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// connect opens a stream to the peer and sends the session's sync.
func (d *deliverer) connect(ctx context.Context) error {
	ms, err := d.b.table.get(ctx)
	if err != nil {
		return err
	}
	if ms.local == nil {
		return errors.New("this server has no local member")
	}
	t := layers.Target{Endpoint: d.key.endpoint}
	if d.key.peer != "" {
		m := ms.byID[d.key.peer]
		if m == nil {
			return fmt.Errorf("member %s is not known here (any more)", d.key.peer)
		}
		if t.Endpoint = m.Sockets[d.key.layer]; t.Endpoint == "" {
			return fmt.Errorf("member %s has no %s socket", d.key.peer, d.key.layer)
		}
		t.Key, d.peerMax = m.PublicKey, m.MaxMessageBytes
	} else if m := ms.bySocket(t.Endpoint); m != nil {
		d.peerMax = m.MaxMessageBytes
	}
	d.self, d.endpoint = ms.local.info(), t.Endpoint
	d.self.PublicKey, d.self.MaxMessageBytes = d.b.publicKey(), int(d.b.cfg.MaxMessageSize)
	if d.b.cfg.Curve {
		if t.Key, err = d.b.dialKey(ctx, ms, t.Key, t.Endpoint); err != nil {
			return err
		}
	}
	s, err := d.b.direct.OpenStreamTo(t)
	if err != nil {
		return err
	}
	var id [8]byte
	_, _ = crand.Read(id[:]) // crypto/rand.Read never fails.
	d.stream, d.session, d.synced, d.inflight = s, hex.EncodeToString(id[:]), false, nil
	payload, err := json.Marshal(envelope{Type: reqSync, Layer: d.key.layer, From: d.self, Session: d.session})
	if err != nil {
		return err
	}
	if d.syncReq, err = s.Send(payload); err != nil {
		return err
	}
	d.syncSent, d.lastUsed = time.Now(), time.Now()
	return nil
}

// outEntry is an entry as a deliver request carries it, its payload
// passed through as stored.
type outEntry struct {
	Seq     uint64          `json:"seq"`
	Kind    string          `json:"kind"`
	To      []string        `json:"to"`
	Hops    int             `json:"hops"`
	Expires time.Time       `json:"expires"`
	Message json.RawMessage `json:"message,omitempty"`
	Receipt json.RawMessage `json:"receipt,omitempty"`
}

// outEnvelope is a deliver request as the sender writes it.
type outEnvelope struct {
	Type    string     `json:"type"`
	Layer   Layer      `json:"layer"`
	From    memberInfo `json:"from"`
	Session string     `json:"session"`
	Entries []outEntry `json:"entries"`
}

// fill sends queued entries in batches until the window is full.
func (d *deliverer) fill() error {
	inFlight := 0
	for _, b := range d.inflight {
		inFlight += len(b.entries)
	}
	for len(d.queue) > 0 && inFlight < d.b.cfg.Window {
		n := min(len(d.queue), d.b.cfg.Batch, d.b.cfg.Window-inFlight)
		// Within the size limit of layer messages.
		if n = d.fitting(n); n == 0 {
			continue
		}
		entries := d.queue[:n:n]
		env := outEnvelope{Type: reqDeliver, Layer: d.key.layer, From: d.self, Session: d.session, Entries: make([]outEntry, n)}
		for i, e := range entries {
			oe := outEntry{Seq: d.next + uint64(i), Kind: e.Kind, To: e.To, Hops: e.Hops, Expires: e.Expires}
			if e.Kind == kindReceipt {
				oe.Receipt = e.Payload
			} else {
				oe.Message = e.Payload
			}
			env.Entries[i] = oe
		}
		payload, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("encode a batch: %w", err)
		}
		req, err := d.stream.Send(payload)
		if err != nil {
			return err
		}
		for _, e := range entries {
			e.attempts++
		}
		d.inflight = append(d.inflight, &batch{req: req, first: d.next, entries: entries, sent: time.Now()})
		d.queue = d.queue[n:]
		d.next += uint64(n)
		inFlight += n
		d.lastUsed = time.Now()
	}
	return nil
}

// receive waits briefly for a reply and handles it, and gives up on a
// peer that stays silent.
func (d *deliverer) receive() {
	wait := 50 * time.Millisecond
	if len(d.queue) > 0 && d.synced {
		// Room may open in the window any moment.
		wait = 2 * time.Millisecond
	}
	rep, err := d.stream.Recv(wait)
	if err != nil {
		d.fail(err)
		return
	}
	if rep != nil {
		d.handle(rep)
		return
	}
	oldest := d.syncSent
	if d.synced {
		if len(d.inflight) == 0 {
			return
		}
		oldest = d.inflight[0].sent
	}
	waited := time.Since(oldest)
	// A peer that is not even connected is given up on sooner than one
	// that is busy answering.
	limit := d.b.cfg.AckTimeout
	if !d.stream.Connected() {
		limit = min(limit, d.b.cfg.Timeout)
	}
	if waited > limit {
		d.fail(d.stream.Stalled(waited.Round(time.Millisecond)))
	}
}

// handle takes one reply.
func (d *deliverer) handle(rep *layers.StreamReply) {
	if rep.Seq == d.syncReq && !d.synced {
		var sr syncReply
		switch {
		case rep.Err != nil:
			d.fail(rep.Err)
		case json.Unmarshal(rep.Body, &sr) != nil || sr.Expect == 0:
			d.fail(fmt.Errorf("unreadable sync answer from %s: %.200s", d.key.String(), rep.Body))
		default:
			d.next, d.synced = sr.Expect, true
		}
		return
	}
	i := slices.IndexFunc(d.inflight, func(b *batch) bool { return b.req == rep.Seq })
	if i < 0 {
		// A batch given up on already, or an answer to nothing sent.
		d.log.WithField("request", rep.Seq).Debug("ignoring an answer to no batch in flight")
		return
	}
	b := d.inflight[i]
	if rep.Err != nil {
		if rep.Err.Kind == layers.KindRefused {
			// The peer's queue is full: send again shortly, in order.
			d.void(i)
			d.pausedUntil = time.Now().Add(busyPause)
			return
		}
		d.fail(rep.Err)
		return
	}
	var dr deliverReply
	if err := json.Unmarshal(rep.Body, &dr); err != nil {
		d.fail(fmt.Errorf("unreadable answer from %s: %w", d.key.String(), err))
		return
	}
	switch {
	case dr.Resync:
		d.fail(fmt.Errorf("%s lost the session (it restarted)", d.key.String()))
		return
	case dr.Expect != 0:
		// An earlier batch did not arrive: send again from there.
		j := slices.IndexFunc(d.inflight, func(b *batch) bool { return b.first >= dr.Expect })
		if j < 0 || d.inflight[j].first != dr.Expect {
			d.fail(fmt.Errorf("%s expects entry %d, which was not sent in this session", d.key.String(), dr.Expect))
			return
		}
		d.void(j)
		return
	}
	results := make(map[uint64][]destResult, len(dr.Results))
	for _, r := range dr.Results {
		if r.Seq < b.first || r.Seq >= b.first+uint64(len(b.entries)) {
			d.log.WithField("seq", r.Seq).Warn("peer acknowledged an entry not in the batch; ignored")
			continue
		}
		results[r.Seq] = r.Results
	}
	outs := make([]outcome, 0, len(b.entries))
	for k, e := range b.entries {
		rs, ok := results[b.first+uint64(k)]
		if !ok {
			d.log.WithField("seq", b.first+uint64(k)).Warn("peer acknowledged a batch without the result of one of its entries; sending it again")
			d.queue = append([]*entry{e}, d.queue...)
			continue
		}
		outs = append(outs, d.b.outcomeFromResults(e, d.stream.Endpoint(), rs))
	}
	d.inflight = slices.Delete(d.inflight, i, i+1)
	if len(d.inflight) == 0 {
		d.moved = nil
	}
	d.b.rec.add(outs...)
	d.b.cfg.Metrics.contact(d.key.peer, true)
	if d.failures > 0 {
		d.log.WithField("after", d.failures).Info("peer reachable again")
	}
	d.failures = 0
	d.mu.Lock()
	d.state = peerState{}
	d.mu.Unlock()
}

// void gives up on the batches from i on: their entries go back to the
// front of the queue, in order, and are numbered again from the first.
func (d *deliverer) void(i int) {
	var back []*entry
	for _, b := range d.inflight[i:] {
		back = append(back, b.entries...)
	}
	d.next = d.inflight[i].first
	d.inflight = d.inflight[:i]
	back = slices.DeleteFunc(back, func(e *entry) bool { rev, ok := d.moved[e.id]; return ok && rev == e.rev })
	if len(d.inflight) == 0 {
		d.moved = nil
	}
	d.queue = append(back, d.queue...)
}

// fail closes the stream after err, puts what was in flight back in the
// queue and schedules the next attempt.
func (d *deliverer) fail(err error) {
	if len(d.inflight) > 0 {
		d.void(0)
	}
	d.closeStream()
	d.failures++
	d.b.cfg.Metrics.contact(d.key.peer, false)
	if errors.Is(err, layers.ErrAuth) {
		d.b.cfg.Metrics.refusedByPeer(d.key.layer)
	}
	backoff := min(d.b.cfg.RetryMin<<min(d.failures-1, 20), d.b.cfg.RetryMax)
	// Jitter spreads the retries of members that lost the same peer.
	backoff = backoff/2 + rand.N(backoff/2+1)
	d.retryAt = time.Now().Add(backoff)
	d.mu.Lock()
	if !d.state.Failing {
		d.state.Since = time.Now().UTC()
	}
	d.state.Failing, d.state.Reason, d.state.Failures = true, err.Error(), d.failures
	d.mu.Unlock()
	log := d.log.WithError(err).WithField("retry_in", backoff.Round(time.Millisecond))
	if d.failures == 1 {
		log.Warn("peer unreachable; its entries stay queued")
	} else {
		log.Debug("peer still unreachable")
	}
}

func (d *deliverer) closeStream() {
	if d.stream != nil {
		d.stream.Close()
		d.stream = nil
	}
	d.synced, d.inflight, d.moved = false, nil, nil
}
