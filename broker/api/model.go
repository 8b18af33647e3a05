package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FieldError reports an attribute whose value has the wrong shape.
type FieldError struct {
	// Field is the attribute's dotted name.
	Field string
	// Problem says what is wrong, without the name.
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Member is a member as its attributes describe it.
type Member struct {
	ID      string
	Title   string
	Summary string
	// Local marks the server's own member; the others were declared by a
	// client or learned through discovery.
	Local bool
	State string
	// Sockets holds each layer's endpoint: what the member binds when it is
	// local, what others dial.
	Sockets map[Layer]string
	// Neighbors are the L1 sockets discovery starts from.
	Neighbors []string
	// Topics and Providers are what L3.2, L3.1 and L4 deliver by.
	Topics    []string
	Providers []string
	// Layers is each layer's receiver state (local member only).
	Layers map[Layer]string
	// NeighborsState is what the last discovery found at each neighbour
	// socket.
	NeighborsState map[string]string
	// Via is the member to forward through when this one is not a direct
	// neighbour, and Distance the hops to it.
	Via      string
	Distance int
	LastSeen string
	// PublicKey is the member's CURVE public key (Z85): what members dial
	// it with, and the key its requests must come from.
	PublicKey string
	// MaxMessageBytes is the largest layer message the member accepts; 0
	// when it did not say.
	MaxMessageBytes int
}

// MemberFromAttributes reads a member's attributes (nested by the dots of
// their names). A value of the wrong shape is a *FieldError.
func MemberFromAttributes(attrs map[string]any) (Member, error) {
	r := reader{attrs: attrs}
	m := Member{
		Local:     r.boolean(MemberLocal, false),
		State:     r.str(MemberState),
		Sockets:   map[Layer]string{},
		Neighbors: r.list(MemberNeighbors),
		Topics:    r.list(MemberTopics),
		Providers: r.list(MemberProviders),
		Via:       r.str(MemberVia),
		Distance:  r.integer(MemberDistance, 0),
		LastSeen:  r.str(MemberLastSeen),
		PublicKey: r.str(MemberPublicKey),

		MaxMessageBytes: r.integer(MemberMaxMessageBytes, 0),
	}
	for _, l := range Layers() {
		if s := r.str(l.SocketAttr()); s != "" {
			m.Sockets[l] = s
		}
	}
	if states := r.stringMap(MemberLayers); len(states) > 0 {
		m.Layers = map[Layer]string{}
		for k, v := range states {
			m.Layers[Layer(k)] = v
		}
	}
	m.NeighborsState = r.stringMap(MemberNeighborsState)
	return m, r.err
}

// Attributes returns the member's attributes, nested. Attributes it has no
// value for are left out, except the sockets, which are always present
// (empty when the layer has none).
func (m Member) Attributes() map[string]any {
	w := writer{}
	w.set(MemberLocal, strconv.FormatBool(m.Local))
	w.setString(MemberState, m.State)
	for _, l := range Layers() {
		w.set(l.SocketAttr(), m.Sockets[l])
	}
	w.set(MemberNeighbors, anyList(m.Neighbors))
	w.set(MemberTopics, anyList(m.Topics))
	w.set(MemberProviders, anyList(m.Providers))
	if len(m.Layers) > 0 {
		states := map[string]any{}
		for l, s := range m.Layers {
			states[string(l)] = s
		}
		w.set(MemberLayers, states)
	}
	if m.NeighborsState != nil {
		states := map[string]any{}
		for k, v := range m.NeighborsState {
			states[k] = v
		}
		w.set(MemberNeighborsState, states)
	}
	w.setString(MemberVia, m.Via)
	if m.Distance > 0 {
		w.set(MemberDistance, float64(m.Distance))
	}
	w.setString(MemberLastSeen, m.LastSeen)
	w.setString(MemberPublicKey, m.PublicKey)
	if m.MaxMessageBytes > 0 {
		w.set(MemberMaxMessageBytes, float64(m.MaxMessageBytes))
	}
	return w.attrs
}

// Message is a message as its attributes describe it.
type Message struct {
	ID      string
	Title   string
	Summary string
	// Layer is the layer the message declares it is for; "" when it names
	// none (the original's "true" counts as none).
	Layer Layer
	// Executable messages run on the members they reach; Storable ones are
	// stored there; Sendable ones may be sent at all. All default to true.
	Executable bool
	Sendable   bool
	Storable   bool
	// Content is the message's payload, any JSON value.
	Content any
	// Receiver is the L1 socket of the member an L1 message asks.
	Receiver string
	// Providers and Topics select the destinations on L3.1, L3.2 and L4.
	Providers []string
	Topics    []string
	// HopLimit bounds the members the message may cross (0: the default).
	HopLimit int
	// Expires is the message's expiry as given: an RFC 3339 time or a Go
	// duration counted from when the message is sent (see ExpiresAt).
	Expires string
	// SendOnCreate makes the create also send the message on its layer.
	SendOnCreate bool
	// Path lists the members the message crossed so far; Origin the member
	// that sent it first.
	Path   []string
	Origin string
	// Result, Executed and Delivery are written by the broker: the
	// execution's result and time, and the send's outcome.
	Result   any
	Executed string
	Delivery *Delivery
}

// MessageFromAttributes reads a message's attributes (nested by the dots of
// their names). A value of the wrong shape is a *FieldError.
func MessageFromAttributes(attrs map[string]any) (Message, error) {
	r := reader{attrs: attrs}
	m := Message{
		Executable:   r.boolean(MessageExecutable, true),
		Sendable:     r.boolean(MessageSendable, true),
		Storable:     r.boolean(MessageStorable, true),
		Content:      r.value(MessageContent),
		Receiver:     r.str(MessageReceiver),
		Providers:    r.list(MessageProviders),
		Topics:       r.list(MessageTopics),
		HopLimit:     r.integer(MessageHopLimit, 0),
		Expires:      r.str(MessageExpires),
		SendOnCreate: r.boolean(MessageSendOnCreate, false),
		Path:         r.list(MessagePath),
		Origin:       r.str(MessageOrigin),
		Result:       r.value(MessageResult),
		Executed:     r.str(MessageExecuted),
	}
	if l := r.str(MessageLayer); l != "" && !strings.EqualFold(l, "true") {
		layer, ok := ParseLayer(l)
		if !ok {
			r.fail(MessageLayer, "%q names no layer; use l1, l2, l31, l32 or l4", l)
		}
		m.Layer = layer
	}
	if m.HopLimit < 0 {
		r.fail(MessageHopLimit, "%d is negative", m.HopLimit)
	}
	if m.Expires != "" {
		if _, err := ParseExpires(m.Expires, time.Now()); err != nil {
			r.fail(MessageExpires, "%v", err)
		}
	}
	if v, ok := lookup(attrs, MessageDelivery); ok && v != nil {
		d, err := DeliveryFrom(v)
		if err != nil {
			r.fail(MessageDelivery, "not a delivery outcome: %v", err)
		} else {
			m.Delivery = &d
		}
	}
	return m, r.err
}

// Attributes returns the message's attributes, nested. The three flags are
// written as the original's "True"/"False" strings.
func (m Message) Attributes() map[string]any {
	w := writer{}
	if m.Layer != "" {
		w.set(MessageLayer, string(m.Layer))
	}
	w.set(MessageExecutable, pyBool(m.Executable))
	w.set(MessageSendable, pyBool(m.Sendable))
	w.set(MessageStorable, pyBool(m.Storable))
	if m.Content != nil {
		w.set(MessageContent, m.Content)
	}
	w.setString(MessageReceiver, m.Receiver)
	if m.Providers != nil {
		w.set(MessageProviders, anyList(m.Providers))
	}
	if m.Topics != nil {
		w.set(MessageTopics, anyList(m.Topics))
	}
	if m.HopLimit > 0 {
		w.set(MessageHopLimit, float64(m.HopLimit))
	}
	w.setString(MessageExpires, m.Expires)
	if m.SendOnCreate {
		w.set(MessageSendOnCreate, pyBool(true))
	}
	w.set(MessagePath, anyList(m.Path))
	w.setString(MessageOrigin, m.Origin)
	if m.Result != nil {
		w.set(MessageResult, m.Result)
	}
	w.setString(MessageExecuted, m.Executed)
	if m.Delivery != nil {
		w.set(MessageDelivery, m.Delivery.Generic())
	}
	return w.attrs
}

// EffectiveHopLimit is the hop limit that applies to the message.
func (m Message) EffectiveHopLimit() int {
	if m.HopLimit > 0 {
		return m.HopLimit
	}
	return DefaultHopLimit
}

// ParseExpires reads an expiry: an RFC 3339 time, or a Go duration (such as
// "10m" or "24h") counted from base. A duration must be positive.
func ParseExpires(s string, base time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2030-01-02T15:04:05Z) nor a duration (10m, 24h)", s)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("duration %q is not positive", s)
	}
	return base.Add(d), nil
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func anyList(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// reader reads typed values out of nested attributes, keeping the first
// error and giving zero values after it.
type reader struct {
	attrs map[string]any
	err   error
}

func (r *reader) fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) value(name string) any {
	v, _ := lookup(r.attrs, name)
	return v
}

func (r *reader) str(name string) string {
	switch v := r.value(name).(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	default:
		r.fail(name, "want a string, got %s", describe(v))
		return ""
	}
}

// boolean reads a JSON boolean or the strings "true"/"false" in any case,
// as the original's files write them.
func (r *reader) boolean(name string, def bool) bool {
	switch v := r.value(name).(type) {
	case nil:
		return def
	case bool:
		return v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true
		case "false":
			return false
		case "":
			return def
		}
	}
	r.fail(name, "want true or false (a JSON boolean or \"True\"/\"False\"), got %s", describe(r.value(name)))
	return def
}

// list reads an array of strings; a lone string counts as one element and
// the original's "" as none. Empty elements are dropped.
func (r *reader) list(name string) []string {
	switch v := r.value(name).(type) {
	case nil:
		return nil
	case string:
		if s := strings.TrimSpace(v); s != "" {
			return []string{s}
		}
		return nil
	case []any:
		out := make([]string, 0, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				r.fail(fmt.Sprintf("%s[%d]", name, i), "want a string, got %s", describe(item))
				return nil
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	default:
		r.fail(name, "want a list of strings, got %s", describe(v))
		return nil
	}
}

// plain reads an optional string field of a nested object.
func (r *reader) plain(name string) string {
	switch v := r.attrs[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		r.fail(name, "want a string, got %s", describe(v))
		return ""
	}
}

// count reads an optional whole number field of a nested object.
func (r *reader) count(name string) int {
	switch v := r.attrs[name].(type) {
	case nil:
		return 0
	case float64:
		if v == math.Trunc(v) {
			return int(v)
		}
	case json.Number:
		if n, err := strconv.Atoi(v.String()); err == nil {
			return n
		}
	}
	r.fail(name, "want a whole number, got %s", describe(r.attrs[name]))
	return 0
}

// flag reads an optional JSON boolean field of a nested object.
func (r *reader) flag(name string) bool {
	switch v := r.attrs[name].(type) {
	case nil:
		return false
	case bool:
		return v
	default:
		r.fail(name, "want true or false, got %s", describe(v))
		return false
	}
}

// integer reads a whole JSON number or a string holding one.
func (r *reader) integer(name string, def int) int {
	switch v := r.value(name).(type) {
	case nil:
		return def
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<31 {
			return int(v)
		}
	case int:
		return v
	case json.Number:
		if n, err := strconv.Atoi(v.String()); err == nil {
			return n
		}
	case string:
		if strings.TrimSpace(v) == "" {
			return def
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	r.fail(name, "want a whole number, got %s", describe(r.value(name)))
	return def
}

// stringMap reads an object whose values are strings; other values are
// kept in their JSON form.
func (r *reader) stringMap(name string) map[string]string {
	switch v := r.value(name).(type) {
	case nil:
		return nil
	case map[string]any:
		out := make(map[string]string, len(v))
		for k, item := range v {
			if s, ok := item.(string); ok {
				out[k] = s
			} else if raw, err := json.Marshal(item); err == nil {
				out[k] = string(raw)
			}
		}
		return out
	default:
		r.fail(name, "want an object, got %s", describe(v))
		return nil
	}
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// writer builds nested attributes.
type writer struct{ attrs map[string]any }

func (w *writer) set(name string, v any) {
	if w.attrs == nil {
		w.attrs = map[string]any{}
	}
	m := w.attrs
	parts := strings.Split(name, ".")
	for _, k := range parts[:len(parts)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func (w *writer) setString(name, v string) {
	if v != "" {
		w.set(name, v)
	}
}

// Lookup returns the attribute at a dotted name in nested attributes.
func Lookup(attrs map[string]any, name string) (any, bool) { return lookup(attrs, name) }

func lookup(attrs map[string]any, name string) (any, bool) {
	var v any = attrs
	for _, part := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}
