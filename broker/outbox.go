package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// The outbox: what this member has accepted to deliver and not yet seen
// acknowledged. Every send writes one entry per next hop, in the store
// transaction that records the message's state, so a send answered 202 is
// delivered whatever crashes afterwards: on start the broker resumes every
// entry. An entry is deleted, with its outcome folded into its message,
// once the next hop acknowledged it after its own commit, or once it
// expired.
//
// Entries live at outbox/<layer>/<peer>/<key>: one prefix per stream, so a
// deliverer reads its own in order with Scan, and <key> orders them by
// when they were accepted.
const (
	outboxPrefix = "outbox/"
	// receiptPrefix holds receipts that reached this member, the origin of
	// their messages, until the recorder folds them in.
	receiptPrefix = "receipt/"
	// seenPrefix records the ids of messages taken here without being
	// stored, so that a second copy is recognised until it expires.
	seenPrefix = "seen/"
)

// Document discriminators.
const (
	docOutbox  = "outbox"
	docReceipt = "receipt"
	docSeen    = "seen"
)

// streamKey names the stream of deliveries to one peer on one layer. The
// peer is a member id, or, for an L1 request to a socket no known member
// has, the socket.
type streamKey struct {
	layer    Layer
	peer     string
	endpoint string // set instead of peer for a socket
}

// prefix is where the stream's entries are stored. A socket is escaped,
// so it holds no "/", and keeps a "%", which no member id holds.
func (k streamKey) prefix() string {
	p := k.peer
	if p == "" {
		p = url.PathEscape(k.endpoint)
	}
	return outboxPrefix + string(k.layer) + "/" + p + "/"
}

func (k streamKey) String() string { return string(k.layer) + " to " + k.peerName() }

// peerName is the peer's member id, or its socket.
func (k streamKey) peerName() string {
	if k.peer == "" {
		return k.endpoint
	}
	return k.peer
}

// parseStreamKey reads the stream of an outbox document id.
func parseStreamKey(id string) (streamKey, bool) {
	rest, ok := strings.CutPrefix(id, outboxPrefix)
	if !ok {
		return streamKey{}, false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return streamKey{}, false
	}
	l, ok := parseLayer(parts[0])
	if !ok {
		return streamKey{}, false
	}
	if strings.Contains(parts[1], "%") {
		ep, err := url.PathUnescape(parts[1])
		if err != nil {
			return streamKey{}, false
		}
		return streamKey{layer: l, endpoint: ep}, true
	}
	return streamKey{layer: l, peer: parts[1]}, true
}

// outboxDoc is an outbox entry as stored.
type outboxDoc struct {
	Doc   string `json:"doc"`
	Layer Layer  `json:"layer"`
	// Peer is the next hop's member id; Endpoint the socket of a peer
	// that is no known member.
	Peer     string `json:"peer,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Kind is kindMessage or kindReceipt. (It is not called "kind", which
	// entities index, so the store need not look into entries.)
	Kind    string    `json:"entry"`
	To      []string  `json:"to"`
	Hops    int       `json:"hops"`
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created"`
	// Message is the location of the message, at this member, whose
	// delivery the entry's outcome updates; empty for what this member
	// relays for others.
	Message string `json:"message,omitempty"`
	// MessageID and Origin name a relayed message and the member that
	// sent it, which hears of destinations the relay could not reach.
	MessageID string `json:"message_id,omitempty"`
	Origin    string `json:"origin,omitempty"`
	// Payload is the wireMessage or receipt, encoded once.
	Payload json.RawMessage `json:"payload"`
}

// path is the path_history of the message an entry carries: the members
// it passed, this one last (nil for a receipt, or a payload that does not
// decode).
func (e *entry) path() []string {
	if e.Kind != kindMessage {
		return nil
	}
	var m wireMessage
	if json.Unmarshal(e.Payload, &m) != nil {
		return nil
	}
	return strs(&occi.Entity{Attributes: m.Attributes}, msgPath)
}

// entry is an outbox entry in memory.
type entry struct {
	id, rev string
	outboxDoc
	// attempts counts the sessions it was sent in.
	attempts int
}

func (e *entry) stream() streamKey {
	return streamKey{layer: e.Layer, peer: e.Peer, endpoint: e.Endpoint}
}

// write is the store write creating the entry.
func (e *entry) write() (store.Write, error) {
	body, err := json.Marshal(e.outboxDoc)
	if err != nil {
		return store.Write{}, fmt.Errorf("outbox entry %s: %w", e.id, err)
	}
	return store.Put(store.Doc{ID: e.id, Body: body}), nil
}

func decodeEntry(d store.Doc) (*entry, error) {
	e := &entry{id: d.ID, rev: d.Rev}
	if err := json.Unmarshal(d.Body, &e.outboxDoc); err != nil {
		return nil, fmt.Errorf("outbox entry %s: %w", d.ID, err)
	}
	if e.Doc != docOutbox {
		return nil, fmt.Errorf("outbox entry %s: document is a %q", d.ID, e.Doc)
	}
	return e, nil
}

// newEntry builds an entry for stream k, with a key that sorts after
// every key this broker made before.
func (b *Broker) newEntry(k streamKey, kind string, to []string, hops int, expires time.Time, msgLocation string, payload any) (*entry, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("outbox entry: %w", err)
	}
	return &entry{
		id: k.prefix() + b.keys.next(),
		outboxDoc: outboxDoc{Doc: docOutbox, Layer: k.layer, Peer: k.peer, Endpoint: k.endpoint, Kind: kind,
			To: to, Hops: hops, Expires: expires, Created: time.Now().UTC(), Message: msgLocation, Payload: raw},
	}, nil
}

// keygen makes outbox keys that sort in the order they were made: the
// time in nanoseconds, never repeated by this process, then random digits
// so that keys from two processes sharing a store never collide.
type keygen struct {
	mu   sync.Mutex
	last int64
}

func (g *keygen) next() string {
	g.mu.Lock()
	ns := max(time.Now().UnixNano(), g.last+1)
	g.last = ns
	g.mu.Unlock()
	var r [4]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails.
	return fmt.Sprintf("%020d-%s", ns, hex.EncodeToString(r[:]))
}

// pendingStreams lists the streams that have entries in the outbox, one
// Scan per stream.
func (b *Broker) pendingStreams(ctx context.Context) ([]streamKey, error) {
	var out []streamKey
	after := ""
	for {
		docs, err := b.st.Scan(ctx, outboxPrefix, after, 1)
		if err != nil {
			return nil, fmt.Errorf("read the outbox: %w", err)
		}
		if len(docs) == 0 {
			return out, nil
		}
		k, ok := parseStreamKey(docs[0].ID)
		if !ok {
			b.log.WithField("id", docs[0].ID).Warn("outbox: skipping a document with an unreadable id")
			after = docs[0].ID
			continue
		}
		out = append(out, k)
		// Past every entry of this stream: "\xff" sorts after any key.
		after = k.prefix() + "\xff"
	}
}
