package occi

import (
	"context"
	"errors"
	"fmt"

	"github.com/houssem/cmbs/store"
)

// GetEntity reads the entity stored at location.
func GetEntity(ctx context.Context, st store.Store, location string) (*Entity, error) {
	d, err := st.Get(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("entity %s: %w", location, err)
	}
	return DecodeEntity(d)
}

// PutEntity writes e at e.Rev (empty to create) and records the new
// revision in e.
func PutEntity(ctx context.Context, st store.Store, e *Entity) error {
	d, err := EncodeEntity(e)
	if err != nil {
		return err
	}
	rev, err := st.Put(ctx, d)
	if err != nil {
		return fmt.Errorf("store entity %s: %w", e.Location, err)
	}
	e.Rev = rev
	return nil
}

// UpdateEntity applies fn to the stored entity at location and writes the
// result, reading again and retrying when another writer got there first.
// It is how background work (deliveries, layer state) changes entities
// without losing concurrent updates.
func UpdateEntity(ctx context.Context, st store.Store, location string, fn func(*Entity) error) (*Entity, error) {
	const attempts = 16
	var err error
	for i := 0; i < attempts; i++ {
		var e *Entity
		e, err = GetEntity(ctx, st, location)
		if err != nil {
			return nil, err
		}
		if err = fn(e); err != nil {
			return nil, err
		}
		err = PutEntity(ctx, st, e)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("update %s: gave up after %d conflicting writes: %w", location, attempts, err)
}

// FindEntities returns the entities of kind (any kind when empty) matching
// where, ordered by location.
func FindEntities(ctx context.Context, st store.Store, kind string, where ...store.Cond) ([]*Entity, error) {
	return FindEntitiesAt(ctx, st, entityPrefix, kind, where...)
}

// FindEntitiesAt is FindEntities limited to the entities whose location
// starts with location. Callers that know their kind's location pass it, so
// a backend without native queries scans that kind's entities only.
func FindEntitiesAt(ctx context.Context, st store.Store, location, kind string, where ...store.Cond) ([]*Entity, error) {
	conds := append([]store.Cond{{Field: []string{"doc"}, Op: store.Eq, Value: "entity"}}, where...)
	if kind != "" {
		conds = append(conds, store.Cond{Field: []string{"kind"}, Op: store.Eq, Value: kind})
	}
	docs, err := store.Find(ctx, st, store.Query{Prefix: location, Where: conds})
	if err != nil {
		return nil, fmt.Errorf("find entities of %s at %s: %w", kind, location, err)
	}
	out := make([]*Entity, 0, len(docs))
	for _, d := range docs {
		e, err := DecodeEntity(d)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// AttrCond is a condition on the attribute at a dotted name.
func AttrCond(name string, op store.Op, v any) store.Cond {
	return store.Cond{Field: append([]string{"attributes"}, splitName(name)...), Op: op, Value: v}
}
