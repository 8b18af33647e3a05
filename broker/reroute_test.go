package broker

import (
	"testing"

	"github.com/sirupsen/logrus"
)

// TestRetractKeepsWhatStays drives one deliverer through a reroute: an
// entry queued and one in flight move, in part, to another next hop. The
// versions that moved are never sent again (the one in flight is dropped
// when its batch is given up on), and the versions rewritten with the
// destinations that stay are queued once, even when a refill read them
// from the store before the deliverer took the retraction.
func TestRetractKeepsWhatStays(t *testing.T) {
	version := func(id, rev string, to ...string) *entry {
		return &entry{id: id, rev: rev, outboxDoc: outboxDoc{To: to}}
	}
	for _, refilled := range []bool{false, true} {
		name := "offered"
		if refilled {
			name = "refilled meanwhile"
		}
		t.Run(name, func(t *testing.T) {
			b := &Broker{cfg: Config{Window: 4}, log: logrus.New()}
			d := newDeliverer(b, streamKey{layer: L2, peer: "m-b"})
			flying, queued := version("e1", "1", "m-b", "m-d"), version("e2", "1", "m-b", "m-d")
			d.offer(flying, queued)
			d.take()
			// e1 goes out; e2 waits.
			d.inflight = []*batch{{req: 1, first: 1, entries: []*entry{d.queue[0]}}}
			d.queue = d.queue[1:]
			d.next = 2

			// m-d moves to another hop; m-b stays in rewritten versions.
			stay1, stay2 := version("e1", "2", "m-b"), version("e2", "2", "m-b")
			d.retract(version("e1", "1"), version("e2", "1"))
			if refilled {
				// A refill read the rewritten e2 before take ran.
				d.mu.Lock()
				d.known["e2"] = true
				d.mu.Unlock()
				d.queue = append(d.queue, version("e2", "2", "m-b"))
			}
			d.offer(stay1, stay2)
			d.take()
			d.void(0) // the peer never answered e1's batch

			var got []string
			for _, e := range d.queue {
				got = append(got, e.id+"@"+e.rev)
			}
			if len(got) != 2 || got[0] != "e1@2" || got[1] != "e2@2" {
				t.Fatalf("queue after the reroute: %v, want e1@2 e2@2", got)
			}
			if len(d.moved) != 0 {
				t.Errorf("moved versions still remembered with nothing in flight: %v", d.moved)
			}
		})
	}
}
