package occi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/houssem/cmbs/store"
)

// categoryCache keeps the registered categories in memory, since every
// request looks several of them up (the kind at a location, an entity's
// kind, parents, mixins and actions) and they change rarely. It is filled
// from the store on first use and emptied by every category write: the
// server's own, at once, and other processes' sharing a CouchDB database,
// through the store's change feed. While no change feed is being followed
// the cache is bypassed, so it can never serve what another writer changed.
type categoryCache struct {
	mu         sync.RWMutex
	following  bool   // a change feed is followed; otherwise bypass
	generation uint64 // bumped by every invalidation
	loaded     bool
	byID       map[string]cachedCategory
	byLocation map[string]string
	// schemas are the entity schemas resolved from the cached categories,
	// by kind and mixins (see Server.resolveSchema); they go with them.
	schemas map[string]*entitySchema
}

type cachedCategory struct {
	cat *Category
	rev string
}

// snapshot returns the cached categories, loading them when needed, or
// ok=false when the cache is bypassed.
func (c *categoryCache) snapshot(ctx context.Context, st store.Store) (map[string]cachedCategory, map[string]string, bool, error) {
	c.mu.RLock()
	if !c.following {
		c.mu.RUnlock()
		return nil, nil, false, nil
	}
	if c.loaded {
		byID, byLoc := c.byID, c.byLocation
		c.mu.RUnlock()
		return byID, byLoc, true, nil
	}
	gen := c.generation
	c.mu.RUnlock()

	docs, err := st.List(ctx, categoryPrefix)
	if err != nil {
		return nil, nil, false, fmt.Errorf("list categories: %w", err)
	}
	byID := make(map[string]cachedCategory, len(docs))
	byLoc := map[string]string{}
	for _, d := range docs {
		cat, err := decodeCategory(d)
		if err != nil {
			return nil, nil, false, err
		}
		byID[cat.ID()] = cachedCategory{cat, d.Rev}
		if cat.Location != "" {
			byLoc[cat.Location] = cat.ID()
		}
	}
	c.mu.Lock()
	// A write that landed while the store was read leaves the result
	// unpublished: it may predate the write.
	if c.following && c.generation == gen {
		c.byID, c.byLocation, c.loaded = byID, byLoc, true
	}
	c.mu.Unlock()
	return byID, byLoc, true, nil
}

func (c *categoryCache) invalidate() {
	c.mu.Lock()
	c.generation++
	c.loaded, c.byID, c.byLocation, c.schemas = false, nil, nil, nil
	c.mu.Unlock()
}

func (c *categoryCache) setFollowing(on bool) {
	c.mu.Lock()
	c.following = on
	c.generation++
	c.loaded, c.byID, c.byLocation, c.schemas = false, nil, nil, nil
	c.mu.Unlock()
}

// follow empties the cache on every category change the store reports,
// until ctx ends or the feed closes; then the cache is bypassed.
func (c *categoryCache) follow(ctx context.Context, changes <-chan store.Change) {
	defer c.setFollowing(false)
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-changes:
			if !ok {
				return
			}
			if strings.HasPrefix(ch.ID, categoryPrefix) {
				c.invalidate()
			}
		}
	}
}

// schema returns the schema cached under key, if the cache is current.
func (c *categoryCache) schema(key string) (*entitySchema, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	es, ok := c.schemas[key]
	return es, c.generation, ok && c.following && c.loaded
}

// keepSchema caches es under key unless the categories changed since gen.
func (c *categoryCache) keepSchema(key string, gen uint64, es *entitySchema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.following || c.generation != gen {
		return
	}
	if c.schemas == nil {
		c.schemas = map[string]*entitySchema{}
	}
	c.schemas[key] = es
}

// copyCategory gives callers their own Category to change; the attribute
// definitions are shared and must be treated as read-only.
func copyCategory(cc cachedCategory) (*Category, string) {
	cat := *cc.cat
	return &cat, cc.rev
}

// putCategory and writeCategoryDocs are the only category writes; each
// empties the cache so this server reads its own writes.
func (s *Server) putCategory(ctx context.Context, doc store.Doc) (string, error) {
	defer s.categories.invalidate()
	return s.store.Put(ctx, doc)
}

// writeCategoryDocs commits category writes in one transaction. A
// conflict means another writer changed one of them since it was read.
func (s *Server) writeCategoryDocs(ctx context.Context, writes []store.Write) error {
	defer s.categories.invalidate()
	if _, err := s.store.Write(ctx, writes); err != nil {
		var we *store.WriteError
		if errors.As(err, &we) && errors.Is(err, store.ErrConflict) {
			return Conflict("", "category %s changed while this request was changing it; retry", strings.TrimPrefix(we.ID, categoryPrefix))
		}
		return fmt.Errorf("store categories: %w", err)
	}
	return nil
}
