package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// onDescribe answers a discovery request: it records the asking member as
// a direct neighbour and describes this member and the members it knows.
func (b *Broker) onDescribe(ctx context.Context, self *occi.Entity, env envelope) (describeReply, error) {
	if env.From.ID != "" && env.From.ID != self.ID {
		// In plain mode nothing is proven, and the description is taken as
		// it comes; with CURVE, authorize has bound it to its key.
		b.routes.setSelf(self.ID)
		if b.routes.alive(env.From.ID, env.From.Sockets[L1], env.Paths, time.Now()) {
			b.emitMember(EventMemberUp, env.From.ID, "")
			b.live.routesChanged()
		}
		if !b.knownAsDescribed(ctx, env.From) {
			if err := b.learn(ctx, self, env.From, "", 1, true); err != nil {
				b.log.WithError(err).WithField("member", env.From.ID).Warn("describing member not recorded")
			}
		}
	}
	rep := describeReply{Member: b.describeSelf(self), Known: []memberInfo{}, Paths: advertisement(self.ID, env.From.ID, b.routes.routes())}
	remotes, err := b.remoteMembers(ctx)
	if err != nil {
		return rep, err
	}
	for _, m := range remotes {
		if m.ID != env.From.ID {
			rep.Known = append(rep.Known, describe(m))
		}
	}
	return rep, nil
}

// knownAsDescribed reports whether the member info describes is recorded as
// it says: then a describe is only a heartbeat, and nothing is written.
func (b *Broker) knownAsDescribed(ctx context.Context, info memberInfo) bool {
	ms, err := b.table.get(ctx)
	if err != nil {
		return false
	}
	m := ms.byID[info.ID]
	return m != nil && !m.Local && m.Via == "" && !describesOtherwise(m, info, true)
}

// learn records a member described by the network. A direct route always
// replaces an indirect one; an indirect route replaces only a longer one or
// the same route refreshed. The local member is never overwritten. proven
// says the description comes from the member itself, over a connection
// that proved its key (or that nothing is proven, in plain mode): only
// then may it change the member's recorded key.
func (b *Broker) learn(ctx context.Context, self *occi.Entity, info memberInfo, via string, distance int, proven bool) error {
	err := b.record(ctx, self, info, via, distance, false, proven)
	b.cfg.Metrics.learned(info.ID, err)
	return err
}

// record stores a learned member; force replaces whatever route is known,
// for members a discovery could reach only through another. A description
// that is not proven (one member telling of another) never changes a
// recorded key, and with CURVE is ignored when it names another key: a
// third party cannot rewrite a member.
func (b *Broker) record(ctx context.Context, self *occi.Entity, info memberInfo, via string, distance int, force, proven bool) error {
	if info.ID == "" || !idOK(info.ID) {
		return fmt.Errorf("member description without a usable id %q", info.ID)
	}
	if err := info.checkAddresses(); err != nil {
		return fmt.Errorf("member %s: %w", info.ID, err)
	}
	if info.ID == self.ID {
		return nil
	}
	seen := now()
	_, err := occi.UpdateEntity(ctx, b.st, MemberLocation+info.ID, func(e *occi.Entity) error {
		if flag(e, attrLocal, false) {
			return fmt.Errorf("member id %s is this server's own local member id", info.ID)
		}
		oldVia, oldDist := str(e, attrVia), number(e, attrDistance, 1)
		if !force && via != "" && oldVia != via && oldDist <= distance {
			return errKeep
		}
		if old := str(e, attrPublicKey); old != "" && old != info.PublicKey {
			switch {
			case info.PublicKey == "":
				info.PublicKey = old
			case !proven && b.cfg.Curve:
				b.log.WithFields(map[string]any{"member": info.ID, "key": old, "described_with": info.PublicKey}).
					Warn("a description of a member under another key than its own was ignored")
				return errKeep
			case !proven:
				info.PublicKey = old
			}
		}
		info.apply(e, via, distance, seen)
		return nil
	})
	switch {
	case errors.Is(err, errKeep):
		return nil
	case errors.Is(err, store.ErrNotFound):
		e := &occi.Entity{}
		info.apply(e, via, distance, seen)
		err = occi.PutEntity(ctx, b.st, e)
		if errors.Is(err, store.ErrConflict) {
			// Learned concurrently by another exchange: try once more as an update.
			return b.record(ctx, self, info, via, distance, force, proven)
		}
	}
	return err
}

var errKeep = errors.New("keep the known route")

// checkAddresses refuses a description whose sockets or neighbours no
// member could dial: what a peer says is stored and dialled later, so it is
// checked as strictly as what a client posts.
func (m memberInfo) checkAddresses() error {
	for l, s := range m.Sockets {
		if _, known := parseLayer(string(l)); !known {
			return fmt.Errorf("unknown layer %q", l)
		}
		if err := layers.ValidateConnectEndpoint(s); err != nil {
			return fmt.Errorf("%s socket: %w", l, err)
		}
	}
	for _, n := range m.Neighbors {
		if err := layers.ValidateConnectEndpoint(n); err != nil {
			return fmt.Errorf("neighbour: %w", err)
		}
	}
	return nil
}

// discoveryConcurrency bounds the L1 exchanges one discovery level runs at
// once.
const discoveryConcurrency = 32

// idOK accepts the ids occi accepts in a location: "." and ".." among
// the others it refuses would name another path once a client resolves it.
func idOK(id string) bool {
	if len(id) == 0 || len(id) > 255 || !isAlnum(id[0]) {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':' || r == '~' || r == '@') {
			return false
		}
	}
	return true
}

// discover runs check_neighbors: an L1 exchange with every neighbour
// socket, then with every socket they make known, level by level until none
// is left. Each level's exchanges run in parallel and each is bounded by the
// client's timeout, so an unreachable neighbour costs one timeout and blocks
// nobody else. With CURVE each socket is dialled at its member's key (see
// dialKey), and a member must describe itself with the key it proved.
func (b *Broker) discover(ctx context.Context, self *occi.Entity) (memberActionResult, error) {
	res := memberActionResult{Member: self.ID, Action: "check_neighbors", Discovered: []string{}, Unreachable: map[string]string{}}
	visited := map[string]bool{str(self, L1.SocketAttr()): true}
	level := strs(self, attrNeighbors)
	states := map[string]any{}
	discovered := map[string]bool{}
	// reached holds members answering directly this round; indirect the
	// best route to the others, applied at the end over any stale direct one.
	reached := map[string]bool{}
	type route struct {
		info memberInfo
		via  string
	}
	indirect := map[string]route{}
	// keys holds the keys members described by their neighbours have, to
	// dial their sockets with.
	keys := map[string]string{}
	ms, err := b.table.get(ctx)
	if err != nil {
		return res, err
	}
	b.routes.setSelf(self.ID)
	payload, err := json.Marshal(envelope{Type: reqDescribe, Layer: L1, From: b.describeSelf(self), Paths: advertisement(self.ID, "", b.routes.routes())})
	if err != nil {
		return res, err
	}
	for len(level) > 0 {
		var fresh []string
		for _, s := range level {
			if !visited[s] {
				visited[s] = true
				fresh = append(fresh, s)
			}
		}
		answers := b.describeAll(ctx, ms, fresh, keys, payload)
		level = nil
		for _, a := range answers {
			if a.err != nil {
				res.Unreachable[a.socket] = a.err.Error()
				if errors.Is(a.err, layers.ErrAuth) {
					states[a.socket] = "refused: " + a.err.Error()
					b.cfg.Metrics.refusedByPeer(L1)
					b.log.WithError(a.err).WithFields(map[string]any{"socket": a.socket, "key": b.publicKey()}).
						Warn("neighbour refused this member")
					continue
				}
				states[a.socket] = "unreachable: " + a.err.Error()
				b.log.WithError(a.err).WithField("socket", a.socket).Warn("neighbour unreachable")
				continue
			}
			m := a.rep.Member
			if m.ID == self.ID {
				states[a.socket] = "this member"
				continue
			}
			if err := b.checkAnswer(ms, a.key, m); err != nil {
				res.Unreachable[a.socket] = err.Error()
				states[a.socket] = "refused: " + err.Error()
				b.log.WithError(err).WithField("socket", a.socket).Warn("neighbour's description refused")
				continue
			}
			if err := b.learn(ctx, self, m, "", 1, true); err != nil {
				res.Unreachable[a.socket] = err.Error()
				states[a.socket] = "refused: " + err.Error()
				continue
			}
			states[a.socket] = "reachable: " + m.ID
			discovered[m.ID] = true
			reached[m.ID] = true
			// It answered directly: a neighbour, whose routes count.
			if b.routes.alive(m.ID, a.socket, a.rep.Paths, time.Now()) {
				b.emitMember(EventMemberUp, m.ID, "")
			}
			for _, n := range m.Neighbors {
				if !visited[n] {
					level = append(level, n)
				}
			}
			for _, k := range a.rep.Known {
				if k.ID == self.ID || k.ID == "" {
					continue
				}
				if err := b.learn(ctx, self, k, m.ID, k.Distance+1, !b.cfg.Curve); err != nil {
					b.log.WithError(err).WithField("member", k.ID).Warn("member learned through a neighbour not recorded")
					continue
				}
				discovered[k.ID] = true
				if r, ok := indirect[k.ID]; !ok || r.info.Distance > k.Distance {
					indirect[k.ID] = route{k, m.ID}
				}
				if s := k.Sockets[L1]; s != "" && !visited[s] {
					level = append(level, s)
					if _, ok := keys[s]; !ok && k.PublicKey != "" {
						keys[s] = k.PublicKey
					}
				}
			}
		}
	}
	for id, r := range indirect {
		if reached[id] {
			continue
		}
		if err := b.record(ctx, self, r.info, r.via, r.info.Distance+1, true, !b.cfg.Curve); err != nil {
			b.log.WithError(err).WithField("member", id).Warn("route through a neighbour not recorded")
		}
	}
	for id := range discovered {
		res.Discovered = append(res.Discovered, id)
	}
	sort.Strings(res.Discovered)
	_, err = occi.UpdateEntity(ctx, b.st, self.Location, func(e *occi.Entity) error {
		e.SetAttr(attrNeighborsState, states)
		return nil
	})
	return res, err
}

// describeAnswer is what one socket answered a describe.
type describeAnswer struct {
	socket string
	key    string // the key it was dialled with, with CURVE
	rep    describeReply
	err    error
}

// describeAll sends payload, a describe, to every socket in parallel, at
// most discoveryConcurrency at once: a neighbour may make thousands of
// sockets known, and discovery must not exhaust file descriptors.
func (b *Broker) describeAll(ctx context.Context, ms *members, sockets []string, keys map[string]string, payload []byte) []describeAnswer {
	answers := make([]describeAnswer, len(sockets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, discoveryConcurrency)
	for i, s := range sockets {
		known := keys[s]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			a := &answers[i]
			a.socket = s
			t := layers.Target{Endpoint: s}
			if b.cfg.Curve {
				if t.Key, a.err = b.dialKey(ctx, ms, known, s); a.err != nil {
					return
				}
				a.key = t.Key
			}
			var raw []byte
			if raw, a.err = b.direct.RequestTo(ctx, t, payload); a.err == nil {
				a.err = json.Unmarshal(raw, &a.rep)
			}
		}()
	}
	wg.Wait()
	return answers
}

// checkAnswer refuses, with CURVE, a member that describes itself with
// another key than the one its socket proved it holds, or one that key
// may not speak for.
func (b *Broker) checkAnswer(ms *members, key string, m memberInfo) error {
	if !b.cfg.Curve {
		return nil
	}
	if m.PublicKey != key {
		return fmt.Errorf("the member at this socket holds key %s but describes itself as %s with key %q",
			layers.ShortKey(key), m.ID, layers.ShortKey(m.PublicKey))
	}
	return b.maySpeakFor(ms, m.ID, key)
}
