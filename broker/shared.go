package broker

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/houssem/cmbs/store"
)

// Several servers sharing one store (Config.Leases set) run one member:
// a client's send is accepted by whichever server its request reached,
// which writes the outbox entries, while each stream is delivered by the
// server holding its lease. What one server holds in memory about the
// outbox the others learn from the store:
//
//   - entries another server wrote reach the deliverer of their stream
//     through the change feed (sharedFeed);
//   - streams nobody here has a deliverer for, such as those of a server
//     that died, are found by reading the outbox every sharedScan;
//   - a request waiting for an outcome (Prefer: wait) is woken by the
//     message's change, whichever server recorded it;
//   - receipts a server stored and died before folding in are folded in
//     by the holder of the receipts lease once two scans have seen them.
const (
	// sharedScan is how often the outbox is read for streams without a
	// deliverer here.
	sharedScan = 5 * time.Second
	// sharedRecheck gathers the feed's news of entries before the
	// deliverers read their streams again.
	sharedRecheck = 200 * time.Millisecond
	// receiptsScan is how often stored receipts are looked at; one seen
	// twice was left by a server that stopped.
	receiptsScan = 30 * time.Second
	// receiptsLease is the lease of the server folding orphaned receipts.
	receiptsLease = "broker/receipts"
)

// startShared starts the goroutines that keep this server in step with the
// others on its store. Alone on its store, a server needs none of them.
func (b *Broker) startShared() {
	if b.cfg.Leases == nil {
		return
	}
	b.background(b.sharedFeed)
	b.background(b.sharedStreams)
	b.background(b.sharedReceipts)
}

// sharedFeed follows the change feed until ctx ends: new outbox entries
// make their stream's deliverer read the store, message changes wake
// waiting requests. A broken feed is watched again, and every deliverer
// reads its stream again then, since changes were missed.
func (b *Broker) sharedFeed(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := b.st.Watch(ctx)
		if err != nil {
			b.log.WithError(err).Warn("shared store: cannot follow the change feed; retrying")
		} else {
			b.recheckAll()
			b.followOutbox(ctx, ch)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// followOutbox reads ch until it closes, rechecking streams in gathered
// rounds.
func (b *Broker) followOutbox(ctx context.Context, ch <-chan store.Change) {
	tick := time.NewTicker(sharedRecheck)
	defer tick.Stop()
	news := map[streamKey]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-ch:
			if !ok {
				return
			}
			switch {
			case strings.HasPrefix(c.ID, MessageLocation):
				b.waits.notify(c.ID)
			case strings.HasPrefix(c.ID, outboxPrefix) && !c.Deleted:
				k, ok := parseStreamKey(c.ID)
				if ok && !b.deliverer(k).expects(c.ID) {
					news[k] = true
				}
			}
		case <-tick.C:
			for k := range news {
				b.deliverer(k).recheck()
			}
			clear(news)
		}
	}
}

// recheckAll makes every deliverer read its stream again.
func (b *Broker) recheckAll() {
	b.mu.Lock()
	ds := make([]*deliverer, 0, len(b.deliverers))
	for _, d := range b.deliverers {
		ds = append(ds, d)
	}
	b.mu.Unlock()
	for _, d := range ds {
		d.recheck()
	}
}

// sharedStreams gives every stream with pending entries a deliverer here,
// every sharedScan until ctx ends; the deliverer delivers it if this
// server holds, or takes over, its lease.
func (b *Broker) sharedStreams(ctx context.Context) {
	tick := time.NewTicker(sharedScan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		streams, err := b.pendingStreams(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.WithError(err).Warn("shared store: reading the outbox's streams")
			}
			continue
		}
		for _, k := range streams {
			b.mu.Lock()
			_, ok := b.deliverers[k]
			b.mu.Unlock()
			if !ok {
				b.log.WithField("stream", k.String()).Info("outbox: a stream with pending entries found in the shared store")
				b.deliverer(k).poke()
			}
		}
	}
}

// sharedReceipts folds in, every receiptsScan while this server holds the
// receipts lease, the receipts that were stored at the previous scan
// already: the server that stored them would have folded them in within
// moments, so it stopped first.
func (b *Broker) sharedReceipts(ctx context.Context) {
	tick := time.NewTicker(receiptsScan)
	defer tick.Stop()
	var seen map[string]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		held, err := b.cfg.Leases.Acquire(ctx, receiptsLease)
		if err != nil || !held {
			seen = nil
			continue
		}
		docs, err := b.st.Scan(ctx, receiptPrefix, "", 1000)
		if err != nil {
			if ctx.Err() == nil {
				b.log.WithError(err).Warn("shared store: reading the receipts")
			}
			continue
		}
		now := map[string]bool{}
		var orphans []outcome
		for _, d := range docs {
			now[d.ID] = true
			if !seen[d.ID] {
				continue
			}
			var rd receiptDoc
			if err := json.Unmarshal(d.Body, &rd); err != nil {
				continue
			}
			orphans = append(orphans, outcome{receipt: &store.Doc{ID: d.ID, Rev: d.Rev}, message: rd.Message, layer: rd.Layer, results: []destResult{rd.Result}})
		}
		seen = now
		if len(orphans) > 0 {
			b.log.WithField("receipts", len(orphans)).Info("folding in receipts a stopped server left")
			b.rec.add(orphans...)
		}
	}
}
