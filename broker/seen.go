package broker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/houssem/cmbs/store"
)

// pruneInterval is how often expired records of seen messages are removed.
const pruneInterval = time.Minute

// pruneSeen removes, every pruneInterval until ctx ends, the records of
// non-storable messages taken here whose expiry has passed: a copy arriving
// after its expiry is not retried by anyone.
func (b *Broker) pruneSeen(ctx context.Context) {
	tick := time.NewTicker(pruneInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := b.pruneSeenOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			b.log.WithError(err).Warn("pruning the records of seen messages")
		} else if n > 0 {
			b.log.WithField("removed", n).Debug("pruned the records of seen messages")
		}
	}
}

// pruneSeenOnce removes the seen records expired at now, a page at a
// time, and returns how many it removed.
func (b *Broker) pruneSeenOnce(ctx context.Context, now time.Time) (int, error) {
	const page = 500
	removed := 0
	after := ""
	for {
		docs, err := b.st.Scan(ctx, seenPrefix, after, page)
		if err != nil {
			return removed, err
		}
		var drop []store.Write
		for _, d := range docs {
			var s seenDoc
			if err := json.Unmarshal(d.Body, &s); err != nil || !now.Before(s.Expires) {
				drop = append(drop, store.Remove(d.ID, d.Rev))
			}
		}
		if len(drop) > 0 {
			if _, err := b.st.Write(ctx, drop); err != nil {
				// Taken again meanwhile: the next round looks again.
				b.log.WithError(err).Debug("pruning seen records: a batch was not removed")
			} else {
				removed += len(drop)
			}
		}
		if len(docs) < page {
			return removed, nil
		}
		after = docs[len(docs)-1].ID
	}
}
