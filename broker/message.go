package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// messageProvider is cmbs_message: it checks messages, sends them on the
// layers and executes them.
type messageProvider struct{ b *Broker }

// StageCreate checks a new message and, with send_on_create, sends it:
// its outbox entries are committed with it, so the 201 is as much a
// promise as a send's 202.
func (p messageProvider) StageCreate(ctx context.Context, e *occi.Entity) (*occi.Stage, error) {
	msg, err := decodeMessage(e)
	if err != nil {
		return nil, err
	}
	if !msg.SendOnCreate {
		return nil, nil
	}
	if msg.Layer == "" {
		return nil, occi.BadRequest(msgSendOnCreate, "%s needs the layer to send on: set %s (l1, l2, l31, l32 or l4) and its mixin", msgSendOnCreate, msgLayer)
	}
	plan, err := p.b.planSend(ctx, msg, msg.Layer)
	if err != nil {
		return nil, err
	}
	return &occi.Stage{Writes: plan.writes, Committed: func(ctx context.Context, revs []string) string {
		plan.setRevs(revs)
		p.b.sent(plan)
		if msg.Layer != L1 {
			return ""
		}
		applied, _ := p.b.awaitReply(ctx, e.Location)
		return applied
	}}, nil
}

// Create is never called: the server calls StageCreate instead.
func (p messageProvider) Create(ctx context.Context, e *occi.Entity) error {
	_, err := p.StageCreate(ctx, e)
	return err
}

// Read adds to the destinations a send still waits for why they wait: the
// live state of the deliverer retrying their next hop, which is kept in
// memory, not written on every attempt.
func (p messageProvider) Read(_ context.Context, e *occi.Entity) error {
	d, err := deliveryOf(e)
	if err != nil || d.Done() || len(d.Destinations) == 0 {
		return nil
	}
	changed := false
	for id, dest := range d.Destinations {
		if dest.Status != statusPending {
			continue
		}
		k := streamKey{layer: d.Layer, peer: dest.Via}
		switch {
		case k.peer != "":
		case dest.Endpoint != "" && dest.Endpoint == id:
			k.endpoint = id
		default:
			k.peer = id
		}
		st, ok := p.b.peerStatus(k)
		if !ok || !st.Failing {
			continue
		}
		dest.Reason = fmt.Sprintf("retrying since %s (%d attempts): %s", st.Since.Format(time.RFC3339), st.Failures, st.Reason)
		d.Destinations[id] = dest
		changed = true
	}
	if changed {
		return setDelivery(e, d)
	}
	return nil
}

func (messageProvider) Update(_ context.Context, _, updated *occi.Entity) error {
	_, err := decodeMessage(updated)
	return err
}

func (messageProvider) Delete(context.Context, *occi.Entity) error { return nil }

func (p messageProvider) Action(ctx context.Context, e *occi.Entity, inv occi.ActionInvocation) (*occi.ActionResult, error) {
	if inv.Term == api.ActionExecute {
		return p.b.execute(ctx, e)
	}
	name, ok := strings.CutPrefix(inv.Term, "send_")
	l, known := parseLayer(name)
	if !ok || !known {
		return nil, occi.BadRequest("action", "the message provider has no action %q", inv.Term)
	}
	return p.b.send(ctx, e, l)
}

// execute runs a message on this member.
func (b *Broker) execute(ctx context.Context, e *occi.Entity) (*occi.ActionResult, error) {
	self, err := b.localMember(ctx)
	if err != nil {
		return nil, err
	}
	member := ""
	if self != nil {
		member = self.ID
	}
	result, err := b.cfg.Executor.Execute(ctx, member, e)
	if err != nil {
		return nil, &occi.Error{Status: http.StatusUnprocessableEntity, Field: "action", Err: err,
			Detail: fmt.Sprintf("executing %s failed: %v", e.ID, err)}
	}
	if _, err := occi.UpdateEntity(ctx, b.st, e.Location, func(m *occi.Entity) error {
		m.SetAttr(msgResult, result)
		m.SetAttr(msgExecuted, now())
		return nil
	}); err != nil {
		return nil, err
	}
	return &occi.ActionResult{Status: http.StatusOK, Body: map[string]any{"message": e.ID, "member": member, "result": result}}, nil
}

// sendPlan is a send ready to commit: the message as it records the send,
// and one outbox entry per next hop.
type sendPlan struct {
	msg     message
	layer   Layer
	entries []*entry
	writes  []store.Write
}

// send sends a stored message on layer l: the message's pending delivery
// and its outbox entries are committed together, and the answer (202) says
// they are. With Prefer: wait on L1, the answer waits for the reply.
func (b *Broker) send(ctx context.Context, e *occi.Entity, l Layer) (*occi.ActionResult, error) {
	var plan *sendPlan
	for attempt := 1; ; attempt++ {
		msg, err := decodeMessage(e)
		if err != nil {
			return nil, err
		}
		if plan, err = b.planSend(ctx, msg, l); err != nil {
			return nil, err
		}
		d, err := occi.EncodeEntity(msg.e)
		if err != nil {
			return nil, err
		}
		revs, err := b.st.Write(ctx, append([]store.Write{store.Put(d)}, plan.writes...))
		if err == nil {
			plan.setRevs(revs[1:])
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt == 3 {
			return nil, err
		}
		// The message changed since it was read: send what it is now.
		if e, err = occi.GetEntity(ctx, b.st, e.Location); err != nil {
			return nil, err
		}
	}
	b.sent(plan)
	res := &occi.ActionResult{Status: http.StatusAccepted, Location: e.Location}
	if l == L1 {
		if applied, body := b.awaitReply(ctx, e.Location); applied != "" {
			res.Status, res.Body, res.PreferenceApplied = http.StatusOK, body, applied
		}
	}
	return res, nil
}

// planSend checks that msg may go out on l, picks its destinations and
// builds its outbox entries, and records the send in msg's entity (origin,
// pending delivery).
func (b *Broker) planSend(ctx context.Context, msg message, l Layer) (*sendPlan, error) {
	if b.draining.Load() {
		return nil, &occi.Error{Status: http.StatusServiceUnavailable, Field: "action",
			Detail: "this member is terminating and accepts no new sends"}
	}
	if !msg.Sendable {
		return nil, occi.BadRequest(msgSendable, "message %s is not sendable", msg.ID)
	}
	if !msg.e.HasMixin(l.Mixin()) {
		return nil, occi.BadRequest("action", "message %s has no %s mixin, so it cannot be sent on %s", msg.ID, l.Mixin(), l)
	}
	if msg.Layer != "" && msg.Layer != l {
		return nil, occi.BadRequest(msgLayer, "message %s is for layer %s, not %s", msg.ID, msg.Layer, l)
	}
	started := time.Now().UTC()
	expires := started.Add(b.cfg.Expiry)
	if msg.Expires != "" {
		t, err := api.ParseExpires(msg.Expires, started)
		if err != nil {
			return nil, occi.BadRequest(msgExpires, "%s: %v", msgExpires, err)
		}
		expires = t
	}
	ms, err := b.table.get(ctx)
	if err != nil {
		return nil, err
	}
	if ms.local == nil {
		return nil, occi.Conflict("action", "this server has no local member to send from; create one with %s \"true\"", attrLocal)
	}
	self := ms.local.ID
	groups, err := b.destinations(ms, msg, l)
	if err != nil {
		return nil, err
	}
	if msg.Origin == "" {
		msg.Origin = self
		msg.e.SetAttr(msgOrigin, self)
	}
	d := api.Delivery{Layer: l, State: api.DeliveryPending, Started: started.Format(time.RFC3339Nano),
		Expires: expires.Format(time.RFC3339Nano), Destinations: map[string]destResult{}}
	wire := toWire(msg.e)
	(&occi.Entity{Attributes: wire.Attributes}).SetAttr(msgPath, toAny(append(slices.Clone(msg.Path), self)))
	plan := &sendPlan{msg: msg, layer: l}
	for _, g := range groups {
		e, err := b.newEntry(g.key, kindMessage, g.to, 0, expires, msg.e.Location, wire)
		if err != nil {
			return nil, err
		}
		if err := b.checkFits(e, ms.local.info()); err != nil {
			return nil, err
		}
		w, err := e.write()
		if err != nil {
			return nil, err
		}
		plan.entries = append(plan.entries, e)
		plan.writes = append(plan.writes, w)
		for _, id := range g.dests {
			dest := destResult{Member: id, Status: statusPending, Endpoint: g.key.endpoint}
			if g.key.peer != "" && g.key.peer != id {
				dest.Via = g.key.peer
			}
			d.Destinations[id] = dest
		}
	}
	d.Recount(started.Format(time.RFC3339Nano))
	if len(groups) == 0 {
		d.Note = "no known member matches this message on " + string(l)
	}
	if err := setDelivery(msg.e, d); err != nil {
		return nil, err
	}
	return plan, nil
}

// setRevs records the revisions the commit gave the plan's entries.
func (p *sendPlan) setRevs(revs []string) {
	for i, e := range p.entries {
		e.rev = revs[i]
	}
}

// sent hands a committed send to its deliverers.
func (b *Broker) sent(p *sendPlan) {
	b.enqueue(p.entries)
	b.cfg.Metrics.sentOn(p.layer)
}

// group is the destinations a message reaches through one next hop.
type group struct {
	key streamKey
	to  []string // the ids the entry names
	// dests are the delivery's keys for them: member ids, or the socket
	// of an L1 request to a member that is not known.
	dests []string
}

// destinations groups the members a message goes to on layer l by next
// hop.
func (b *Broker) destinations(ms *members, msg message, l Layer) ([]group, error) {
	var targets []*member
	if l == L1 {
		socket := msg.Receiver
		if socket == "" {
			return nil, occi.BadRequest(msgReceiver, "an l1 message needs %s, the L1 socket of the member to ask", msgReceiver)
		}
		m := ms.remoteByL1(socket)
		if m == nil {
			// Not a member this server knows: ask the socket directly.
			return []group{{key: streamKey{layer: L1, endpoint: socket}, dests: []string{socket}}}, nil
		}
		targets = []*member{m}
	} else {
		for _, m := range ms.remote {
			byProvider := intersects(m.Providers, msg.Providers)
			byTopic := anyTopicMatches(m.Topics, msg.Topics)
			if l == L2 || l == L31 && byProvider || l == L32 && byTopic || l == L4 && byProvider && byTopic {
				targets = append(targets, m)
			}
		}
	}
	var out []group
	index := map[string]int{}
	for _, m := range targets {
		hop := m.nextHop()
		i, ok := index[hop]
		if !ok {
			i = len(out)
			index[hop] = i
			out = append(out, group{key: streamKey{layer: l, peer: hop}})
		}
		out[i].to = append(out[i].to, m.ID)
		out[i].dests = append(out[i].dests, m.ID)
	}
	return out, nil
}

// awaitReply holds an L1 send's answer, under Prefer: wait, until the
// reply is recorded or the wait (capped by MaxWait) is over. It returns the
// Preference-Applied value and the answer's body, or "" without the
// preference.
func (b *Broker) awaitReply(ctx context.Context, location string) (string, any) {
	wait := occi.PreferencesOf(ctx).Wait
	if wait <= 0 {
		return "", nil
	}
	capped := wait > b.cfg.MaxWait
	wait = min(wait, b.cfg.MaxWait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var (
		e   *occi.Entity
		err error
	)
	for {
		changed, stop := b.waits.watch(location)
		e, err = occi.GetEntity(wctx, b.st, location)
		if err != nil {
			stop()
			break
		}
		if d, _ := deliveryOf(e); d.Done() {
			stop()
			break
		}
		select {
		case <-changed:
		case <-wctx.Done():
		}
		stop()
		if wctx.Err() != nil {
			e, err = occi.GetEntity(context.WithoutCancel(ctx), b.st, location)
			break
		}
	}
	body := map[string]any{"message": location}
	if err != nil {
		body["error"] = err.Error()
	} else {
		d, _ := deliveryOf(e)
		body["delivery"] = d
		if r, ok := e.Attr(msgResult); ok {
			body["result"] = r
		}
		if !d.Done() {
			body["note"] = fmt.Sprintf("no reply within %s; the delivery goes on", wait)
		}
	}
	if capped {
		body["wait"] = fmt.Sprintf("the wait asked for was capped at %s, this server's maximum", b.cfg.MaxWait)
	}
	return occi.WaitApplied(wait), body
}
