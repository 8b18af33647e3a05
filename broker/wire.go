package broker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/houssem/cmbs/occi"
)

// envelope is what members send each other over the layers, as JSON.
type envelope struct {
	// Type is "describe" (L1 discovery) or "deliver".
	Type  string     `json:"type"`
	Layer Layer      `json:"layer"`
	From  memberInfo `json:"from"`
	// Message is the message delivered, with the path it has taken so far.
	Message *wireMessage `json:"message,omitempty"`
	// To lists the member ids the message is for; empty means the member
	// that receives it. Ids other than the receiver's are forwarded.
	To []string `json:"to,omitempty"`
	// Hops counts the members crossed so far; Deadline bounds the whole
	// delivery so each hop knows how long it may wait for the next.
	Hops     int       `json:"hops"`
	Deadline time.Time `json:"deadline"`
}

// wireMessage is a message resource as it travels.
type wireMessage struct {
	ID         string         `json:"id"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
}

func toWire(e *occi.Entity) *wireMessage {
	w := &wireMessage{ID: e.ID, Title: e.Title, Summary: e.Summary, Mixins: e.Mixins, Attributes: map[string]any{}}
	copyEntity := &occi.Entity{Attributes: w.Attributes}
	for _, name := range []string{msgLayer, msgExecutable, msgSendable, msgStorable, msgPath, msgContent,
		msgReceiver, msgProviders, msgTopics, msgHopLimit, msgOrigin} {
		if v, ok := e.Attr(name); ok {
			copyEntity.SetAttr(name, v)
		}
	}
	return w
}

// entity returns the message as a resource. Each call gets its own copy of
// the attributes: a member that both keeps and forwards a message changes
// the two copies' path_history differently.
func (w *wireMessage) entity() (*occi.Entity, error) {
	attrs := map[string]any{}
	raw, err := json.Marshal(w.Attributes)
	if err == nil {
		err = json.Unmarshal(raw, &attrs)
	}
	if err != nil {
		return nil, fmt.Errorf("message %s: copy its attributes: %w", w.ID, err)
	}
	mixins := w.Mixins
	if mixins == nil {
		mixins = []string{}
	}
	return &occi.Entity{Type: occi.TypeResource, ID: w.ID, Location: MessageLocation + w.ID, Kind: MessageKind,
		Mixins: mixins, Title: w.Title, Summary: w.Summary, Attributes: attrs}, nil
}

// describeReply answers a describe: the member itself and the members it
// knows, so discovery can go on from them.
type describeReply struct {
	Member memberInfo   `json:"member"`
	Known  []memberInfo `json:"known"`
}

// deliverReply answers a delivery with one result per destination.
type deliverReply struct {
	Results []destResult `json:"results"`
}

// Delivery statuses.
const (
	statusDelivered = "delivered"
	statusFailed    = "failed"
)

// destResult is the outcome of a delivery at one destination member.
type destResult struct {
	Member    string   `json:"member"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	Endpoint  string   `json:"endpoint,omitempty"`
	Via       string   `json:"via,omitempty"`
	Stored    bool     `json:"stored"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Executed  bool     `json:"executed,omitempty"`
	Result    any      `json:"result,omitempty"`
	Path      []string `json:"path,omitempty"`
}
