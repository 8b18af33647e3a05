package notify

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// TestPruneEvents: recorded broker events past their retention are
// removed, oldest first, and the others kept.
func TestPruneEvents(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	r := newEventRecorder(n)
	now := time.Now().UTC()
	var evs []*Event
	for i, age := range []time.Duration{3 * eventRetention, 2 * eventRetention, eventRetention / 2, 0} {
		evs = append(evs, &Event{ID: string(rune('a' + i)), Type: MessageReceived, Time: now.Add(-age), Location: "/cmbs/message/m"})
	}
	ctx := context.Background()
	r.write(ctx, evs)
	r.write(ctx, evs[:1]) // recorded already: left out, no error
	if docs, err := st.List(ctx, eventPrefix); err != nil || len(docs) != 4 {
		t.Fatalf("recorded %d events (%v), want 4", len(docs), err)
	}
	if err := n.pruneOnce(ctx, now); err != nil {
		t.Fatal(err)
	}
	docs, err := st.List(ctx, eventPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, d := range docs {
		if ev := n.recordedEvent(ctx, store.Change{ID: d.ID}); ev != nil {
			kept = append(kept, ev.ID)
		}
	}
	if len(kept) != 2 || kept[0] != "c" || kept[1] != "d" {
		t.Errorf("kept events %v, want the two within their retention", kept)
	}
}
