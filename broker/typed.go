package broker

import (
	"errors"
	"fmt"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/occi"
)

// message is a message entity read once at the boundary: its fields,
// typed and checked, beside the entity they came from.
type message struct {
	api.Message
	e *occi.Entity
}

// decodeMessage reads a message entity; a value of the wrong shape is a
// 400 naming its attribute.
func decodeMessage(e *occi.Entity) (message, error) {
	m, err := api.MessageFromAttributes(e.Attributes)
	if err != nil {
		return message{}, badAttribute(err)
	}
	m.ID, m.Title, m.Summary = e.ID, e.Title, e.Summary
	return message{Message: m, e: e}, nil
}

// member is a member entity read once: its fields beside the entity.
type member struct {
	api.Member
	e *occi.Entity
}

func decodeMember(e *occi.Entity) (member, error) {
	m, err := api.MemberFromAttributes(e.Attributes)
	if err != nil {
		return member{}, badAttribute(err)
	}
	m.ID, m.Title, m.Summary = e.ID, e.Title, e.Summary
	return member{Member: m, e: e}, nil
}

// badAttribute turns the wire contract's field errors into 400s naming
// the attribute.
func badAttribute(err error) error {
	var fe *api.FieldError
	if errors.As(err, &fe) {
		return occi.BadRequest(fe.Field, "%s: %s", fe.Field, fe.Problem)
	}
	return fmt.Errorf("read attributes: %w", err)
}

// info is the description members exchange of m.
func (m member) info() memberInfo {
	info := memberInfo{ID: m.ID, Title: m.Title, Summary: m.Summary, Sockets: map[Layer]string{},
		Neighbors: m.Neighbors, Topics: m.Topics, Providers: m.Providers, PublicKey: m.PublicKey, MaxMessageBytes: m.MaxMessageBytes}
	for l, s := range m.Sockets {
		info.Sockets[l] = s
	}
	if !m.Local {
		info.Distance = max(m.Distance, 1)
	}
	return info
}

// nextHop is the member to send to for m: m itself when it is a direct
// neighbour, else the member discovery found it through.
func (m member) nextHop() string {
	if m.Via != "" && m.Via != m.ID {
		return m.Via
	}
	return m.ID
}
