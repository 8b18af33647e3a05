package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// handler answers requests arriving on layer l.
func (b *Broker) handler(l Layer) layers.Handler {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		var env envelope
		if err := json.Unmarshal(payload, &env); err != nil {
			return nil, fmt.Errorf("malformed envelope: %v", err)
		}
		self, err := b.localMember(ctx)
		if err != nil {
			return nil, err
		}
		if self == nil {
			return nil, errors.New("this server has no local member")
		}
		var reply any
		switch env.Type {
		case "describe":
			if l != L1 {
				return nil, fmt.Errorf("discovery runs on l1, not %s", l)
			}
			reply, err = b.onDescribe(ctx, self, env)
		case "deliver":
			if env.Layer != l || env.Message == nil {
				return nil, fmt.Errorf("a %s message cannot be delivered on layer %s", env.Layer, l)
			}
			// The id becomes the stored message's location: it must be one
			// the OCCI interface would have accepted.
			if id := env.Message.ID; !idOK(id) || !isAlnum(id[0]) {
				return nil, fmt.Errorf("message id %q: want letters, digits and _.:~@-, starting with a letter or digit", id)
			}
			reply = b.onDeliver(ctx, self, env)
		default:
			return nil, fmt.Errorf("unknown request type %q", env.Type)
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(reply)
	}
}

// onDeliver takes the part of a delivery meant for this member and forwards
// the rest.
func (b *Broker) onDeliver(ctx context.Context, self *occi.Entity, env envelope) deliverReply {
	var out deliverReply
	var others []string
	mine := len(env.To) == 0
	for _, id := range env.To {
		if id == self.ID {
			mine = true
		} else {
			others = append(others, id)
		}
	}
	if mine {
		out.Results = append(out.Results, b.deliverHere(ctx, self, env))
	}
	if len(others) > 0 {
		out.Results = append(out.Results, b.forward(ctx, self, env, others)...)
	}
	return out
}

func pathOf(e *occi.Entity) []string { return strs(e, msgPath) }

// deliverHere stores (when storable) and executes (when executable) a
// message that reached its destination. A message already stored is
// acknowledged as a duplicate and not stored again. Execution happens before
// the store write so the result is written with the message, in one commit.
func (b *Broker) deliverHere(ctx context.Context, self *occi.Entity, env envelope) destResult {
	e := env.Message.entity()
	path := append(pathOf(e), self.ID)
	e.SetAttr(msgPath, toAny(path))
	res := destResult{Member: self.ID, Status: statusDelivered, Path: path}
	storable := flag(e, msgStorable, true)
	if storable {
		release, err := b.claim(ctx, e.Location)
		if err != nil {
			return destResult{Member: self.ID, Status: statusFailed, Reason: err.Error()}
		}
		defer release()
		switch _, err := b.st.Get(ctx, e.Location); {
		case err == nil:
			res.Duplicate = true
		case !errors.Is(err, store.ErrNotFound):
			return destResult{Member: self.ID, Status: statusFailed, Reason: "store: " + err.Error()}
		}
	}
	// A request (L1) is answered every time it arrives; other layers run a
	// message once.
	if flag(e, msgExecutable, true) && (!res.Duplicate || env.Layer == L1) {
		res.Result, res.Executed = b.run(ctx, self.ID, e), true
		e.SetAttr(msgResult, res.Result)
		e.SetAttr(msgExecuted, now())
	}
	switch {
	case storable && !res.Duplicate:
		err := occi.PutEntity(ctx, b.st, e)
		switch {
		case errors.Is(err, store.ErrConflict):
			// The same message, arriving concurrently, got there first.
			res.Duplicate = true
		case err != nil:
			return destResult{Member: self.ID, Status: statusFailed, Reason: "store: " + err.Error()}
		default:
			res.Stored = true
		}
	case res.Duplicate && res.Executed:
		if _, err := occi.UpdateEntity(ctx, b.st, e.Location, func(m *occi.Entity) error {
			m.SetAttr(msgResult, res.Result)
			m.SetAttr(msgExecuted, now())
			return nil
		}); err != nil {
			b.log.WithError(err).WithField("message", e.ID).Warn("execution not recorded")
		}
	}
	b.emitReceived(env, e, res)
	b.cfg.Metrics.receivedHere(env, res)
	b.log.WithFields(map[string]any{"message": e.ID, "layer": env.Layer, "from": env.From.ID,
		"stored": res.Stored, "duplicate": res.Duplicate}).Info("message received")
	return res
}

// claim waits until no other delivery of the message at location runs
// here, and makes this one the delivery that runs until release. A retry
// arriving while the first attempt still executes thus finds the message
// stored, a duplicate, instead of running it a second time.
func (b *Broker) claim(ctx context.Context, location string) (release func(), err error) {
	for {
		b.dmu.Lock()
		busy, ok := b.delivering[location]
		if !ok {
			done := make(chan struct{})
			b.delivering[location] = done
			b.dmu.Unlock()
			return func() {
				b.dmu.Lock()
				delete(b.delivering, location)
				b.dmu.Unlock()
				close(done)
			}, nil
		}
		b.dmu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another delivery of %s: %w", location, ctx.Err())
		}
	}
}

// run executes a message, turning an executor error into a result that
// says so: the delivery itself succeeded.
func (b *Broker) run(ctx context.Context, member string, e *occi.Entity) any {
	result, err := b.cfg.Executor.Execute(ctx, member, e)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return result
}

// forward passes a message on towards members this one is not.
func (b *Broker) forward(ctx context.Context, self *occi.Entity, env envelope, to []string) []destResult {
	msg := env.Message.entity()
	fail := func(reason string) []destResult {
		out := make([]destResult, len(to))
		for i, id := range to {
			out[i] = destResult{Member: id, Status: statusFailed, Reason: reason, Via: self.ID}
		}
		return out
	}
	for _, id := range pathOf(msg) {
		if id == self.ID {
			return fail(fmt.Sprintf("loop: the message already passed through %s", self.ID))
		}
	}
	if limit := number(msg, msgHopLimit, defaultHopLimit); env.Hops >= limit {
		return fail(fmt.Sprintf("hop limit %d reached at %s", limit, self.ID))
	}
	msg.SetAttr(msgPath, toAny(append(pathOf(msg), self.ID)))
	var dests []*occi.Entity
	var out []destResult
	for _, id := range to {
		m, err := occi.GetEntity(ctx, b.st, MemberLocation+id)
		if err != nil {
			out = append(out, destResult{Member: id, Status: statusFailed, Via: self.ID,
				Reason: fmt.Sprintf("%s does not know member %s", self.ID, id)})
			continue
		}
		dests = append(dests, m)
	}
	b.cfg.Metrics.forwardedOn(env.Layer)
	return append(out, b.sendTo(ctx, self, env.Layer, msg, dests, env.Hops, env.Deadline)...)
}

// sendTo delivers msg on layer l to dests, directly to direct neighbours
// and through their next hop to the others, one request per next hop.
func (b *Broker) sendTo(ctx context.Context, self *occi.Entity, l Layer, msg *occi.Entity, dests []*occi.Entity, hops int, deadline time.Time) []destResult {
	type group struct {
		hop *occi.Entity
		ids []string
	}
	groups := map[string]*group{}
	var out []destResult
	for _, d := range dests {
		hopID := str(d, attrVia)
		hop := d
		if hopID != "" && hopID != d.ID {
			h, err := occi.GetEntity(ctx, b.st, MemberLocation+hopID)
			if err != nil {
				out = append(out, destResult{Member: d.ID, Status: statusFailed, Via: hopID,
					Reason: fmt.Sprintf("next hop %s is not known", hopID)})
				continue
			}
			hop = h
		}
		g, ok := groups[hop.ID]
		if !ok {
			g = &group{hop: hop}
			groups[hop.ID] = g
		}
		g.ids = append(g.ids, d.ID)
	}
	hopIDs := make([]string, 0, len(groups))
	for id := range groups {
		hopIDs = append(hopIDs, id)
	}
	sort.Strings(hopIDs)
	results := make([][]destResult, len(hopIDs))
	done := make(chan struct{}, len(hopIDs))
	for i, id := range hopIDs {
		go func() {
			defer func() { done <- struct{}{} }()
			results[i] = b.sendGroup(ctx, self, l, msg, groups[id].hop, groups[id].ids, hops, deadline)
		}()
	}
	for range hopIDs {
		<-done
	}
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// sendGroup makes one request to a next hop for the destinations behind it.
func (b *Broker) sendGroup(ctx context.Context, self *occi.Entity, l Layer, msg, hop *occi.Entity, ids []string, hops int, deadline time.Time) []destResult {
	endpoint := str(hop, l.SocketAttr())
	via := ""
	if len(ids) != 1 || ids[0] != hop.ID {
		via = hop.ID
	}
	fail := func(reason string) []destResult {
		out := make([]destResult, len(ids))
		for i, id := range ids {
			out[i] = destResult{Member: id, Status: statusFailed, Reason: reason, Endpoint: endpoint, Via: via}
		}
		return out
	}
	if endpoint == "" {
		return fail(fmt.Sprintf("member %s has no %s socket", hop.ID, l))
	}
	env := envelope{Type: "deliver", Layer: l, From: describe(self), Message: toWire(msg), To: ids, Hops: hops + 1, Deadline: deadline}
	payload, err := json.Marshal(env)
	if err != nil {
		return fail(err.Error())
	}
	client := b.direct
	if via != "" {
		client = b.routed
	}
	// Leave the previous hop time to hear back from this one.
	rctx, cancel := context.WithDeadline(ctx, deadline.Add(-time.Duration(hops)*100*time.Millisecond))
	defer cancel()
	raw, err := client.Request(rctx, endpoint, payload)
	if err != nil {
		return fail(err.Error())
	}
	var rep deliverReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fail(fmt.Sprintf("unreadable reply from %s: %v", hop.ID, err))
	}
	got := map[string]destResult{}
	for _, r := range rep.Results {
		if r.Endpoint == "" {
			r.Endpoint = endpoint
		}
		if r.Via == "" && r.Member != hop.ID {
			r.Via = via
		}
		got[r.Member] = r
	}
	out := make([]destResult, 0, len(ids))
	for _, id := range ids {
		r, ok := got[id]
		if !ok {
			r = destResult{Member: id, Status: statusFailed, Endpoint: endpoint, Via: via,
				Reason: fmt.Sprintf("%s answered without a result for %s", hop.ID, id)}
		}
		out = append(out, r)
	}
	return out
}
