package broker

import (
	"time"

	"github.com/houssem/cmbs/occi"
)

// Event types the broker emits.
const (
	// EventMessageReceived: a message reached this member and was taken
	// (stored and/or executed). Duplicates are not reported again.
	EventMessageReceived = "message_received"
	// EventDeliveryFailed: a send from this member did not reach one of
	// its destinations: refused there or on the way, or expired before
	// it was acknowledged; one event per destination.
	EventDeliveryFailed = "delivery_failed"
)

// Event is something the broker did that subscribers may want to hear of.
type Event struct {
	// Type is EventMessageReceived or EventDeliveryFailed.
	Type string
	Time time.Time
	// Location is the message's location (/cmbs/message/ID).
	Location string
	// Message is a copy of the message the sink may keep (of the member,
	// for member_down and member_up); nil when it could not be read.
	Message *occi.Entity
	Layer   Layer
	// Member is the member that received the message, or the destination
	// the delivery failed for.
	Member string
	// From is the member the message came from (received messages).
	From string
	// Reason, Endpoint and Via describe a failed delivery.
	Reason   string
	Endpoint string
	Via      string
}

// EventSink receives the broker's events. Emit is called on the delivery
// path, so it must not block; a sink that needs to do I/O queues the event.
type EventSink interface {
	Emit(Event)
}

// SetEventSink makes s receive the broker's events from now on; nil stops
// them.
func (b *Broker) SetEventSink(s EventSink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sink = s
}

func (b *Broker) eventSink() EventSink {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sink
}

// emitReceived reports a message deliverHere took. It is called once the
// message is stored, so the event never precedes the document.
func (b *Broker) emitReceived(env envelope, e *occi.Entity, res destResult) {
	sink := b.eventSink()
	if sink == nil || res.Duplicate || res.Status != statusDelivered {
		return
	}
	sink.Emit(Event{Type: EventMessageReceived, Time: time.Now().UTC(), Location: e.Location,
		Message: copyEntity(e), Layer: env.Layer, Member: res.Member, From: env.From.ID})
}

// emitFailures reports each destination that a send of the message at
// location did not reach (failed or expired). updated holds the messages
// just written, the message among them when it still exists.
func (b *Broker) emitFailures(location string, l Layer, results []destResult, updated []*occi.Entity) {
	sink := b.eventSink()
	if sink == nil {
		return
	}
	var msg *occi.Entity
	for _, e := range updated {
		if e.Location == location {
			msg = e
		}
	}
	for _, r := range results {
		if r.Status != statusFailed && r.Status != statusExpired {
			continue
		}
		sink.Emit(Event{Type: EventDeliveryFailed, Time: time.Now().UTC(), Location: location, Message: copyEntity(msg),
			Layer: l, Member: r.Member, Reason: r.Reason, Endpoint: r.Endpoint, Via: r.Via})
	}
}

// copyEntity gives the sink an entity no broker code holds: executors and
// later steps keep changing the one they have.
func copyEntity(e *occi.Entity) *occi.Entity {
	if e == nil {
		return nil
	}
	d, err := occi.EncodeEntity(&occi.Entity{Type: e.Type, ID: e.ID, Location: e.Location, Kind: e.Kind,
		Mixins: e.Mixins, Title: e.Title, Summary: e.Summary, Attributes: e.Attributes, Source: e.Source, Target: e.Target})
	if err != nil {
		return nil
	}
	c, err := occi.DecodeEntity(d)
	if err != nil {
		return nil
	}
	c.Rev = e.Rev
	return c
}
