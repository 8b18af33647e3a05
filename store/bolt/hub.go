package bolt

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// hub fans committed changes out to Watch subscribers, in commit order,
// without blocking writers.
//
// Each change carries the sequence number its transaction took from the
// docs bucket. bbolt runs commit handlers after releasing the write lock, so
// handlers of consecutive transactions can race; the hub holds early
// arrivals back until the gap before them is filled.
type hub struct {
	buffer int
	log    logrus.FieldLogger

	mu      sync.Mutex // guards the fields below; channels are sent to and closed under it
	subs    map[*subscriber]struct{}
	closed  bool
	next    uint64                  // sequence of the next change to deliver
	pending map[uint64]store.Change // changes committed ahead of next
}

type subscriber struct {
	ch   chan store.Change
	stop func() bool // unregisters the context.AfterFunc that unsubscribes
}

// newHub returns a hub whose first change will have sequence next.
func newHub(buffer int, log logrus.FieldLogger, next uint64) *hub {
	return &hub{
		buffer:  buffer,
		log:     log,
		subs:    map[*subscriber]struct{}{},
		next:    next,
		pending: map[uint64]store.Change{},
	}
}

// subscribe registers a subscriber until ctx ends.
func (h *hub) subscribe(ctx context.Context) (<-chan store.Change, error) {
	sub := &subscriber{ch: make(chan store.Change, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, store.ErrClosed
	}
	h.subs[sub] = struct{}{}
	// AfterFunc needs no goroutine of ours while ctx is live; it runs drop
	// once when ctx ends, unless close got there first.
	sub.stop = context.AfterFunc(ctx, func() { h.drop(sub) })
	return sub.ch, nil
}

// drop removes sub and closes its channel.
func (h *hub) drop(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(sub)
}

func (h *hub) dropLocked(sub *subscriber) {
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	close(sub.ch)
	sub.stop()
}

// publish records the change committed with sequence seq and delivers every
// change that is now in order.
func (h *hub) publish(seq uint64, c store.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending[seq] = c
	for {
		c, ok := h.pending[h.next]
		if !ok {
			return
		}
		delete(h.pending, h.next)
		h.next++
		h.deliverLocked(c)
	}
}

// deliverLocked hands c to every subscriber, dropping those whose buffer is
// full.
func (h *hub) deliverLocked(c store.Change) {
	for sub := range h.subs {
		select {
		case sub.ch <- c:
		default:
			h.dropLocked(sub)
			h.log.WithFields(logrus.Fields{"buffer": cap(sub.ch), "id": c.ID, "rev": c.Rev}).
				Warn("dropped a watch subscriber that fell behind; its channel is closed and it must watch again")
		}
	}
}

// close drops every subscriber and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.dropLocked(sub)
	}
}
