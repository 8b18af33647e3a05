package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/houssem/cmbs/occi"
)

// messageProvider is cmbs_message: it sends messages on the layers and
// executes them.
type messageProvider struct{ b *Broker }

func (messageProvider) Create(_ context.Context, e *occi.Entity) error {
	if l := str(e, msgLayer); l != "" && l != "true" {
		if _, ok := parseLayer(l); !ok {
			return occi.BadRequest(msgLayer, "%s %q names no layer; use l1, l2, l31, l32 or l4", msgLayer, l)
		}
	}
	return nil
}
func (messageProvider) Read(context.Context, *occi.Entity) error                 { return nil }
func (messageProvider) Update(context.Context, *occi.Entity, *occi.Entity) error { return nil }
func (messageProvider) Delete(context.Context, *occi.Entity) error               { return nil }

func (p messageProvider) Action(ctx context.Context, e *occi.Entity, inv occi.ActionInvocation) (*occi.ActionResult, error) {
	if inv.Term == "execute" {
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

// delivery is the outcome of a send, kept in the message's delivery
// attribute.
type delivery struct {
	Layer        Layer                 `json:"layer"`
	State        string                `json:"state"`
	Started      string                `json:"started"`
	Finished     string                `json:"finished,omitempty"`
	Note         string                `json:"note,omitempty"`
	Delivered    int                   `json:"delivered"`
	Failed       int                   `json:"failed"`
	Destinations map[string]destResult `json:"destinations"`
}

// send checks a message can go out on layer l, records it pending and
// delivers it in the background. It answers 202 at once.
func (b *Broker) send(ctx context.Context, e *occi.Entity, l Layer) (*occi.ActionResult, error) {
	if err := b.refuseWhileDraining(); err != nil {
		return nil, err
	}
	if !flag(e, msgSendable, true) {
		return nil, occi.BadRequest(msgSendable, "message %s is not sendable", e.ID)
	}
	if !e.HasMixin(l.mixin()) {
		return nil, occi.BadRequest("action", "message %s has no %s mixin, so it cannot be sent on %s", e.ID, l.mixin(), l)
	}
	if declared := str(e, msgLayer); declared != "" && declared != "true" && declared != string(l) {
		return nil, occi.BadRequest(msgLayer, "message %s is for layer %s, not %s", e.ID, declared, l)
	}
	self, err := b.localMember(ctx)
	if err != nil {
		return nil, err
	}
	if self == nil {
		return nil, occi.Conflict("action", "this server has no local member to send from; create one with %s \"true\"", attrLocal)
	}
	var target string
	var dests []*occi.Entity
	if l == L1 {
		if target = str(e, msgReceiver); target == "" {
			return nil, occi.BadRequest(msgReceiver, "an l1 message needs %s, the L1 socket of the member to ask", msgReceiver)
		}
	} else if dests, err = b.destinations(ctx, e, l); err != nil {
		return nil, err
	}
	d := delivery{Layer: l, State: "pending", Started: now(), Destinations: map[string]destResult{}}
	if _, err := occi.UpdateEntity(ctx, b.st, e.Location, func(m *occi.Entity) error {
		if str(m, msgOrigin) == "" {
			m.SetAttr(msgOrigin, self.ID)
		}
		m.SetAttr(msgDelivery, toMap(d))
		return nil
	}); err != nil {
		return nil, err
	}
	if str(e, msgOrigin) == "" {
		e.SetAttr(msgOrigin, self.ID)
	}
	msg := &occi.Entity{ID: e.ID, Title: e.Title, Summary: e.Summary, Mixins: e.Mixins, Attributes: e.Attributes}
	msg.SetAttr(msgPath, toAny(append(pathOf(e), self.ID)))
	started := b.background(func(ctx context.Context) {
		deadline := time.Now().Add(b.cfg.RouteTimeout)
		var results []destResult
		if l == L1 {
			results = b.sendL1(ctx, self, msg, target, deadline)
		} else {
			results = b.sendTo(ctx, self, l, msg, dests, 0, deadline)
		}
		b.recordDelivery(ctx, e.Location, d, results, len(dests) == 0 && l != L1)
	})
	if !started {
		return nil, &occi.Error{Status: http.StatusServiceUnavailable, Detail: "the broker is shutting down"}
	}
	b.cfg.Metrics.sentOn(l)
	return &occi.ActionResult{Status: http.StatusAccepted, Location: e.Location}, nil
}

// destinations selects the members a message goes to on layer l.
func (b *Broker) destinations(ctx context.Context, e *occi.Entity, l Layer) ([]*occi.Entity, error) {
	remotes, err := b.remoteMembers(ctx)
	if err != nil {
		return nil, err
	}
	providers, topics := strs(e, msgProviders), strs(e, msgTopics)
	var out []*occi.Entity
	for _, m := range remotes {
		byProvider := intersects(strs(m, attrProviders), providers)
		byTopic := anyTopicMatches(strs(m, attrTopics), topics)
		switch {
		case l == L2,
			l == L31 && byProvider,
			l == L32 && byTopic,
			l == L4 && byProvider && byTopic:
			out = append(out, m)
		}
	}
	return out, nil
}

// sendL1 asks the member at socket target, routing through its next hop
// when discovery found it only through another member.
func (b *Broker) sendL1(ctx context.Context, self, msg *occi.Entity, target string, deadline time.Time) []destResult {
	members, err := b.remoteMembers(ctx)
	if err == nil {
		for _, m := range members {
			if str(m, L1.socketAttr()) == target && str(m, attrVia) != "" {
				return b.sendTo(ctx, self, L1, msg, []*occi.Entity{m}, 0, deadline)
			}
		}
	}
	payload, err := json.Marshal(envelope{Type: "deliver", Layer: L1, From: describe(self), Message: toWire(msg), Hops: 1, Deadline: deadline})
	if err != nil {
		return []destResult{{Member: target, Status: statusFailed, Reason: err.Error(), Endpoint: target}}
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := b.direct.Request(rctx, target, payload)
	if err != nil {
		return []destResult{{Member: target, Status: statusFailed, Reason: err.Error(), Endpoint: target}}
	}
	var rep deliverReply
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Results) == 0 {
		return []destResult{{Member: target, Status: statusFailed, Endpoint: target, Reason: fmt.Sprintf("unreadable reply: %s", raw)}}
	}
	for i := range rep.Results {
		rep.Results[i].Endpoint = target
	}
	return rep.Results
}

// recordDelivery writes a send's outcome into the message.
func (b *Broker) recordDelivery(ctx context.Context, location string, d delivery, results []destResult, none bool) {
	d.State, d.Finished = "done", now()
	if none {
		d.Note = "no known member matches this message on " + string(d.Layer)
	}
	var l1Result any
	for _, r := range results {
		d.Destinations[r.Member] = r
		if r.Status == statusDelivered {
			d.Delivered++
			if r.Result != nil && l1Result == nil {
				l1Result = r.Result
			}
		} else {
			d.Failed++
		}
	}
	// The shutdown context may be done; the outcome is still worth saving.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := occi.UpdateEntity(wctx, b.st, location, func(m *occi.Entity) error {
		m.SetAttr(msgDelivery, toMap(d))
		if d.Layer == L1 && l1Result != nil {
			m.SetAttr(msgResult, l1Result)
		}
		return nil
	})
	if err != nil {
		b.log.WithError(err).WithField("message", location).Warn("delivery outcome not recorded")
	}
	b.emitFailures(wctx, location, d, results)
	b.cfg.Metrics.delivered(d, results)
	b.log.WithFields(map[string]any{"message": location, "layer": d.Layer, "delivered": d.Delivered, "failed": d.Failed}).Info("message sent")
}

// toMap gives a typed value the generic JSON shape attributes hold.
func toMap(v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}
