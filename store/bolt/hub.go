package bolt

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// hub fans committed changes out to Watch subscribers. publish runs in the
// committing goroutine, in commit order, and never blocks.
type hub struct {
	buffer int
	log    logrus.FieldLogger

	mu     sync.Mutex // guards subs and closed; channels are sent to and closed under it
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch   chan store.Change
	stop func() bool // unregisters the context.AfterFunc that unsubscribes
}

func newHub(buffer int, log logrus.FieldLogger) *hub {
	return &hub{buffer: buffer, log: log, subs: map[*subscriber]struct{}{}}
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

// publish hands c to every subscriber, dropping those whose buffer is full.
func (h *hub) publish(c store.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
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
