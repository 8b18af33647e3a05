package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// LocalMemberSpec declares the local member of this server, as a config
// file does: the member a POST of the original's post_member.json would
// create, the layers its start actions would start, and whether to run
// check_neighbors.
type LocalMemberSpec struct {
	// ID is the member's id: it lives at /cmbs/member/ID.
	ID      string
	Title   string
	Summary string
	// Sockets is the endpoint peers reach each layer at, which the
	// layer's receiver binds unless the broker's Config.Bind says
	// otherwise. A layer without one cannot start.
	Sockets map[Layer]string
	// Neighbors are the L1 sockets discovery starts from.
	Neighbors []string
	// Topics and Providers are what L3.2, L3.1 and L4 deliver by.
	Topics    []string
	Providers []string
	// Start lists the layers running once EnsureLocalMember returns; the
	// others are stopped.
	Start []Layer
	// Discover runs check_neighbors once the layers are up.
	Discover bool
}

// check reports every problem of the spec at once, each naming its field;
// bind is where the server binds, which makes the sockets addresses peers
// must be able to dial.
func (s LocalMemberSpec) check(bind Bind) error {
	var errs []error
	if !idOK(s.ID) || !isAlnum(s.ID[0]) {
		errs = append(errs, fmt.Errorf("id %q: want letters, digits and _.:~@-, starting with a letter or digit", s.ID))
	}
	for l, ep := range s.Sockets {
		if _, ok := parseLayer(string(l)); !ok {
			errs = append(errs, fmt.Errorf("sockets: no layer %q", l))
			continue
		}
		if err := layers.ValidateEndpoint(ep); err != nil {
			errs = append(errs, fmt.Errorf("sockets.%s: %w", l, err))
		} else if err := bind.checkAdvertised(l, ep); err != nil {
			errs = append(errs, fmt.Errorf("sockets.%s: %w", l, err))
		}
	}
	for i, n := range s.Neighbors {
		if err := layers.ValidateConnectEndpoint(n); err != nil {
			errs = append(errs, fmt.Errorf("neighbors[%d]: %w", i, err))
		}
	}
	for i, l := range s.Start {
		switch {
		case !slices.Contains(Layers(), l):
			errs = append(errs, fmt.Errorf("start[%d]: no layer %q", i, l))
		case s.Sockets[l] == "":
			errs = append(errs, fmt.Errorf("start[%d]: layer %s has no socket", i, l))
		}
	}
	return errors.Join(errs...)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// EnsureLocalMember makes the local member what spec declares: it creates
// it, or updates the stored one (keeping what spec does not name, such as
// the last discovery's outcome), then leaves exactly the layers of
// spec.Start running and, with spec.Discover, runs check_neighbors. Call
// it after Start, which restarts the layers that ran before: a layer whose
// socket changed is stopped and started again on the new one.
//
// A server has one local member, so a stored local member with another id
// is a conflict, as is a member learned from the network under spec's id;
// both are refused with what to do about them. A layer that cannot bind
// is reported after the others are started and the states saved.
func (b *Broker) EnsureLocalMember(ctx context.Context, spec LocalMemberSpec) error {
	if err := spec.check(b.cfg.Bind); err != nil {
		return fmt.Errorf("local member %s: %w", spec.ID, err)
	}
	location := MemberLocation + spec.ID
	local, err := b.localMember(ctx)
	if err != nil {
		return fmt.Errorf("local member %s: %w", spec.ID, err)
	}
	if local != nil && local.Location != location {
		return fmt.Errorf("local member %s: the store already holds local member %s at %s, and a server has exactly one: "+
			"declare id %s instead, or delete %s first", spec.ID, local.ID, local.Location, local.ID, local.Location)
	}
	if local == nil {
		known, err := occi.GetEntity(ctx, b.st, location)
		switch {
		case err == nil:
			return fmt.Errorf("local member %s: %s is a member learned from the network (via %q, l1 socket %q), so the id is taken: "+
				"choose another id, or delete %s if that member is gone", spec.ID, location, str(known, attrVia), str(known, L1.SocketAttr()), location)
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("local member %s: %w", spec.ID, err)
		}
	}

	// Stop first what must not run, or must run elsewhere, so that a
	// socket moving from one layer to another is free when it starts.
	for _, name := range b.running() {
		l := Layer(name)
		if slices.Contains(spec.Start, l) && local != nil && str(local, l.SocketAttr()) == spec.Sockets[l] {
			continue
		}
		if err := b.stopLayer(l); err != nil {
			return fmt.Errorf("local member %s: %w", spec.ID, err)
		}
	}

	var self *occi.Entity
	if local == nil {
		self = &occi.Entity{Type: occi.TypeResource, ID: spec.ID, Location: location, Kind: MemberKind, Mixins: []string{}}
		spec.apply(self)
		self.SetAttr(attrLayers, b.layerStates())
		b.markSelf(self)
		if err := occi.PutEntity(ctx, b.st, self); err != nil {
			return fmt.Errorf("local member %s: create: %w", spec.ID, err)
		}
		b.log.WithField("member", spec.ID).Info("local member created from the configuration")
	} else {
		self, err = occi.UpdateEntity(ctx, b.st, location, func(e *occi.Entity) error {
			if !flag(e, attrLocal, false) {
				return fmt.Errorf("%s stopped being the local member meanwhile", location)
			}
			spec.apply(e)
			b.markSelf(e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("local member %s: update: %w", spec.ID, err)
		}
		b.log.WithField("member", spec.ID).Info("local member updated from the configuration")
	}

	var failed []error
	for _, l := range Layers() {
		if !slices.Contains(spec.Start, l) || slices.Contains(b.running(), string(l)) {
			continue
		}
		if _, err := b.startLayer(ctx, self, l); err != nil {
			failed = append(failed, err)
		}
	}
	if err := b.saveLayerStates(ctx, location); err != nil {
		return fmt.Errorf("local member %s: %w", spec.ID, err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("local member %s: %w", spec.ID, errors.Join(failed...))
	}

	if spec.Discover {
		self, err = occi.GetEntity(ctx, b.st, location)
		if err != nil {
			return fmt.Errorf("local member %s: %w", spec.ID, err)
		}
		res, err := b.discover(ctx, self)
		if err != nil {
			return fmt.Errorf("local member %s: check_neighbors: %w", spec.ID, err)
		}
		// An unreachable neighbour is no reason to stop: it may start
		// later and find this member itself.
		log := b.log.WithField("member", spec.ID).WithField("discovered", strings.Join(res.Discovered, ","))
		if len(res.Unreachable) > 0 {
			log = log.WithField("unreachable", res.Unreachable)
		}
		log.Info("neighbours checked at start")
	}
	return nil
}

// apply writes the declared attributes into e, leaving the others.
func (s LocalMemberSpec) apply(e *occi.Entity) {
	memberInfo{Title: s.Title, Summary: s.Summary, Sockets: s.Sockets, Neighbors: s.Neighbors,
		Topics: s.Topics, Providers: s.Providers}.describeInto(e, true)
}
