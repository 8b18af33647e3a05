package occi

import (
	"context"
	"errors"
	"fmt"

	"github.com/houssem/cmbs/store"
)

// A request that writes several entities (a multi-entity POST, a mixin
// association, a DELETE of an entity with its links, of a collection or of
// a path) checks all of them, calls their providers, and then commits every
// write in one store.Write: all of them or none, also across a crash (see
// store.Store.Write). A provider that refuses, or a write that conflicts,
// leaves the store as it was.

type batchKey struct{}

// Batch returns the entities the request of ctx writes together, in one
// store transaction, when a provider is called for one of them; nil when
// the request writes one entity. A provider whose checks look at other
// entities of its kind (an Exclusive one) counts these too, since none of
// them is stored yet when it is called.
func Batch(ctx context.Context) []*Entity {
	b, _ := ctx.Value(batchKey{}).([]*Entity)
	return b
}

func withBatch(ctx context.Context, ents []*Entity) context.Context {
	if len(ents) < 2 {
		return ctx
	}
	return context.WithValue(ctx, batchKey{}, ents)
}

// putAll stores ents at their revisions (empty to create them) in one
// transaction and records their new revisions. A conflict is reported by
// what, given the entity that failed.
func (s *Server) putAll(ctx context.Context, ents []*Entity, conflict func(i int) error) error {
	writes := make([]store.Write, len(ents))
	for i, e := range ents {
		d, err := EncodeEntity(e)
		if err != nil {
			return err
		}
		writes[i] = store.Put(d)
	}
	revs, err := s.store.Write(ctx, writes)
	if err != nil {
		var we *store.WriteError
		if errors.As(err, &we) && errors.Is(err, store.ErrConflict) {
			return conflict(we.Index)
		}
		return fmt.Errorf("store %d entities: %w", len(ents), err)
	}
	for i, e := range ents {
		e.Rev = revs[i]
	}
	return nil
}

// withLinks adds to ms the links that start or end at each resource among
// them, each entity once, links after the resources they join.
func (s *Server) withLinks(ctx context.Context, ms []member) ([]member, error) {
	var out []member
	seen := map[string]bool{}
	add := func(m member) {
		if !seen[m.e.Location] {
			seen[m.e.Location] = true
			out = append(out, m)
		}
	}
	for _, m := range ms {
		add(m)
	}
	for _, m := range ms {
		if m.e.Type != TypeResource {
			continue
		}
		links, err := s.linksOf(ctx, m.e.Location, true)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if seen[l.Location] {
				continue
			}
			les, err := s.resolveSchema(ctx, l.Kind, l.Mixins, "link")
			if err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Location, err)
			}
			add(member{l, les})
		}
	}
	return out, nil
}

// deleteMembers removes ms and every link that starts or ends at one of
// them, once their providers all agreed, in one transaction. A DELETE
// names no revision, so an entity written meanwhile (a provider's own
// bookkeeping, say) is deleted at its new revision, and one already gone
// is left out; after a few such rounds the conflict is reported.
func (s *Server) deleteMembers(ctx context.Context, ms []member) ([]*Entity, error) {
	all, err := s.withLinks(ctx, ms)
	if err != nil {
		return nil, err
	}
	ents := make([]*Entity, len(all))
	for i, m := range all {
		ents[i] = m.e
	}
	bctx := withBatch(ctx, ents)
	for _, m := range all {
		if err := s.eachProvider(m.es, func(_ string, p Provider) error { return p.Delete(bctx, m.e) }); err != nil {
			return nil, err
		}
	}
	writes := make([]store.Write, len(ents))
	for i, e := range ents {
		writes[i] = store.Remove(e.Location, e.Rev)
	}
	for conflicts := 0; len(writes) > 0; {
		_, err := s.store.Write(ctx, writes)
		if err == nil {
			break
		}
		var we *store.WriteError
		if !errors.As(err, &we) || (!errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound)) {
			return nil, fmt.Errorf("delete %d entities: %w", len(writes), err)
		}
		d, gerr := s.store.Get(ctx, we.ID)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			writes = append(writes[:we.Index], writes[we.Index+1:]...)
			ents = append(ents[:we.Index], ents[we.Index+1:]...)
		case gerr != nil:
			return nil, fmt.Errorf("delete %s: %w", we.ID, gerr)
		case conflicts == 3:
			return nil, Conflict("", "%s keeps changing while it is being deleted; retry", we.ID)
		default:
			conflicts++
			writes[we.Index].Doc.Rev = d.Rev
		}
	}
	return ents, nil
}

// replacement is one entity a request changes: as stored, and as it will
// be, with the schema of the latter.
type replacement struct {
	old, updated *Entity
	es           *entitySchema
}

// replaceAll checks each replacement against its schema, runs the
// providers' Update, and writes them all at their stored revisions in one
// transaction.
func (s *Server) replaceAll(ctx context.Context, plan []replacement) error {
	ents := make([]*Entity, len(plan))
	schemas := make([]*entitySchema, len(plan))
	for i, p := range plan {
		if err := checkImmutable(p.es.attrs, p.old, p.updated); err != nil {
			return err
		}
		p.updated.Rev = p.old.Rev
		ents[i], schemas[i] = p.updated, p.es
	}
	defer s.lockKinds(schemas...)()
	bctx := withBatch(ctx, ents)
	for _, p := range plan {
		if err := s.eachProvider(p.es, func(_ string, pr Provider) error { return pr.Update(bctx, p.old, p.updated) }); err != nil {
			return err
		}
	}
	return s.putAll(ctx, ents, func(i int) error {
		return Conflict("", "%s changed while it was being updated; retry", plan[i].old.Location)
	})
}
