package broker

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/houssem/cmbs/occi"
)

// DefaultMaxMessageSize is the default of Config.MaxMessageSize: 10 MiB,
// as max_message_bytes, which bounds an HTTP body too.
const DefaultMaxMessageSize = 10 << 20

// What a deliver request adds to the payloads of its entries: the request's
// own fields around the sender's description, and each entry's sequence
// number, kind, hops, expiry and punctuation (its To list counted apart).
// Both are upper bounds, so a batch cut by them always fits.
const (
	requestOverhead = 256
	entryOverhead   = 128
)

// entrySize bounds the bytes an entry takes in a deliver request.
func entrySize(e *entry) int {
	n := len(e.Payload) + entryOverhead
	for _, id := range e.To {
		n += len(id) + 3
	}
	return n
}

// limit is the size limit of a request to a peer that published
// peerMax (0 when it did not): this member's, or the peer's when smaller,
// since the peer's receiver drops larger ones unread.
func (b *Broker) limit(peerMax int) int {
	if peerMax > 0 && int64(peerMax) < b.cfg.MaxMessageSize {
		return peerMax
	}
	return int(b.cfg.MaxMessageSize)
}

// room is how many bytes of entries one request from the member self
// describes may carry to a peer that published peerMax.
func (b *Broker) room(self memberInfo, peerMax int) int {
	// Requests carry the key and limit.
	self.PublicKey, self.MaxMessageBytes = b.publicKey(), int(b.cfg.MaxMessageSize)
	desc, _ := json.Marshal(self) // strings and maps of strings: cannot fail
	return b.limit(peerMax) - len(desc) - requestOverhead
}

// tooLarge explains an entry no request to a peer that published peerMax
// can carry.
func (b *Broker) tooLarge(e *entry, room, peerMax int) string {
	who := "this member's"
	if b.limit(peerMax) < int(b.cfg.MaxMessageSize) {
		who = "the receiving member's"
	}
	return fmt.Sprintf("the message takes %d bytes on the layers, over the %d bytes a request leaves for it within %s limit of %d bytes (max_message_bytes)",
		entrySize(e), room, who, b.limit(peerMax))
}

// checkFits refuses, with 413, a send whose entry no request could carry:
// better said to the client now than recorded as a failure later.
func (b *Broker) checkFits(e *entry, self memberInfo) error {
	if room := b.room(self, 0); entrySize(e) > room {
		return &occi.Error{Status: http.StatusRequestEntityTooLarge, Field: msgContent, Detail: b.tooLarge(e, room, 0)}
	}
	return nil
}

// fitting returns how many entries from the front of the queue, at most n,
// one request can carry. An entry too large for any request (a message
// that grew on its way here) is settled as failed with the reason, and
// leaves the queue; fitting then returns 0 and the caller looks again.
func (d *deliverer) fitting(n int) int {
	room := d.b.room(d.self, d.peerMax)
	size := 0
	for i := 0; i < n; i++ {
		s := entrySize(d.queue[i])
		switch {
		case s > room && i == 0:
			e := d.queue[0]
			d.queue = d.queue[1:]
			d.b.rec.add(d.b.outcomeOf(e, statusFailed, d.b.tooLarge(e, room, d.peerMax)))
			return 0
		case size+s > room:
			return i
		}
		size += s
	}
	return n
}
