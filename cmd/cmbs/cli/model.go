package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/houssem/cmbs/broker/api"
)

// Locations of the query interface and of the broker's kinds.
const (
	QueryInterface  = "/-/"
	MemberLocation  = "/cmbs/member/"
	MessageLocation = "/cmbs/message/"
)

// Category identifiers the client builds entities with.
const (
	MemberKind  = "http://houssem.org/cmbs#member"
	MessageKind = "http://houssem.org/cmbs#message"
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
	paths, err := c.List(ctx, MemberLocation)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make([]Member, 0, len(paths))
	for _, p := range paths {
		e, raw, err := c.Get(ctx, p)
		if err != nil {
			var prob *Problem
			if errors.As(err, &prob) && prob.Status == http.StatusNotFound {
				continue // deleted since it was listed
			}
			return nil, err
		}
		out = append(out, Member{Entity: e, Path: p, Raw: raw})
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

// Delivery is a send's outcome as the broker records it in the message:
// the wire contract's.
type Delivery = api.Delivery

// Destination is the outcome for one member.
type Destination = api.Destination

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
