package notify

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/occi"
)

// Event types.
const (
	Created         = "created"
	Updated         = "updated"
	Deleted         = "deleted"
	MessageReceived = broker.EventMessageReceived
	DeliveryFailed  = broker.EventDeliveryFailed
	MemberDown      = broker.EventMemberDown
	MemberUp        = broker.EventMemberUp
)

// EventTypes lists every event type, in the order the documentation gives.
func EventTypes() []string {
	return []string{Created, Updated, Deleted, MessageReceived, DeliveryFailed, MemberDown, MemberUp}
}

// Event is one notification, as callbacks receive it in their body and
// /events clients in each frame.
type Event struct {
	// ID identifies the event; a callback retried carries the same id, so
	// receivers can drop what they already handled.
	ID   string    `json:"id"`
	Type string    `json:"event"`
	Time time.Time `json:"time"`
	// Location is the entity's path; Kind its kind (for deletes, the kind
	// whose location holds the path).
	Location string `json:"location"`
	Kind     string `json:"kind,omitempty"`
	// Entity is the entity as read when the event was processed, which may
	// already include later changes; absent for deletes.
	Entity *occi.Entity `json:"entity,omitempty"`
	// Subscription is the subscription's location, in callback bodies.
	Subscription string `json:"subscription,omitempty"`
	// The broker's events: the layer, the member that received the message
	// or that it failed to reach, the member it came from, and why it
	// failed.
	Layer    string `json:"layer,omitempty"`
	Member   string `json:"member,omitempty"`
	From     string `json:"from,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Via      string `json:"via,omitempty"`
}

// Filter selects events. A zero field matches everything; set fields must
// all match.
type Filter struct {
	// Kind is an OCCI kind id the entity must have.
	Kind string
	// Location is a path the entity's location must start with.
	Location string
	// Topics are subscriptions in the broker's topic syntax; one must
	// match one of the entity's topics (cmbs.*.topics).
	Topics []string
	// Providers: one must be among the entity's providers
	// (cmbs.*.providers).
	Providers []string
	// Events are the event types wanted.
	Events []string
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *Event) bool {
	if len(f.Events) > 0 && !slices.Contains(f.Events, ev.Type) {
		return false
	}
	if f.Kind != "" && f.Kind != ev.Kind {
		return false
	}
	if f.Location != "" && !strings.HasPrefix(ev.Location, f.Location) {
		return false
	}
	if len(f.Topics) > 0 && !topicsMatch(f.Topics, entityList(ev.Entity, "topics")) {
		return false
	}
	if len(f.Providers) > 0 && !intersects(f.Providers, entityList(ev.Entity, "providers")) {
		return false
	}
	return true
}

// Validate checks the filter's values, naming the offending field with
// prefix (an attribute name or a query parameter).
func (f Filter) Validate(prefix string) error {
	for _, e := range f.Events {
		if !slices.Contains(EventTypes(), e) {
			return occi.BadRequest(prefix+"events", "unknown event type %q; use %s", e, strings.Join(EventTypes(), ", "))
		}
	}
	if f.Kind != "" && !strings.Contains(f.Kind, "#") {
		return occi.BadRequest(prefix+"kind", "kind %q is not an OCCI kind id (scheme#term)", f.Kind)
	}
	if f.Location != "" && !strings.HasPrefix(f.Location, "/") {
		return occi.BadRequest(prefix+"location", "location %q must be a path starting with /", f.Location)
	}
	return nil
}

// FilterFromQuery reads a filter from /events query parameters. List
// parameters may repeat or hold comma-separated values.
func FilterFromQuery(q url.Values) (Filter, error) {
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
		}
		return out
	}
	f := Filter{Kind: strings.TrimSpace(q.Get("kind")), Location: strings.TrimSpace(q.Get("location")),
		Topics: list("topics"), Providers: list("providers"), Events: list("events")}
	return f, f.Validate("")
}

// entityList gathers an entity's cmbs.<kind>.<name> values: the topics or
// providers of members and messages alike.
func entityList(e *occi.Entity, name string) []string {
	if e == nil {
		return nil
	}
	ns, _ := e.Attributes["cmbs"].(map[string]any)
	var out []string
	for _, v := range ns {
		attrs, ok := v.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, stringList(attrs[name])...)
	}
	return out
}

// stringList reads an array of strings; a lone string counts as one.
func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		if s := strings.TrimSpace(t); s != "" {
			return []string{s}
		}
	case []any:
		var out []string
		for _, item := range t {
			if s, ok := item.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
		return out
	case []string:
		return t
	}
	return nil
}

func topicsMatch(patterns, topics []string) bool {
	for _, p := range patterns {
		for _, t := range topics {
			if p == t || broker.TopicMatches(p, t) {
				return true
			}
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// fromBroker turns a broker event into a notification.
func fromBroker(be broker.Event) *Event {
	kind := broker.MessageKind
	if be.Type == MemberDown || be.Type == MemberUp {
		kind = broker.MemberKind
	}
	return &Event{ID: brokerEventID(be), Type: be.Type, Time: be.Time, Location: be.Location, Kind: kind,
		Entity: be.Message, Layer: string(be.Layer), Member: be.Member, From: be.From, Reason: be.Reason,
		Endpoint: be.Endpoint, Via: be.Via}
}

func (ev Event) String() string { return fmt.Sprintf("%s %s (%s)", ev.Type, ev.Location, ev.ID) }
