package broker

import (
	"time"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/occi"
)

// The protocol between members, carried as JSON over the layers' sockets.
//
// describe (L1, request/reply with retries): discovery; the answer
// describes the member and those it knows.
//
// sync and deliver (every layer): a member delivers its outbox to a peer
// over a layers.Stream, one stream per peer and layer. It opens a session
// with sync, whose answer is the sequence number the peer expects next,
// then sends deliver requests, each a batch of entries numbered from there
// without gaps and pipelined up to a window. The peer handles a session's
// requests in order, commits each batch in one store transaction before
// answering, and answers a batch that does not start at the number it
// expects with that number instead (a request lost or refused before it),
// so entries are taken in the order sent. An entry whose answer never came
// is sent again in a later session; the peer recognises it by message id
// and acknowledges it without a second effect. Sequence numbers live only
// as long as a session: the message ids make delivery exactly-once in
// effect across sessions and restarts.
const (
	reqDescribe = "describe"
	reqSync     = "sync"
	reqDeliver  = "deliver"
)

// envelope is a request between members.
type envelope struct {
	Type  string     `json:"type"`
	Layer Layer      `json:"layer"`
	From  memberInfo `json:"from"`
	// Session names the sender's stream (sync, deliver).
	Session string `json:"session,omitempty"`
	// Entries are a deliver request's batch, numbered without gaps.
	Entries []wireEntry `json:"entries,omitempty"`

	// key is the CURVE key the request came from, as the receiver proved
	// it; it does not travel.
	key string
	// Paths are, in a describe, the sender's routes: for each member it
	// reaches, the path from the sender to it (see routeTable).
	Paths map[string][]string `json:"paths,omitempty"`
}

// Entry kinds: a message on its way to members, or a receipt on its way
// back to the member that sent a message, saying how it went at a
// destination reached through others.
const (
	kindMessage = "message"
	kindReceipt = "receipt"
)

// wireEntry is one delivery of a batch.
type wireEntry struct {
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	// To lists the members the entry is for; the receiver takes what is
	// for it and forwards the rest.
	To []string `json:"to"`
	// Hops counts the members the entry crossed before this one.
	Hops int `json:"hops"`
	// Expires is when members stop retrying the entry.
	Expires time.Time `json:"expires"`
	// Message or Receipt, as Kind says.
	Message *wireMessage `json:"message,omitempty"`
	Receipt *receipt     `json:"receipt,omitempty"`
}

// wireMessage is a message resource as it travels.
type wireMessage struct {
	ID         string         `json:"id"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
}

// receipt reports a message's outcome at one destination to its origin.
type receipt struct {
	// Message is the message's id; Origin the member that sent it.
	Message string     `json:"message"`
	Origin  string     `json:"origin"`
	Result  destResult `json:"result"`
}

// syncReply answers sync: the sequence number the receiver expects next
// in the session.
type syncReply struct {
	Expect uint64 `json:"expect"`
}

// deliverReply answers a deliver request: one result per entry, or, when
// the batch was not taken, why: Expect is the sequence number the receiver
// expects (an earlier request of the session was lost or refused), Resync
// that it knows no such session (it restarted) and wants a sync.
type deliverReply struct {
	Results []entryResult `json:"results,omitempty"`
	Expect  uint64        `json:"expect,omitempty"`
	Resync  bool          `json:"resync,omitempty"`
}

// entryResult is the outcome of one entry: one result per member in its To.
type entryResult struct {
	Seq     uint64       `json:"seq"`
	Results []destResult `json:"results"`
}

// describeReply answers a describe: the member itself and the members it
// knows, so discovery can go on from them.
type describeReply struct {
	Member memberInfo   `json:"member"`
	Known  []memberInfo `json:"known"`
	// Paths are the describing member's routes, as a describe's are.
	Paths map[string][]string `json:"paths,omitempty"`
}

// destResult is the outcome of a delivery at one destination member, as
// the wire contract defines it.
type destResult = api.Destination

// Delivery statuses, from the wire contract.
const (
	statusPending   = api.StatusPending
	statusForwarded = api.StatusForwarded
	statusDelivered = api.StatusDelivered
	statusFailed    = api.StatusFailed
	statusExpired   = api.StatusExpired
)

// wireAttributes are the message attributes that travel; what the sender
// recorded about its own send (delivery, result) stays with it.
var wireAttributes = []string{msgLayer, msgExecutable, msgSendable, msgStorable, msgPath, msgContent,
	msgReceiver, msgProviders, msgTopics, msgHopLimit, msgOrigin, msgExpires}

func toWire(e *occi.Entity) *wireMessage {
	w := &wireMessage{ID: e.ID, Title: e.Title, Summary: e.Summary, Mixins: e.Mixins, Attributes: map[string]any{}}
	copyEntity := &occi.Entity{Attributes: w.Attributes}
	for _, name := range wireAttributes {
		if v, ok := e.Attr(name); ok {
			copyEntity.SetAttr(name, v)
		}
	}
	return w
}

// entity returns the message as a resource, with attributes of its own:
// the caller may change them (a member that both keeps and forwards a
// message changes the two copies' path_history differently).
func (w *wireMessage) entity() *occi.Entity {
	attrs := cloneAttrs(w.Attributes)
	mixins := w.Mixins
	if mixins == nil {
		mixins = []string{}
	}
	return &occi.Entity{Type: occi.TypeResource, ID: w.ID, Location: MessageLocation + w.ID, Kind: MessageKind,
		Mixins: mixins, Title: w.Title, Summary: w.Summary, Attributes: attrs}
}
