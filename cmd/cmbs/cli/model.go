package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Locations of the query interface and of the broker's kinds.
const (
	QueryInterface  = "/-/"
	MemberLocation  = "/cmbs/member/"
	MessageLocation = "/cmbs/message/"
	// SubscriptionLocation is where the server keeps event subscriptions.
	SubscriptionLocation = "/cmbs/subscription/"
)

// Category identifiers the client builds entities with.
const (
	MemberKind  = "http://houssem.org/cmbs#member"
	MessageKind = "http://houssem.org/cmbs#message"
	// SubscriptionKind is an HTTP callback for the server's events.
	SubscriptionKind = "http://houssem.org/cmbs#subscription"
	// LayerMixinScheme followed by a layer name is the message mixin that
	// lets a message go out on that layer.
	LayerMixinScheme = "http://houssem.org/cmbs#"
)

// Layers lists the broker's layers in order.
func Layers() []string { return []string{"l1", "l2", "l31", "l32", "l4"} }

// IsLayer reports whether s names a layer.
func IsLayer(s string) bool {
	for _, l := range Layers() {
		if s == l {
			return true
		}
	}
	return false
}

// Entity is a resource or link as the server renders it.
type Entity struct {
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
	Actions    []EntityAction `json:"actions,omitempty"`
	ID         string         `json:"id,omitempty"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Links      []string       `json:"links,omitempty"`
	Source     string         `json:"source,omitempty"`
	Target     string         `json:"target,omitempty"`
}

// EntityAction is an action an entity offers.
type EntityAction struct {
	Title    string `json:"title,omitempty"`
	Href     string `json:"href"`
	Category string `json:"category"`
}

// Attr returns the attribute with the dotted name, reading the nested
// objects the server renders ({"cmbs":{"member":{"state":…}}}).
func (e *Entity) Attr(name string) (any, bool) {
	var v any = e.Attributes
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

// Text renders the attribute as one line: strings as they are, numbers
// and booleans in JSON, lists of strings joined by commas, anything else
// as compact JSON; "" when absent.
func (e *Entity) Text(name string) string {
	v, ok := e.Attr(name)
	if !ok {
		return ""
	}
	return Text(v)
}

// Text renders any JSON value on one line, as Entity.Text does.
func Text(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []any:
		parts := make([]string, 0, len(t))
		for _, item := range t {
			s, ok := item.(string)
			if !ok {
				return compact(v)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ",")
	default:
		return compact(v)
	}
}

func compact(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// Providers names the backends attached to a kind or mixin.
type Providers struct {
	Local  []string `json:"local"`
	Remote []string `json:"remote"`
}

// Category is a kind, mixin or action of the query interface.
type Category struct {
	Term       string         `json:"term"`
	Scheme     string         `json:"scheme"`
	Title      string         `json:"title,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	Actions    []string       `json:"actions,omitempty"`
	Related    []string       `json:"related,omitempty"`
	Location   string         `json:"location,omitempty"`
	Providers  *Providers     `json:"providers,omitempty"`
}

// ID is the category's identifier, scheme followed by term.
func (c Category) ID() string { return c.Scheme + c.Term }

// ProviderAttachment is one entry of a providers document.
type ProviderAttachment struct {
	Provider Providers `json:"Provider"`
	OCCIID   string    `json:"OCCI_ID"`
}

// Categories is the query interface's document.
type Categories struct {
	Kinds     []Category           `json:"kinds"`
	Mixins    []Category           `json:"mixins"`
	Actions   []Category           `json:"actions"`
	Providers []ProviderAttachment `json:"providers,omitempty"`
}

// Categories lists what the server has registered.
func (c *Client) Categories(ctx context.Context) (*Categories, *Response, error) {
	res, err := c.Do(ctx, http.MethodGet, QueryInterface, nil)
	if err != nil {
		return nil, nil, err
	}
	var cats Categories
	if err := res.Decode(&cats); err != nil {
		return nil, nil, err
	}
	return &cats, res, nil
}

// ApplyCategories registers the categories of a query interface document,
// or, when it attaches providers, updates with PUT as the original's
// put_provider files expect.
func (c *Client) ApplyCategories(ctx context.Context, doc []byte) (*Categories, *Response, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(doc, &probe); err != nil {
		return nil, nil, fmt.Errorf("the file is not a JSON object: %w", err)
	}
	method := http.MethodPost
	if _, ok := probe["providers"]; ok {
		method = http.MethodPut
	}
	res, err := c.DoRaw(ctx, method, QueryInterface, strings.NewReader(string(doc)))
	if err != nil {
		return nil, nil, err
	}
	var cats Categories
	if err := res.Decode(&cats); err != nil {
		return nil, nil, err
	}
	return &cats, res, nil
}

// Member attribute names.
const (
	AttrState     = "cmbs.member.state"
	AttrLocal     = "cmbs.member.local"
	AttrNeighbors = "cmbs.member.neighbors_socket"
	AttrTopics    = "cmbs.member.topics"
	AttrProviders = "cmbs.member.providers"
	AttrLayers    = "cmbs.member.layers"
	AttrVia       = "cmbs.member.via"
	AttrDistance  = "cmbs.member.distance"
	// AttrNeighborsState records what the last discovery found of each
	// neighbour socket.
	AttrNeighborsState = "cmbs.member.neighbors_state"
)

// SocketAttr is the member attribute holding a layer's socket.
func SocketAttr(layer string) string { return "cmbs.member." + layer + "_socket" }

// Member is a member entity with the document the server sent for it.
type Member struct {
	*Entity
	Path string
	Raw  json.RawMessage
}

// Local reports whether the member is the server's own.
func (m Member) Local() bool { return m.Text(AttrLocal) == "true" }

// LayerState is the state ("running", "stopped") the server reports for
// one of a local member's layers.
func (m Member) LayerState(layer string) string {
	v, _ := m.Attr(AttrLayers)
	states, _ := v.(map[string]any)
	s, _ := states[layer].(string)
	return s
}

// Members reads every member the server knows, in location order.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	entities, err := c.Entities(ctx, MemberLocation)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(entities))
	for _, e := range entities {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Entity: e, Path: MemberLocation + e.ID, Raw: raw})
	}
	return out, nil
}

// LocalMember finds the server's own member: the one with the given id, or
// when id is empty the one whose local attribute is "true".
func (c *Client) LocalMember(ctx context.Context, id string) (Member, error) {
	if id != "" {
		p := MemberLocation + id
		e, raw, err := c.Get(ctx, p)
		if err != nil {
			return Member{}, err
		}
		return Member{Entity: e, Path: p, Raw: raw}, nil
	}
	members, err := c.Members(ctx)
	if err != nil {
		return Member{}, err
	}
	for _, m := range members {
		if m.Local() {
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%s has no local member; create one with 'cmbs member create'", c.Server())
}

// Message attribute names.
const (
	MsgLayer     = "cmbs.message.cmbs_layer"
	MsgContent   = "cmbs.message.message_content"
	MsgTopics    = "cmbs.message.topics"
	MsgProviders = "cmbs.message.providers"
	MsgReceiver  = "cmbs.message.l1_socket_receiver_member"
	MsgHopLimit  = "cmbs.message.hop_limit"
	MsgDelivery  = "cmbs.message.delivery"
	MsgResult    = "cmbs.message.result"
	MsgOrigin    = "cmbs.message.origin"
)

// Delivery is a send's outcome as the broker records it in the message.
type Delivery struct {
	Layer        string                 `json:"layer"`
	State        string                 `json:"state"`
	Started      string                 `json:"started"`
	Finished     string                 `json:"finished,omitempty"`
	Note         string                 `json:"note,omitempty"`
	Delivered    int                    `json:"delivered"`
	Failed       int                    `json:"failed"`
	Destinations map[string]Destination `json:"destinations"`
}

// Destination is the outcome for one member.
type Destination struct {
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

// DeliveryOf reads a message's delivery attribute; nil when it was never
// sent.
func DeliveryOf(e *Entity) (*Delivery, error) {
	v, ok := e.Attr(MsgDelivery)
	if !ok || v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var d Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("message %s: reading %s: %w", e.ID, MsgDelivery, err)
	}
	return &d, nil
}

// Done reports whether the send has finished: it records when, or says
// it is done. Other states (pending, sending…) are still running.
func (d *Delivery) Done() bool { return d != nil && (d.Finished != "" || d.State == "done") }

// Same reports whether d is the delivery other records: the same send,
// started at the same time.
func (d *Delivery) Same(other *Delivery) bool {
	return d != nil && other != nil && d.Started == other.Started && d.Layer == other.Layer
}

// Statuses counts the destinations by status, whatever the statuses are.
func (d *Delivery) Statuses() map[string]int {
	out := map[string]int{}
	for _, dest := range d.Destinations {
		out[dest.Status]++
	}
	return out
}

// Counts says how many destinations got the message and how many did not
// ("2 delivered, 0 failed"), then any other status the broker recorded
// ("1 pending").
func (d *Delivery) Counts() string {
	by := d.Statuses()
	delivered, failed := max(d.Delivered, by["delivered"]), max(d.Failed, by["failed"])
	parts := []string{fmt.Sprintf("%d delivered", delivered), fmt.Sprintf("%d failed", failed)}
	others := make([]string, 0, len(by))
	for status := range by {
		if status != "delivered" && status != "failed" && status != "" {
			others = append(others, status)
		}
	}
	sort.Strings(others)
	for _, status := range others {
		parts = append(parts, fmt.Sprintf("%d %s", by[status], status))
	}
	return strings.Join(parts, ", ")
}

// Missed counts the destinations a finished delivery did not reach,
// whatever their status says (failed, expired…), out of all of them.
func (d *Delivery) Missed() (missed, total int) {
	if d == nil {
		return 0, 0
	}
	if len(d.Destinations) == 0 {
		return d.Failed, d.Failed + d.Delivered
	}
	for _, dest := range d.Destinations {
		if dest.Status != "delivered" {
			missed++
		}
	}
	return missed, len(d.Destinations)
}

// SortedDestinations lists the destinations by member.
func (d *Delivery) SortedDestinations() []Destination {
	keys := make([]string, 0, len(d.Destinations))
	for k := range d.Destinations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Destination, 0, len(keys))
	for _, k := range keys {
		dest := d.Destinations[k]
		if dest.Member == "" {
			dest.Member = k
		}
		out = append(out, dest)
	}
	return out
}
