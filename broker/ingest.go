package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// handler answers requests arriving on layer l.
func (b *Broker) handler(l Layer) layers.Handler {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		var env envelope
		if err := json.Unmarshal(payload, &env); err != nil {
			return nil, fmt.Errorf("malformed envelope: %w", err)
		}
		ms, err := b.table.get(ctx)
		if err != nil {
			return nil, err
		}
		if ms.local == nil {
			return nil, errors.New("this server has no local member")
		}
		if peer, ok := layers.PeerFrom(ctx); ok || b.cfg.Curve {
			if err := b.authorize(ctx, l, peer, ms, &env); err != nil {
				b.refused(l, refusedIdentity, peer, err.Error())
				return nil, err
			}
		}
		var reply any
		switch env.Type {
		case reqDescribe:
			if l != L1 {
				return nil, fmt.Errorf("discovery runs on l1, not %s", l)
			}
			reply, err = b.onDescribe(ctx, ms.local.e, env)
		case reqSync:
			if env.Session == "" || env.From.ID == "" {
				return nil, errors.New("sync without a session or a sender")
			}
			reply = syncReply{Expect: b.sessions.open(env.Session, env.From.ID, env.key, l)}
		case reqDeliver:
			if env.Layer != l {
				return nil, fmt.Errorf("a %s delivery cannot be taken on layer %s", env.Layer, l)
			}
			reply, err = b.ingest(ctx, ms, env)
		default:
			return nil, fmt.Errorf("unknown request type %q", env.Type)
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(reply)
	}
}

// sessions are the deliver sessions peers opened here: for each, the
// sequence number expected next. They live in memory: a peer whose session
// is lost (this member restarted) opens another.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

type session struct {
	mu     sync.Mutex // one batch at a time
	from   string
	key    string // the CURVE key that opened it; its batches come from it
	layer  Layer
	expect uint64
	used   time.Time
}

// sessionIdle is how long an unused session is kept.
const sessionIdle = time.Hour

func (s *sessions) open(id, from, key string, l Layer) uint64 {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	for k, v := range s.m {
		if now.Sub(v.used) > sessionIdle {
			delete(s.m, k)
		}
	}
	s.m[id] = &session{from: from, key: key, layer: l, expect: 1, used: now}
	return 1
}

func (s *sessions) get(id, from, key string, l Layer) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil || ss.from != from || ss.key != key || ss.layer != l {
		return nil
	}
	ss.used = time.Now()
	return ss
}

// ingest takes a batch of entries from a peer's session: in order, in one
// store transaction, answering only once it is committed.
func (b *Broker) ingest(ctx context.Context, ms *members, env envelope) (deliverReply, error) {
	ss := b.sessions.get(env.Session, env.From.ID, env.key, env.Layer)
	if ss == nil {
		return deliverReply{Resync: true}, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(env.Entries) == 0 {
		return deliverReply{}, nil
	}
	first := env.Entries[0].Seq
	for i, e := range env.Entries {
		if e.Seq != first+uint64(i) {
			return deliverReply{}, fmt.Errorf("entries %d and %d of a batch are not consecutive", e.Seq-1, e.Seq)
		}
	}
	switch {
	case first > ss.expect:
		return deliverReply{Expect: ss.expect}, nil
	case first < ss.expect:
		// Sent again within one session: never done by a sender that
		// follows the protocol.
		return deliverReply{Resync: true}, nil
	}
	in := &intake{b: b, ms: ms, self: ms.local, env: env, taken: map[string]destResult{}}
	defer in.release()
	if err := in.prepare(ctx); err != nil {
		return deliverReply{}, err
	}
	for _, e := range env.Entries {
		in.take(ctx, e)
	}
	if err := in.commit(ctx); err != nil {
		return deliverReply{}, err
	}
	ss.expect = first + uint64(len(env.Entries))
	in.after()
	return deliverReply{Results: in.results}, nil
}

// intake is one batch being taken.
type intake struct {
	b    *Broker
	ms   *members
	self *member
	env  envelope

	results []entryResult
	cur     int // the entry being taken: its index in results
	writes  []store.Write
	// owners[i] is the result writes[i] belongs to, so that a write found
	// unneeded at commit (another copy of the message got there first)
	// makes that result a duplicate.
	owners   []resultRef
	entries  []*entry // new outbox entries: relays and receipts
	receipts []outcome
	received []receivedMsg
	taken    map[string]destResult
	claims   []func()
	// known holds, read once for the batch, the stored copies and seen
	// records of the messages the batch brings here.
	known map[string]store.Doc
}

// resultRef points at one destination result of the batch; entry -1 is
// none.
type resultRef struct{ entry, dest int }

var noResult = resultRef{entry: -1}

// receivedMsg is a message taken here, for events and metrics.
type receivedMsg struct {
	e   *occi.Entity
	ref resultRef
}

func (in *intake) result(r resultRef) *destResult { return &in.results[r.entry].Results[r.dest] }

func (in *intake) release() {
	for _, r := range in.claims {
		r()
	}
}

// put adds a result to the entry being taken.
func (in *intake) put(r destResult) resultRef {
	in.results[in.cur].Results = append(in.results[in.cur].Results, r)
	return resultRef{entry: in.cur, dest: len(in.results[in.cur].Results) - 1}
}

func (in *intake) add(w store.Write, owner resultRef) {
	in.writes = append(in.writes, w)
	in.owners = append(in.owners, owner)
}

// prepare claims the messages the batch brings to this member, in id
// order (so that batches sharing messages cannot deadlock), and reads what
// is stored of them in one go.
func (in *intake) prepare(ctx context.Context) error {
	var ids []string
	for _, w := range in.env.Entries {
		if w.Kind != kindMessage || w.Message == nil || !idOK(w.Message.ID) {
			continue
		}
		if len(w.To) == 0 || slices.Contains(w.To, in.self.ID) {
			ids = append(ids, w.Message.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	keys := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		release, err := in.b.claim(ctx, MessageLocation+id)
		if err != nil {
			return err
		}
		in.claims = append(in.claims, release)
		keys = append(keys, MessageLocation+id, seenPrefix+id)
	}
	if len(keys) == 0 {
		return nil
	}
	var err error
	if in.known, err = store.GetMany(ctx, in.b.st, keys); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// take handles one entry, putting its results.
func (in *intake) take(ctx context.Context, w wireEntry) {
	in.cur = len(in.results)
	in.results = append(in.results, entryResult{Seq: w.Seq})
	switch {
	case w.Kind == kindMessage && w.Message != nil:
		in.takeMessage(ctx, w)
	case w.Kind == kindReceipt && w.Receipt != nil:
		in.takeReceipt(ctx, w)
	default:
		in.failAll(w, fmt.Sprintf("malformed entry: kind %q without its %s", w.Kind, w.Kind))
	}
}

// failAll refuses the entry for every destination.
func (in *intake) failAll(w wireEntry, reason string) {
	to := w.To
	if len(to) == 0 {
		to = []string{in.self.ID}
	}
	for _, dst := range to {
		in.put(destResult{Member: dst, Status: statusFailed, Reason: reason})
	}
}

// takeMessage keeps the part of a message entry meant for this member and
// relays the rest.
func (in *intake) takeMessage(ctx context.Context, w wireEntry) {
	id := w.Message.ID
	// The id becomes the stored message's location: it must be one the
	// OCCI interface would have accepted.
	if !idOK(id) {
		in.failAll(w, fmt.Sprintf("message id %q: want letters, digits and _.:~@-, starting with a letter or digit", id))
		return
	}
	msg, err := decodeMessage(w.Message.entity())
	if err != nil {
		in.failAll(w, fmt.Sprintf("message %s: %v", id, err))
		return
	}
	if err := in.checkPath(msg); err != nil {
		in.failAll(w, err.Error())
		return
	}
	mine := len(w.To) == 0
	var others []string
	for _, dst := range w.To {
		if dst == in.self.ID {
			mine = true
		} else {
			others = append(others, dst)
		}
	}
	if mine {
		in.keep(ctx, msg, w)
	}
	if len(others) > 0 {
		in.relay(msg, w, others)
	}
}

// keep stores (when storable) and runs (when executable) a message that
// reached its destination, once: a copy already taken, by id, is
// acknowledged as a duplicate with the result of the first.
func (in *intake) keep(ctx context.Context, msg message, w wireEntry) {
	self := in.self.ID
	if prior, ok := in.taken[msg.ID]; ok {
		prior.Duplicate, prior.Stored, prior.Executed = true, false, false
		in.put(prior)
		return
	}
	path := append(slices.Clone(msg.Path), self)
	res := destResult{Member: self, Status: statusDelivered, Path: path}
	dup, prior := in.seenBefore(msg)
	if dup {
		res.Duplicate = true
		if prior != nil {
			res.Result, _ = prior.Attr(msgResult)
		}
		in.taken[msg.ID] = res
		in.put(res)
		return
	}
	e := msg.e
	e.SetAttr(msgPath, toAny(path))
	if msg.Executable {
		res.Result, res.Executed = in.b.run(ctx, self, e), true
		e.SetAttr(msgResult, res.Result)
		e.SetAttr(msgExecuted, now())
	}
	write := seenWrite(msg.ID, w.Expires)
	if msg.Storable {
		d, err := occi.EncodeEntity(e)
		if err != nil {
			in.put(destResult{Member: self, Status: statusFailed, Reason: err.Error()})
			return
		}
		write, res.Stored = store.Put(d), true
	}
	ref := in.put(res)
	in.add(write, ref)
	if origin := originOf(msg); origin != "" && origin != in.env.From.ID && origin != self {
		// Reached through others: the origin hears of it by receipt.
		if re, err := in.receiptTo(msg.ID, origin, w.Expires, res); err != nil {
			in.b.log.WithError(err).WithField("message", msg.ID).Warn("no receipt for the origin")
		} else {
			in.entries = append(in.entries, re)
		}
	}
	in.received = append(in.received, receivedMsg{e: e, ref: ref})
	in.taken[msg.ID] = res
}

// originOf is the member that sent msg first.
func originOf(msg message) string {
	if msg.Origin != "" {
		return msg.Origin
	}
	if len(msg.Path) > 0 {
		return msg.Path[0]
	}
	return ""
}

// relay queues a message for the members behind this one, one entry per
// next hop.
func (in *intake) relay(msg message, w wireEntry, to []string) {
	self := in.self.ID
	fail := func(reason string, ids ...string) {
		for _, id := range ids {
			in.put(destResult{Member: id, Status: statusFailed, Reason: reason, Via: self})
		}
	}
	if slices.Contains(msg.Path, self) {
		fail(fmt.Sprintf("loop: the message already passed through %s", self), to...)
		return
	}
	if limit := msg.EffectiveHopLimit(); w.Hops+1 >= limit {
		fail(fmt.Sprintf("hop limit %d reached at %s", limit, self), to...)
		return
	}
	groups, order := map[string][]string{}, []string(nil)
	for _, id := range to {
		m := in.ms.byID[id]
		if m == nil || m.Local {
			fail(fmt.Sprintf("%s does not know member %s", self, id), id)
			continue
		}
		hop := in.b.hopAvoiding(m, msg.Path)
		if in.ms.byID[hop] == nil {
			fail(fmt.Sprintf("%s does not know %s, the next hop to %s", self, hop, id), id)
			continue
		}
		if _, ok := groups[hop]; !ok {
			order = append(order, hop)
		}
		groups[hop] = append(groups[hop], id)
	}
	if len(order) == 0 {
		return
	}
	fwd := *w.Message
	fwd.Attributes = cloneAttrs(w.Message.Attributes)
	(&occi.Entity{Attributes: fwd.Attributes}).SetAttr(msgPath, toAny(append(slices.Clone(msg.Path), self)))
	for _, hop := range order {
		e, err := in.b.newEntry(streamKey{layer: in.env.Layer, peer: hop}, kindMessage, groups[hop], w.Hops+1, w.Expires, "", fwd)
		if err != nil {
			fail(err.Error(), groups[hop]...)
			continue
		}
		e.MessageID, e.Origin = msg.ID, originOf(msg)
		in.entries = append(in.entries, e)
		for _, id := range groups[hop] {
			in.put(destResult{Member: id, Status: statusForwarded, Via: self})
		}
	}
	in.b.cfg.Metrics.forwardedOn(in.env.Layer)
}

// hopAvoiding is the next hop towards member m for a message that has
// passed the members on path. A route leading back along the path is
// stale (the member there routes through this one, as this one did
// through it, for a moment after a route changed): another route is taken
// if one avoids the path, else the entry waits on m's own stream, for m to
// answer or for the reroute to move it once a route appears. Sent back, it
// would be refused as a loop and fail for good.
func (b *Broker) hopAvoiding(m *member, path []string) string {
	hop := m.nextHop()
	if !slices.Contains(path, hop) {
		return hop
	}
	if r, ok := b.routes.routeAvoiding(m.ID, path); ok {
		return r.via
	}
	return m.ID
}

// takeReceipt keeps a receipt for a message this member sent, or passes
// it on towards the member that did.
func (in *intake) takeReceipt(ctx context.Context, w wireEntry) {
	rc := *w.Receipt
	self := in.self.ID
	ack := func(status, reason string) { in.put(destResult{Member: self, Status: status, Reason: reason}) }
	if !idOK(rc.Message) || !idOK(rc.Result.Member) {
		ack(statusFailed, "malformed receipt")
		return
	}
	if rc.Origin != self {
		e, err := in.receiptTo(rc.Message, rc.Origin, w.Expires, rc.Result)
		if err != nil {
			ack(statusFailed, err.Error())
			return
		}
		e.Hops = w.Hops + 1
		in.entries = append(in.entries, e)
		ack(statusForwarded, "")
		return
	}
	// Recorded at once, folded into the message by the recorder.
	id := receiptPrefix + rc.Message + "/" + rc.Result.Member
	body, err := json.Marshal(receiptDoc{Doc: docReceipt, Message: MessageLocation + rc.Message, Layer: in.env.Layer, Result: rc.Result})
	if err != nil {
		ack(statusFailed, err.Error())
		return
	}
	doc := store.Doc{ID: id, Body: body}
	if old, err := in.b.st.Get(ctx, id); err == nil {
		// A receipt for the same destination not folded in yet: the
		// newer one replaces it.
		doc.Rev = old.Rev
	}
	in.add(store.Put(doc), noResult)
	in.receipts = append(in.receipts, outcome{receipt: &store.Doc{ID: id}, message: MessageLocation + rc.Message,
		layer: in.env.Layer, results: []destResult{rc.Result}})
	ack(statusDelivered, "")
}

// receiptDoc is a receipt waiting to be folded into its message.
type receiptDoc struct {
	Doc     string     `json:"doc"`
	Message string     `json:"message"`
	Layer   Layer      `json:"layer"`
	Result  destResult `json:"result"`
}

// receiptTo builds the entry carrying a receipt towards origin: through
// origin's next hop when this member knows it, else back through the member
// the message came from.
func (in *intake) receiptTo(msgID, origin string, expires time.Time, res destResult) (*entry, error) {
	hop := ""
	if m := in.ms.byID[origin]; m != nil && !m.Local {
		hop = m.nextHop()
	} else if in.ms.byID[in.env.From.ID] != nil {
		hop = in.env.From.ID
	}
	if hop == "" || in.ms.byID[hop] == nil {
		return nil, fmt.Errorf("no route to %s, the origin of %s", origin, msgID)
	}
	return in.b.newEntry(streamKey{layer: in.env.Layer, peer: hop}, kindReceipt, []string{origin}, 0, expires, "",
		receipt{Message: msgID, Origin: origin, Result: res})
}

// receiptEntry builds a receipt towards origin from what this member
// knows, for a relay that failed.
func (b *Broker) receiptEntry(ctx context.Context, l Layer, rc receipt, expires time.Time) (*entry, error) {
	ms, err := b.table.get(ctx)
	if err != nil {
		return nil, err
	}
	m := ms.byID[rc.Origin]
	if m == nil || m.Local {
		return nil, fmt.Errorf("no route to %s, the origin of %s", rc.Origin, rc.Message)
	}
	return b.newEntry(streamKey{layer: l, peer: m.nextHop()}, kindReceipt, []string{rc.Origin}, 0, expires, "", rc)
}

// commit writes the batch in one transaction. A message found stored
// meanwhile (another copy won the race) makes its result a duplicate.
func (in *intake) commit(ctx context.Context) error {
	for _, e := range in.entries {
		w, err := e.write()
		if err != nil {
			return err
		}
		in.add(w, noResult)
	}
	for len(in.writes) > 0 {
		revs, err := in.b.st.Write(ctx, in.writes)
		if err == nil {
			in.setRevs(revs)
			return nil
		}
		var we *store.WriteError
		if !errors.As(err, &we) || !errors.Is(err, store.ErrConflict) || in.owners[we.Index] == noResult {
			return fmt.Errorf("store: %w", err)
		}
		r := in.result(in.owners[we.Index])
		r.Duplicate, r.Stored, r.Executed = true, false, false
		in.writes = slices.Delete(in.writes, we.Index, we.Index+1)
		in.owners = slices.Delete(in.owners, we.Index, we.Index+1)
	}
	return nil
}

// setRevs gives the new entries and receipts their revisions.
func (in *intake) setRevs(revs []string) {
	rev := make(map[string]string, len(revs))
	for i, w := range in.writes {
		rev[w.Doc.ID] = revs[i]
	}
	for _, e := range in.entries {
		e.rev = rev[e.id]
	}
	for _, o := range in.receipts {
		o.receipt.Rev = rev[o.receipt.ID]
	}
}

// after hands on what the committed batch started, and reports it.
func (in *intake) after() {
	b := in.b
	b.enqueue(in.entries)
	b.rec.add(in.receipts...)
	for _, r := range in.received {
		res := *in.result(r.ref)
		if res.Duplicate {
			continue
		}
		b.emitReceived(in.env, r.e, res)
		b.cfg.Metrics.receivedHere(in.env, res)
	}
}

// seenBefore reports whether msg was taken here before: stored, or
// recorded as seen when it was not storable. prior is the stored copy.
func (in *intake) seenBefore(msg message) (bool, *occi.Entity) {
	if d, ok := in.known[msg.e.Location]; ok && msg.Storable {
		prior, err := occi.DecodeEntity(d)
		if err != nil {
			// Stored, if unreadable: still a duplicate.
			return true, nil
		}
		return true, prior
	}
	_, seen := in.known[seenPrefix+msg.ID]
	return seen, nil
}

// seenDoc records a message taken without being stored.
type seenDoc struct {
	Doc     string    `json:"doc"`
	Expires time.Time `json:"expires"`
}

func seenWrite(id string, expires time.Time) store.Write {
	body, _ := json.Marshal(seenDoc{Doc: docSeen, Expires: expires}) // cannot fail: a string and a time
	return store.Put(store.Doc{ID: seenPrefix + id, Body: body})
}

// claim waits until no other delivery of the message at location runs
// here, and makes this one the delivery that runs until release. Copies
// of one message arriving from two peers at once thus find it taken,
// instead of running it twice.
func (b *Broker) claim(ctx context.Context, location string) (release func(), err error) {
	for {
		b.dmu.Lock()
		busy, ok := b.delivering[location]
		if !ok {
			done := make(chan struct{})
			b.delivering[location] = done
			b.dmu.Unlock()
			return func() {
				b.dmu.Lock()
				delete(b.delivering, location)
				b.dmu.Unlock()
				close(done)
			}, nil
		}
		b.dmu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another delivery of %s: %w", location, ctx.Err())
		}
	}
}

// run executes a message, turning an executor error into a result that
// says so: the delivery itself succeeded.
func (b *Broker) run(ctx context.Context, member string, e *occi.Entity) any {
	result, err := b.cfg.Executor.Execute(ctx, member, e)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return result
}

// cloneAttrs copies nested attributes, so two copies of a message can
// diverge.
func cloneAttrs(attrs map[string]any) map[string]any {
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if m, ok := v.(map[string]any); ok {
			out[k] = cloneAttrs(m)
		} else {
			out[k] = v
		}
	}
	return out
}
