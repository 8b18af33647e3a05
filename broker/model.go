package broker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/occi"
)

// Category identifiers and locations of the broker's kinds: the wire
// contract's (package api), named here for the broker's own code.
const (
	MemberKind      = api.MemberKind
	MessageKind     = api.MessageKind
	MemberLocation  = api.MemberLocation
	MessageLocation = api.MessageLocation
	memberActions   = api.MemberActions
	// Provider names, as the original's put_provider files attach them.
	MemberProvider  = api.MemberProvider
	MessageProvider = api.MessageProvider
)

// Layer names one of the broker's ZeroMQ layers.
type Layer = api.Layer

// The layers, by the names their actions and mixins use.
const (
	L1  = api.L1
	L2  = api.L2
	L31 = api.L31
	L32 = api.L32
	L4  = api.L4
)

// Layers lists every layer in order.
func Layers() []Layer { return api.Layers() }

func parseLayer(s string) (Layer, bool) {
	if strings.Contains(s, ".") {
		return "", false
	}
	return api.ParseLayer(s)
}

// Member attribute names.
const (
	attrState          = api.MemberState
	attrLocal          = api.MemberLocal
	attrNeighbors      = api.MemberNeighbors
	attrTopics         = api.MemberTopics
	attrProviders      = api.MemberProviders
	attrLayers         = api.MemberLayers
	attrNeighborsState = api.MemberNeighborsState
	attrVia            = api.MemberVia
	attrDistance       = api.MemberDistance
	attrLastSeen       = api.MemberLastSeen
	attrPublicKey      = api.MemberPublicKey
	attrMaxMessage     = api.MemberMaxMessageBytes
	attrReachable      = api.MemberReachable
)

// Message attribute names.
const (
	msgLayer        = api.MessageLayer
	msgExecutable   = api.MessageExecutable
	msgSendable     = api.MessageSendable
	msgStorable     = api.MessageStorable
	msgPath         = api.MessagePath
	msgContent      = api.MessageContent
	msgResult       = api.MessageResult
	msgReceiver     = api.MessageReceiver
	msgProviders    = api.MessageProviders
	msgTopics       = api.MessageTopics
	msgHopLimit     = api.MessageHopLimit
	msgDelivery     = api.MessageDelivery
	msgExecuted     = api.MessageExecuted
	msgOrigin       = api.MessageOrigin
	msgExpires      = api.MessageExpires
	msgSendOnCreate = api.MessageSendOnCreate
)

// Aliases are the original's other spellings: l3.1/l3.2 for l31/l32 in
// socket attributes and start actions.
func Aliases() occi.Aliases {
	a := occi.Aliases{Actions: map[string]string{}}
	for _, pair := range [][2]string{{"l3.1", "l31"}, {"l3.2", "l32"}} {
		for _, verb := range []string{"start_", "stop_"} {
			a.Actions[memberActions+verb+pair[0]] = memberActions + verb + pair[1]
		}
		a.Attributes = append(a.Attributes, occi.AttrAlias{
			From: []string{"cmbs", "member", pair[0] + "_socket"},
			To:   []string{"cmbs", "member", pair[1] + "_socket"},
		})
	}
	return a
}

// flag reads a boolean attribute that may be a JSON boolean or the
// original's "True"/"False"; absent or unreadable values give def.
func flag(e *occi.Entity, name string, def bool) bool {
	v, ok := e.Attr(name)
	if !ok {
		return def
	}
	if b, ok := occi.AsBool(v); ok {
		return b
	}
	return def
}

func str(e *occi.Entity, name string) string {
	v, _ := e.Attr(name)
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

// strs reads an array of strings; a lone string counts as one element and
// the original's "" as none.
func strs(e *occi.Entity, name string) []string {
	v, _ := e.Attr(name)
	switch t := v.(type) {
	case string:
		if strings.TrimSpace(t) == "" {
			return nil
		}
		return []string{strings.TrimSpace(t)}
	case []any:
		out := make([]string, 0, len(t))
		for _, item := range t {
			if s, ok := item.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
		return out
	}
	return nil
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

func number(e *occi.Entity, name string, def int) int {
	v, _ := e.Attr(name)
	switch t := v.(type) {
	case float64:
		return int(t)
	case string:
		var n int
		if _, err := fmt.Sscan(t, &n); err == nil {
			return n
		}
	}
	return def
}

// memberInfo is a member's description as members exchange it over L1.
type memberInfo struct {
	ID        string           `json:"id"`
	Title     string           `json:"title,omitempty"`
	Summary   string           `json:"summary,omitempty"`
	Sockets   map[Layer]string `json:"sockets"`
	Neighbors []string         `json:"neighbors,omitempty"`
	Topics    []string         `json:"topics,omitempty"`
	Providers []string         `json:"providers,omitempty"`
	// Distance is the hops from the describing member (0 for itself).
	Distance int `json:"distance"`
	// PublicKey is the member's CURVE public key (Z85), when it has one.
	PublicKey string `json:"public_key,omitempty"`
	// MaxMessageBytes is the largest layer message the member accepts; 0
	// when it did not say.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`
}

func describe(e *occi.Entity) memberInfo {
	info := memberInfo{ID: e.ID, Title: e.Title, Summary: e.Summary, Sockets: map[Layer]string{},
		Neighbors: strs(e, attrNeighbors), Topics: strs(e, attrTopics), Providers: strs(e, attrProviders),
		PublicKey: str(e, attrPublicKey), MaxMessageBytes: number(e, attrMaxMessage, 0)}
	for _, l := range Layers() {
		if s := str(e, l.SocketAttr()); s != "" {
			info.Sockets[l] = s
		}
	}
	if !flag(e, attrLocal, false) {
		info.Distance = number(e, attrDistance, 1)
	}
	return info
}

// apply writes a description learned from the network into a non-local
// member entity.
func (m memberInfo) apply(e *occi.Entity, via string, distance int, seen string) {
	e.Type, e.ID, e.Location, e.Kind = occi.TypeResource, m.ID, MemberLocation+m.ID, MemberKind
	if e.Mixins == nil {
		e.Mixins = []string{}
	}
	m.describeInto(e, false)
	if m.PublicKey != "" {
		e.SetAttr(attrPublicKey, m.PublicKey)
	}
	if m.MaxMessageBytes > 0 {
		e.SetAttr(attrMaxMessage, float64(m.MaxMessageBytes))
	}
	e.SetAttr(attrVia, via)
	e.SetAttr(attrDistance, float64(distance))
	e.SetAttr(attrLastSeen, seen)
}

// describeInto writes what a description says of a member into e: title,
// summary, whether it is local, its sockets, neighbours, topics and
// providers. Attributes it does not name are left as they are.
func (m memberInfo) describeInto(e *occi.Entity, local bool) {
	e.Title, e.Summary = m.Title, m.Summary
	e.SetAttr(attrLocal, strconv.FormatBool(local))
	e.SetAttr(attrState, "active")
	for _, l := range Layers() {
		e.SetAttr(l.SocketAttr(), m.Sockets[l])
	}
	e.SetAttr(attrNeighbors, toAny(m.Neighbors))
	e.SetAttr(attrTopics, toAny(m.Topics))
	e.SetAttr(attrProviders, toAny(m.Providers))
}
