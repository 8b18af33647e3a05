package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/houssem/cmbs/broker/api"
)

// Layers lists the broker's layers by name, in order.
func Layers() []string {
	out := make([]string, 0, len(api.Layers()))
	for _, l := range api.Layers() {
		out = append(out, string(l))
	}
	return out
}

// IsLayer reports whether s names a layer exactly as the broker spells it.
func IsLayer(s string) bool {
	l, ok := api.ParseLayer(s)
	return ok && string(l) == s
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
func (e *Entity) Attr(name string) (any, bool) { return api.Lookup(e.Attributes, name) }

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
	res, err := c.Do(ctx, http.MethodGet, api.QueryInterface, nil)
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
	res, err := c.DoRaw(ctx, method, api.QueryInterface, strings.NewReader(string(doc)))
	if err != nil {
		return nil, nil, err
	}
	var cats Categories
	if err := res.Decode(&cats); err != nil {
		return nil, nil, err
	}
	return &cats, res, nil
}

// Member is a member entity with the document the server sent for it.
type Member struct {
	*Entity
	Path string
	Raw  json.RawMessage
}

// Local reports whether the member is the server's own.
func (m Member) Local() bool {
	v, _ := m.Attr(api.MemberLocal)
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(t, "true")
	}
	return false
}

// LayerState is the state (api.LayerRunning, api.LayerStopped) the server
// reports for one of a local member's layers.
func (m Member) LayerState(layer string) string {
	v, _ := m.Attr(api.MemberLayers)
	states, _ := v.(map[string]any)
	s, _ := states[layer].(string)
	return s
}

// Members reads every member the server knows, in location order.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	entities, err := c.Entities(ctx, api.MemberLocation)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(entities))
	for _, e := range entities {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Entity: e, Path: api.MemberLocation + e.ID, Raw: raw})
	}
	return out, nil
}

// LocalMember finds the server's own member: the one with the given id, or
// when id is empty the one whose local attribute is "true".
func (c *Client) LocalMember(ctx context.Context, id string) (Member, error) {
	if id != "" {
		p := api.MemberLocation + id
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

// DeliveryOf reads a message's delivery outcome; nil when it was never
// sent.
func DeliveryOf(e *Entity) (*api.Delivery, error) {
	v, ok := e.Attr(api.MessageDelivery)
	if !ok || v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var d api.Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("message %s: reading %s: %w", e.ID, api.MessageDelivery, err)
	}
	return &d, nil
}

// SameDelivery reports whether d is the delivery other records: the same
// send, started at the same time.
func SameDelivery(d, other *api.Delivery) bool {
	return d != nil && other != nil && d.Started == other.Started && d.Layer == other.Layer
}

// Counts says how many destinations got the message and how many did not
// ("2 delivered, 0 failed"), then any other status the broker recorded
// ("1 pending", "1 expired"), whatever the statuses are.
func Counts(d *api.Delivery) string {
	by := map[string]int{}
	for _, dest := range d.Destinations {
		by[dest.Status]++
	}
	delivered, failed := max(d.Delivered, by[api.StatusDelivered]), max(d.Failed, by[api.StatusFailed])
	parts := []string{fmt.Sprintf("%d delivered", delivered), fmt.Sprintf("%d failed", failed)}
	others := make([]string, 0, len(by))
	for status := range by {
		if status != api.StatusDelivered && status != api.StatusFailed && status != "" {
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
func Missed(d *api.Delivery) (missed, total int) {
	if d == nil {
		return 0, 0
	}
	if len(d.Destinations) == 0 {
		return d.Failed + d.Expired, d.Failed + d.Expired + d.Delivered
	}
	for _, dest := range d.Destinations {
		if dest.Status != api.StatusDelivered {
			missed++
		}
	}
	return missed, len(d.Destinations)
}
