package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// Liveness and routing across hosts. Every HeartbeatInterval (with
// jitter) the local member sends a describe to each direct neighbour: the
// configured neighbour sockets and the members that described themselves
// to it. The describe carries the member's routes (see routeTable) and the
// answer the neighbour's, so each exchange is both a heartbeat and a route
// update; a change of routes triggers an exchange at once rather than at
// the next beat, which is how a mesh converges in milliseconds per hop. A
// neighbour silent for three intervals is down: its routes go, the next
// best paths take over, the outbox entries queued for it move to the new
// next hops, and member_down is reported (member_up when it answers
// again). Every DiscoveryInterval, with jitter, a full check_neighbors runs
// too, for sockets no route names yet. A member without a route for
// ForgetAfter is forgotten: its record is deleted.

// Event types of liveness.
const (
	// EventMemberDown: a direct neighbour stopped answering.
	EventMemberDown = "member_down"
	// EventMemberUp: a direct neighbour answers (again).
	EventMemberUp = "member_up"
)

// Liveness defaults.
const (
	DefaultHeartbeatInterval = time.Second
	DefaultDiscoveryInterval = 30 * time.Second
	DefaultForgetAfter       = 24 * time.Hour
	// missedBeats is how many intervals a neighbour may stay silent.
	missedBeats = 3
	// triggerDelay gathers the route changes of a moment into one push.
	triggerDelay = 20 * time.Millisecond
)

// liveness is the state of the heartbeat loop.
type liveness struct {
	trigger chan struct{}

	mu sync.Mutex
	// applied is what the member records say of each route, to write
	// only what changed.
	applied map[string]appliedRoute
	// lost is since when each member has had no route.
	lost map[string]time.Time
	// states is the neighbors_state last written.
	states map[string]string
}

type appliedRoute struct {
	via       string
	distance  int
	reachable bool
}

func newLiveness() *liveness {
	return &liveness{trigger: make(chan struct{}, 1), applied: map[string]appliedRoute{},
		lost: map[string]time.Time{}, states: map[string]string{}}
}

// routesChanged asks for an exchange with the neighbours soon.
func (lv *liveness) routesChanged() {
	select {
	case lv.trigger <- struct{}{}:
	default:
	}
}

// heartbeat runs the liveness loop until ctx ends. The first round runs at
// once: a member that starts announces itself to its neighbours. Rounds
// start an interval apart, however long the last one waited for a silent
// neighbour, so a dead one misses its three beats in three intervals, not
// in six; periodic discovery, which may wait seconds for the sockets it
// tries, has a loop of its own for the same reason.
func (b *Broker) heartbeat(ctx context.Context) {
	interval := b.cfg.HeartbeatInterval
	b.background(b.discoveryLoop)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-b.live.trigger:
			// Let the other changes of the moment join.
			select {
			case <-ctx.Done():
				return
			case <-time.After(triggerDelay):
			}
		}
		began := time.Now()
		b.beat(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(jitter(interval)-time.Since(began), 0))
	}
}

// discoveryLoop runs a full discovery every DiscoveryInterval, with
// jitter, until ctx ends.
func (b *Broker) discoveryLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(b.cfg.DiscoveryInterval)):
		}
		b.periodicDiscovery(ctx)
	}
}

// jitter spreads d by ±10%, so members started together do not beat in
// step.
func jitter(d time.Duration) time.Duration {
	spread := int64(d / 10)
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}

// beat is one round: an exchange with every direct neighbour, then the
// routes applied.
func (b *Broker) beat(ctx context.Context) {
	ms, err := b.table.get(ctx)
	if err != nil || ms.local == nil {
		return
	}
	self := ms.local
	b.routes.setSelf(self.ID)
	targets := b.beatTargets(self)
	if len(targets) > 0 {
		from := self.info()
		from.PublicKey, from.MaxMessageBytes = b.publicKey(), int(b.cfg.MaxMessageSize)
		payload, err := json.Marshal(envelope{Type: reqDescribe, Layer: L1, From: from, Paths: b.advertise(ctx, self.ID, "")})
		if err != nil {
			b.log.WithError(err).Error("heartbeat: describe not encoded")
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, discoveryConcurrency)
		for _, socket := range targets {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				b.exchange(ctx, ms, socket, payload)
			}()
		}
		wg.Wait()
	}
	now := time.Now()
	down := b.routes.silent(now.Add(-missedBeats*b.cfg.HeartbeatInterval), now, func(string) string {
		return fmt.Sprintf("no answer for %d heartbeats of %s", missedBeats, b.cfg.HeartbeatInterval)
	})
	for _, id := range down {
		b.log.WithField("member", id).Warn("neighbour down")
		b.emitMember(EventMemberDown, id, "no answer for "+(missedBeats*b.cfg.HeartbeatInterval).String())
	}
	changed := b.applyRoutes(ctx, now)
	if len(down) > 0 {
		b.reroute(ctx, down)
	}
	b.rerouteStranded(ctx, changed)
	if changed || len(down) > 0 {
		b.live.routesChanged()
	}
}

// beatTargets are the L1 sockets of the direct neighbours: those
// configured, and those that described themselves here.
func (b *Broker) beatTargets(self *member) []string {
	set := map[string]bool{}
	for _, s := range self.Neighbors {
		set[s] = true
	}
	for _, n := range b.routes.neighborList() {
		if n.socket != "" {
			set[n.socket] = true
		}
	}
	delete(set, self.Sockets[L1])
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// exchange sends one describe to socket and takes the answer: the
// neighbour is alive, its routes and the descriptions it gives are
// recorded.
func (b *Broker) exchange(ctx context.Context, ms *members, socket string, payload []byte) {
	t := layers.Target{Endpoint: socket}
	var err error
	if b.cfg.Curve {
		t.Key, err = b.dialKey(ctx, ms, "", socket)
	}
	var rep describeReply
	if err == nil {
		var raw []byte
		if raw, err = b.beats.RequestTo(ctx, t, payload); err == nil {
			err = json.Unmarshal(raw, &rep)
		}
	}
	if errors.Is(err, layers.ErrAuth) {
		b.noteSocket(socket, "refused: "+err.Error())
		b.cfg.Metrics.refusedByPeer(L1)
		return
	}
	if err != nil || rep.Member.ID == "" {
		if err == nil {
			err = errors.New("an answer without the member's id")
		}
		b.noteSocket(socket, "unreachable: "+err.Error())
		return
	}
	if rep.Member.ID == ms.local.ID {
		b.noteSocket(socket, "this member")
		return
	}
	if err := rep.Member.checkAddresses(); err != nil {
		b.noteSocket(socket, "refused: "+err.Error())
		return
	}
	if err := b.checkAnswer(ms, t.Key, rep.Member); err != nil {
		b.noteSocket(socket, "refused: "+err.Error())
		return
	}
	cameUp, newPaths := b.routes.alive(rep.Member.ID, socket, rep.Paths, time.Now())
	if cameUp {
		b.log.WithField("member", rep.Member.ID).Info("neighbour up")
		b.emitMember(EventMemberUp, rep.Member.ID, "")
	}
	if cameUp || newPaths {
		b.live.routesChanged()
	}
	b.noteSocket(socket, "reachable: "+rep.Member.ID)
	b.learnDescriptions(ctx, ms, rep.Member, true)
	for _, k := range rep.Known {
		b.learnDescriptions(ctx, ms, k, !b.cfg.Curve)
	}
}

// noteSocket records what the last exchange with a neighbour socket gave.
func (b *Broker) noteSocket(socket, state string) {
	b.live.mu.Lock()
	defer b.live.mu.Unlock()
	b.live.states[socket] = state
}

// learnDescriptions records a member described, when the description
// differs from the record (or there is none): exchanges every second cost
// no store write while nothing changes. proven says the description comes
// from the member itself (see learn): only then may it change its key.
func (b *Broker) learnDescriptions(ctx context.Context, ms *members, info memberInfo, proven bool) {
	if info.ID == "" || info.ID == ms.local.ID {
		return
	}
	if m := ms.byID[info.ID]; m != nil && !describesOtherwise(m, info, proven) {
		return
	}
	if err := b.describeMember(ctx, info, proven); err != nil {
		b.log.WithError(err).WithField("member", info.ID).Debug("member description not recorded")
	}
}

// describesOtherwise reports whether info says something of m its record
// does not; its key counts only when withKey.
func describesOtherwise(m *member, info memberInfo, withKey bool) bool {
	if withKey && info.PublicKey != "" && info.PublicKey != m.PublicKey {
		return true
	}
	if info.MaxMessageBytes > 0 && info.MaxMessageBytes != m.MaxMessageBytes {
		return true
	}
	if m.Title != info.Title || m.Summary != info.Summary || !slices.Equal(m.Neighbors, info.Neighbors) ||
		!slices.Equal(m.Topics, info.Topics) || !slices.Equal(m.Providers, info.Providers) {
		return true
	}
	for _, l := range Layers() {
		if m.Sockets[l] != info.Sockets[l] {
			return true
		}
	}
	return false
}

// describeMember writes what info says of a remote member, leaving its
// route (via, distance) to applyRoutes; a new member starts as a direct
// neighbour until the routes say otherwise.
func (b *Broker) describeMember(ctx context.Context, info memberInfo, proven bool) error {
	if !idOK(info.ID) {
		return fmt.Errorf("member description without a usable id %q", info.ID)
	}
	if err := info.checkAddresses(); err != nil {
		return fmt.Errorf("member %s: %w", info.ID, err)
	}
	loc := MemberLocation + info.ID
	_, err := occi.UpdateEntity(ctx, b.st, loc, func(e *occi.Entity) error {
		if flag(e, attrLocal, false) {
			return fmt.Errorf("member id %s is this server's own local member id", info.ID)
		}
		info.describeInto(e, false)
		if info.PublicKey != "" && (proven || str(e, attrPublicKey) == "") {
			e.SetAttr(attrPublicKey, info.PublicKey)
		}
		if info.MaxMessageBytes > 0 {
			e.SetAttr(attrMaxMessage, float64(info.MaxMessageBytes))
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		e := &occi.Entity{}
		info.apply(e, "", 1, now())
		if err = occi.PutEntity(ctx, b.st, e); errors.Is(err, store.ErrConflict) {
			return b.describeMember(ctx, info, proven)
		}
	}
	if err == nil {
		b.table.invalidate()
		b.cfg.Metrics.learned(info.ID, nil)
	}
	return err
}

// applyRoutes writes the routes into the member records that they change
// (via, distance, reachable, last_seen), and the neighbours' states into
// the local member; it forgets members without a route for ForgetAfter.
// It reports whether any route changed.
func (b *Broker) applyRoutes(ctx context.Context, now time.Time) bool {
	ms, err := b.table.get(ctx)
	if err != nil || ms.local == nil {
		return false
	}
	routes := b.routes.routes()
	seen := now.UTC().Format(time.RFC3339Nano)
	var writes []store.Write
	var forget []string
	changed := false
	b.live.mu.Lock()
	for _, m := range ms.remote {
		r, ok := routes[m.ID]
		want := appliedRoute{reachable: ok, via: m.Via, distance: m.Distance}
		if ok {
			want.via, want.distance = "", r.distance()
			if r.via != m.ID {
				want.via = r.via
			}
			delete(b.live.lost, m.ID)
		} else if since, known := b.live.lost[m.ID]; !known {
			b.live.lost[m.ID] = now
		} else if now.Sub(since) > b.cfg.ForgetAfter {
			forget = append(forget, m.ID)
			continue
		}
		prev, known := b.live.applied[m.ID]
		if known && prev == want {
			continue
		}
		changed = changed || !known || prev.via != want.via || prev.reachable != want.reachable
		b.live.applied[m.ID] = want
		if m.Via == want.via && m.Distance == want.distance && str(m.e, attrReachable) == fmt.Sprint(want.reachable) {
			continue // the record says it already (a record learned by discovery does not say reachable)
		}
		upd := *m.e
		upd.Attributes = cloneAttrs(m.e.Attributes)
		upd.SetAttr(attrVia, want.via)
		upd.SetAttr(attrDistance, float64(max(want.distance, 1)))
		upd.SetAttr(attrReachable, fmt.Sprint(want.reachable))
		if want.reachable {
			upd.SetAttr(attrLastSeen, seen)
		}
		d, err := occi.EncodeEntity(&upd)
		if err != nil {
			continue
		}
		writes = append(writes, store.Put(d))
	}
	states := b.neighborStates()
	statesChanged := !sameStates(states, ms.local.NeighborsState)
	b.live.mu.Unlock()
	if len(writes) > 0 {
		if _, err := b.st.Write(ctx, writes); err != nil {
			// Another writer changed a record meanwhile: next round again.
			b.live.mu.Lock()
			for _, w := range writes {
				delete(b.live.applied, w.Doc.ID[len(MemberLocation):])
			}
			b.live.mu.Unlock()
			b.log.WithError(err).Debug("routes not recorded; trying at the next heartbeat")
		}
		b.table.invalidate()
	}
	if statesChanged {
		if _, err := occi.UpdateEntity(ctx, b.st, ms.local.e.Location, func(e *occi.Entity) error {
			e.SetAttr(attrNeighborsState, toAnyMap(states))
			return nil
		}); err != nil {
			b.log.WithError(err).Debug("neighbours' states not recorded")
		}
		b.table.invalidate()
	}
	for _, id := range forget {
		b.forgetMember(ctx, id)
	}
	return changed
}

// neighborStates describes each neighbour socket: what the last exchange
// gave, or, for a neighbour that went silent, since when. b.live.mu is held.
func (b *Broker) neighborStates() map[string]string {
	out := make(map[string]string, len(b.live.states))
	for s, st := range b.live.states {
		out[s] = st
	}
	for _, n := range b.routes.neighborList() {
		if !n.up && n.socket != "" {
			out[n.socket] = fmt.Sprintf("unreachable since %s: %s", n.since.UTC().Format(time.RFC3339), n.reason)
		}
	}
	return out
}

func sameStates(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// forgetMember deletes the record of a member gone for longer than
// ForgetAfter.
func (b *Broker) forgetMember(ctx context.Context, id string) {
	loc := MemberLocation + id
	e, err := occi.GetEntity(ctx, b.st, loc)
	if err == nil && !flag(e, attrLocal, false) {
		err = b.st.Delete(ctx, loc, e.Rev)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		b.log.WithError(err).WithField("member", id).Warn("member gone too long not forgotten")
		return
	}
	b.live.mu.Lock()
	delete(b.live.lost, id)
	delete(b.live.applied, id)
	b.live.mu.Unlock()
	b.routes.forget(id)
	b.table.invalidate()
	b.log.WithFields(map[string]any{"member": id, "after": b.cfg.ForgetAfter}).Info("member without a route forgotten")
}

// periodicDiscovery runs check_neighbors, for the sockets no route names
// yet.
func (b *Broker) periodicDiscovery(ctx context.Context) {
	self, err := b.localMember(ctx)
	if err != nil || self == nil {
		return
	}
	if _, err := b.discover(ctx, self); err != nil && ctx.Err() == nil {
		b.log.WithError(err).Debug("periodic discovery")
	}
	b.table.invalidate()
}

// emitMember reports a neighbour going down or coming up.
func (b *Broker) emitMember(typ, id, reason string) {
	b.cfg.Metrics.contact(id, typ == EventMemberUp)
	sink := b.eventSink()
	if sink == nil || !b.reportsLiveness() {
		return
	}
	var e *occi.Entity
	if m, err := occi.GetEntity(context.Background(), b.st, MemberLocation+id); err == nil {
		e = m
	}
	sink.Emit(Event{Type: typ, Time: time.Now().UTC(), Location: MemberLocation + id, Message: copyEntity(e), Member: id, Reason: reason})
}

// livenessLease is held by the one server, of those sharing a store, that
// reports members going down and coming up: each server exchanges
// heartbeats for the member they share, but subscribers hear of a change
// once.
const livenessLease = "broker/liveness"

// reportsLiveness reports whether this server reports member_down and
// member_up: always when it is alone on its store, else while it holds
// livenessLease.
func (b *Broker) reportsLiveness() bool {
	if b.cfg.Leases == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	held, err := b.cfg.Leases.Acquire(ctx, livenessLease)
	if err != nil {
		b.log.WithError(err).Warn("liveness: lease not read; member events not reported by this server")
	}
	return held
}

// reroute moves the outbox entries queued for neighbours that went down to
// the next hops the routes now give their destinations; entries for
// destinations with no other route stay, for the neighbour's return or
// their expiry.
func (b *Broker) reroute(ctx context.Context, down []string) {
	routes := b.routes.routes()
	for _, dead := range down {
		for _, l := range Layers() {
			k := streamKey{layer: l, peer: dead}
			moved, err := b.rerouteStream(ctx, k, routes)
			if err != nil && ctx.Err() == nil {
				b.log.WithError(err).WithField("stream", k.String()).Warn("outbox entries not rerouted")
			}
			if moved > 0 {
				b.log.WithFields(map[string]any{"stream": k.String(), "entries": moved}).Info("outbox entries rerouted")
			}
		}
	}
}

// rerouteStranded moves the entries still queued for neighbours that are
// down and naming members behind them, which a next hop that is up now
// reaches: after any route change (another path may have come up), and
// otherwise only for the streams that such entries joined since the last
// look, so a long outage costs no scan per beat. A send that chose its
// next hops just before a neighbour went down commits its entries after
// reroute moved the others; without this they would wait for the
// neighbour's return.
func (b *Broker) rerouteStranded(ctx context.Context, routesChanged bool) {
	down := map[string]bool{}
	for _, n := range b.routes.neighborList() {
		if !n.up {
			down[n.id] = true
		}
	}
	if len(down) == 0 {
		return
	}
	b.mu.Lock()
	var ds []*deliverer
	for k, d := range b.deliverers {
		if down[k.peer] {
			ds = append(ds, d)
		}
	}
	b.mu.Unlock()
	routes := b.routes.routes()
	for _, d := range ds {
		if relayed := d.takeRelayed(); !relayed && (!routesChanged || d.idle()) {
			continue
		}
		moved, err := b.rerouteStream(ctx, d.key, routes)
		if err != nil && ctx.Err() == nil {
			d.markRelayed() // looked at again next beat
			b.log.WithError(err).WithField("stream", d.key.String()).Warn("outbox entries not rerouted")
		}
		if moved > 0 {
			b.log.WithFields(map[string]any{"stream": d.key.String(), "entries": moved}).Info("outbox entries rerouted")
		}
	}
}

// rerouteStream moves the entries of stream k whose destinations have a
// route through another next hop, a page at a time, each page in one
// transaction.
func (b *Broker) rerouteStream(ctx context.Context, k streamKey, routes map[string]route) (int, error) {
	moved := 0
	after := ""
	for {
		docs, err := b.st.Scan(ctx, k.prefix(), after, 256)
		if err != nil || len(docs) == 0 {
			return moved, err
		}
		after = docs[len(docs)-1].ID
		var writes []store.Write
		// kept are the retired entries rewritten with the destinations
		// that stay on this stream: the deliverer takes them back.
		var created, retired, kept []*entry
		for _, d := range docs {
			e, err := decodeEntry(d)
			if err != nil {
				continue
			}
			groups := map[string][]string{}
			var stay []string
			path := e.path()
			for _, to := range e.To {
				r, ok := routes[to]
				if ok && slices.Contains(path, r.via) {
					// Back along the path the message came: see hopAvoiding.
					r, ok = b.routes.routeAvoiding(to, path)
				}
				if ok && r.via != k.peer {
					groups[r.via] = append(groups[r.via], to)
				} else {
					stay = append(stay, to)
				}
			}
			if len(groups) == 0 {
				continue
			}
			hops := make([]string, 0, len(groups))
			for hop := range groups {
				hops = append(hops, hop)
			}
			sort.Strings(hops)
			for _, hop := range hops {
				ne := &entry{id: streamKey{layer: k.layer, peer: hop}.prefix() + b.keys.next(), outboxDoc: e.outboxDoc}
				ne.Peer, ne.To = hop, groups[hop]
				w, err := ne.write()
				if err != nil {
					continue
				}
				writes = append(writes, w)
				created = append(created, ne)
			}
			if len(stay) > 0 {
				rest := *e
				rest.To = stay
				w, err := rest.write()
				if err != nil {
					continue
				}
				w.Doc.Rev = e.rev
				writes = append(writes, w)
				kept = append(kept, &rest)
			} else {
				writes = append(writes, store.Remove(e.id, e.rev))
			}
			retired = append(retired, e)
		}
		if len(writes) == 0 {
			if len(docs) < 256 {
				return moved, nil
			}
			continue
		}
		revs, err := b.st.Write(ctx, writes)
		if err != nil {
			return moved, err
		}
		rev := map[string]string{}
		for i, w := range writes {
			rev[w.Doc.ID] = revs[i]
		}
		for _, e := range slices.Concat(created, kept) {
			e.rev = rev[e.id]
		}
		// Retracted, then offered again: the deliverer drops the version
		// it holds, naming destinations that moved, and delivers the one
		// left for the peer's return.
		dl := b.deliverer(k)
		dl.retract(retired...)
		dl.offer(kept...)
		b.enqueue(created)
		moved += len(retired)
		if len(docs) < 256 {
			return moved, nil
		}
	}
}
