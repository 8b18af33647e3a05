package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/store"
)

// Several servers sharing one store (Config.Leases set) share its
// subscriptions: every server reads the change feed, but only the holder
// of a subscription's lease sends its callbacks. The holder reads a feed
// of its own for each subscription it holds, from the position kept with
// the lease, delivers each event before it moves the position on, and
// keeps the position with the lease (written within a second). When it
// stops, the server taking the lease over reads the feed again from there:
// what the first had sent after its last kept position is sent again,
// with the same event ids, since an event's id is derived from what it
// reports (entityEventID, brokerEventID); receivers drop the ids they
// have handled, so each event is handled exactly once.
//
// The broker's events happen on the server that made the delivery, so it
// records them in the store (eventRecorder); every server's feed, and so
// every holder and every /events stream, hears them from there.

// Lease names and timings of the shared subscriptions.
const (
	// leasePrefix starts a subscription's lease name; its location
	// follows.
	leasePrefix = "notify"
	// pruneLease is the lease of the server removing expired events.
	pruneLease = "notify/events"
	// leaseRetry is how often a server that does not hold a
	// subscription's lease asks for it.
	leaseRetry = 2 * time.Second
	// leaseCheck is how often a holder makes sure it still holds it.
	leaseCheck = time.Second
)

// Recorded broker events.
const (
	// eventPrefix starts the id of every recorded event:
	// event/<time in ns>/<event id>, so ids sort by time.
	eventPrefix = "event/"
	docEvent    = "event"
	// eventRetention is how long a recorded event is kept: long enough
	// for a subscription's holder to stop and another to take over.
	eventRetention = time.Hour
	pruneEvery     = time.Minute
	// recordQueue bounds the broker events waiting to be recorded.
	recordQueue = 4096
)

// eventSpace is the UUID namespace of event ids.
var eventSpace = uuid.MustParse("5d6c2e34-0f4b-4c8e-9a3b-2f1e7c9d8a01")

// entityEventID names the event of one change: the document's id and the
// revision it reached, which no other change of it reaches.
func entityEventID(c store.Change) string {
	return uuid.NewSHA1(eventSpace, []byte("entity\x00"+c.ID+"\x00"+c.Rev)).String()
}

// brokerEventID names a broker event by what it reports: its type, the
// message, the member, and for a failure the start of the delivery that
// failed (a message sent again fails anew).
func brokerEventID(be broker.Event) string {
	started := ""
	if be.Type == broker.EventDeliveryFailed && be.Message != nil {
		if v, ok := be.Message.Attr("cmbs.message.delivery"); ok {
			if d, ok := v.(map[string]any); ok {
				started, _ = d["started"].(string)
			}
		}
	}
	if be.Type == MemberDown || be.Type == MemberUp {
		// A member goes down and comes back many times: each change is
		// its own event.
		started = be.Time.UTC().Format(time.RFC3339Nano)
	}
	return uuid.NewSHA1(eventSpace, []byte(be.Type+"\x00"+be.Location+"\x00"+be.Member+"\x00"+started)).String()
}

// leaseName is the lease of the subscription at location.
func leaseName(location string) string { return leasePrefix + location }

// checkpoint is the data kept with a subscription's lease.
type checkpoint struct {
	// Seq is the feed position of the last change the holder handled.
	Seq string `json:"seq"`
}

// eventDoc is a recorded broker event.
type eventDoc struct {
	Doc     string    `json:"doc"`
	Expires time.Time `json:"expires"`
	Event   *Event    `json:"event"`
}

// recordedEvent reads the event a change of a recorded event's document
// reports; nil when it is gone or unreadable.
func (n *Notifier) recordedEvent(ctx context.Context, c store.Change) *Event {
	d, err := n.st.Get(ctx, c.ID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			n.log.WithError(err).WithField("id", c.ID).Warn("recorded event not read")
		}
		return nil
	}
	var ed eventDoc
	if err := json.Unmarshal(d.Body, &ed); err != nil || ed.Event == nil {
		n.log.WithField("id", c.ID).Warn("unreadable recorded event skipped")
		return nil
	}
	return ed.Event
}

// eventRecorder writes the broker's events to the store, in batches, on
// its own goroutine: Emit must not block the delivery path.
type eventRecorder struct {
	n       *Notifier
	queue   chan *Event
	dropped atomic.Int64
}

func newEventRecorder(n *Notifier) *eventRecorder {
	return &eventRecorder{n: n, queue: make(chan *Event, recordQueue)}
}

// add queues ev, dropping it when the queue is full.
func (r *eventRecorder) add(ev *Event) {
	select {
	case r.queue <- ev:
	default:
		if d := r.dropped.Add(1); d == 1 || d%100 == 0 {
			r.n.log.WithField("dropped", d).Warn("broker events not recorded: the queue is full")
		}
	}
}

// run records queued events until the notifier closes.
func (r *eventRecorder) run() {
	defer r.n.wg.Done()
	for {
		select {
		case <-r.n.ctx.Done():
			return
		case ev := <-r.queue:
			r.write(r.n.ctx, r.batch(ev))
		}
	}
}

// batch takes ev and what else is queued, up to 100 events.
func (r *eventRecorder) batch(ev *Event) []*Event {
	evs := []*Event{ev}
	for len(evs) < 100 {
		select {
		case more := <-r.queue:
			evs = append(evs, more)
		default:
			return evs
		}
	}
	return evs
}

// flush records what is still queued, for at most five seconds.
func (r *eventRecorder) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case ev := <-r.queue:
			r.write(ctx, r.batch(ev))
		default:
			return
		}
	}
}

// write records evs in one store write, trying again until ctx ends; an
// event recorded already (an earlier attempt whose answer was lost) is
// left out.
func (r *eventRecorder) write(ctx context.Context, evs []*Event) {
	writes := make([]store.Write, 0, len(evs))
	for _, ev := range evs {
		body, err := json.Marshal(eventDoc{Doc: docEvent, Expires: ev.Time.Add(eventRetention), Event: ev})
		if err != nil {
			r.n.log.WithError(err).WithField("event", ev.ID).Error("broker event not recorded")
			continue
		}
		id := fmt.Sprintf("%s%020d/%s", eventPrefix, ev.Time.UnixNano(), ev.ID)
		writes = append(writes, store.Put(store.Doc{ID: id, Body: body}))
	}
	for attempt := 1; len(writes) > 0 && ctx.Err() == nil; attempt++ {
		_, err := r.n.st.Write(ctx, writes)
		if err == nil {
			return
		}
		var we *store.WriteError
		if errors.As(err, &we) && errors.Is(err, store.ErrConflict) {
			writes = append(writes[:we.Index], writes[we.Index+1:]...)
			continue
		}
		r.n.log.WithError(err).WithField("attempt", attempt).Warn("broker events not recorded; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)):
		}
	}
	if len(writes) > 0 {
		r.n.log.WithField("events", len(writes)).Warn("stopping with broker events unrecorded")
	}
}

// pruneEvents removes the recorded events past their retention, every
// pruneEvery while this server holds the pruning lease, until Close.
func (n *Notifier) pruneEvents() {
	defer n.wg.Done()
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if held, err := n.cfg.Leases.Acquire(n.ctx, pruneLease); err != nil || !held {
			continue
		}
		if err := n.pruneOnce(n.ctx, time.Now()); err != nil && n.ctx.Err() == nil {
			n.log.WithError(err).Warn("pruning recorded events")
		}
	}
}

// pruneOnce removes the events expired at now, oldest first, stopping at
// the first one kept (ids sort by time).
func (n *Notifier) pruneOnce(ctx context.Context, now time.Time) error {
	after := ""
	for {
		docs, err := n.st.Scan(ctx, eventPrefix, after, 200)
		if err != nil {
			return err
		}
		var drop []store.Write
		done := len(docs) < 200
		for _, d := range docs {
			var ed eventDoc
			if err := json.Unmarshal(d.Body, &ed); err == nil && now.Before(ed.Expires) {
				done = true
				break
			}
			drop = append(drop, store.Remove(d.ID, d.Rev))
		}
		if len(drop) > 0 {
			if _, err := n.st.Write(ctx, drop); err != nil {
				return err
			}
		}
		if done || len(docs) == 0 {
			return nil
		}
		after = docs[len(docs)-1].ID
	}
}

// runShared is the worker of a subscription shared among servers: it asks
// for the subscription's lease until it gets it, sends the callbacks while
// it holds it, and asks again when it loses it, until the subscription is
// removed or the notifier closes.
func (s *subscription) runShared() {
	defer s.n.wg.Done()
	defer close(s.done)
	name := leaseName(s.loc)
	leases := s.n.cfg.Leases
	for s.ctx.Err() == nil {
		held, err := leases.Acquire(s.ctx, name)
		if err != nil && s.ctx.Err() == nil {
			s.n.log.WithError(err).WithField("subscription", s.loc).Warn("subscription's lease not read")
		}
		if held {
			s.hold(name)
			continue
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(leaseRetry):
		}
	}
	if !s.final.Load() && leases.Held(name) {
		// Deleted: the lease has nothing left to guard.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = leases.Release(ctx, name) // best effort: an unreleased lease of a deleted subscription only expires
		cancel()
	}
}

// hold sends the subscription's callbacks from its checkpoint while this
// server holds its lease: until the lease is lost, the feed ends, or the
// subscription stops.
func (s *subscription) hold(name string) {
	leases := s.n.cfg.Leases
	var cp checkpoint
	if raw := leases.Data(name); len(raw) > 0 {
		_ = json.Unmarshal(raw, &cp) // unreadable: from the creation, or now
	}
	since := cp.Seq
	if since == "" {
		since = s.startSeq
	}
	hctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	ch, err := store.WatchSince(hctx, s.n.st, since)
	if err != nil {
		if s.ctx.Err() == nil {
			s.n.log.WithError(err).WithField("subscription", s.loc).Warn("subscription's feed not opened")
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(leaseRetry):
		}
		return
	}
	s.n.log.WithFields(map[string]any{"subscription": s.loc, "since": since}).Info("sending this subscription's callbacks from this server")
	deleted := newRecentSet(4096)
	check := time.NewTicker(leaseCheck)
	defer check.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	s.arm(expiry)
	for {
		select {
		case <-s.ctx.Done():
			s.writeFinal()
			return
		case <-check.C:
			if held, err := leases.Acquire(s.ctx, name); err == nil && !held {
				s.n.log.WithField("subscription", s.loc).Warn("subscription's lease lost; another server sends its callbacks")
				return
			}
		case <-s.changed:
			s.arm(expiry)
		case <-expiry.C:
			s.expireIfDue()
		case c, ok := <-ch:
			if !ok {
				return
			}
			if ev := s.eventOf(c, deleted); ev != nil && s.wants(ev) {
				if !leases.Held(name) {
					return
				}
				s.deliver(ev)
				s.mu.Lock()
				due := s.dirty && time.Since(s.lastWrite) >= s.n.cfg.StatusInterval
				s.mu.Unlock()
				if due {
					s.writeStatus(s.ctx, false)
				}
			}
			if c.Seq != "" && s.ctx.Err() == nil {
				raw, _ := json.Marshal(checkpoint{Seq: c.Seq}) // a string
				leases.SetData(name, raw)
			}
		}
	}
}

// eventOf is the event a change on the subscription's own feed reports,
// nil when the subscription cannot want it.
func (s *subscription) eventOf(c store.Change, deleted *recentSet) *Event {
	switch {
	case strings.HasPrefix(c.ID, eventPrefix):
		if c.Deleted {
			return nil
		}
		return s.n.recordedEvent(s.ctx, c)
	case strings.HasPrefix(c.ID, Location), !strings.HasPrefix(c.ID, "/"):
		return nil
	}
	s.mu.Lock()
	f := s.spec.filter
	s.mu.Unlock()
	if f.Location != "" && !strings.HasPrefix(c.ID, f.Location) {
		return nil
	}
	if len(f.Events) > 0 && !containsAny(f.Events, Created, Updated, Deleted) {
		return nil
	}
	return s.n.entityEvent(s.ctx, c, deleted)
}

// wants reports whether the subscription takes ev now.
func (s *subscription) wants(ev *Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.State != StateExpired && !s.spec.expired(time.Now()) && s.spec.filter.Match(ev)
}

func containsAny(list []string, want ...string) bool {
	for _, w := range want {
		for _, l := range list {
			if l == w {
				return true
			}
		}
	}
	return false
}
