// Package store defines the document store cmbs keeps its categories and
// entities in, and the behaviour every backend must share.
//
// Callers (occi, broker) see one small interface, Store. Backends live in
// subpackages: store/bolt (embedded, the default) and store/couch (CouchDB
// through kivik). Abilities a backend may implement natively, such as
// attribute queries (Finder) and index creation (Indexer), are separate
// interfaces; the package-level Find falls back to a scan when a backend
// lacks Finder, in the manner of database/sql and kivik drivers.
package store

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("document not found")

// ErrConflict is returned when a write names a revision that is not the
// document's current one, or creates a document whose id already exists.
var ErrConflict = errors.New("document update conflict")

// Doc is one stored document. Body is a JSON object; its top-level keys must
// not start with an underscore (CouchDB reserves those).
type Doc struct {
	ID   string
	Rev  string
	Body json.RawMessage
}

// Change reports one write seen on the change feed.
type Change struct {
	ID      string
	Rev     string
	Deleted bool
}

// Store is the interface occi and broker use.
type Store interface {
	// Get returns the current version of a document, or ErrNotFound.
	Get(ctx context.Context, id string) (Doc, error)
	// Put writes doc and returns its new revision. An empty doc.Rev creates
	// the document and fails with ErrConflict if the id exists; otherwise
	// doc.Rev must be the current revision or Put fails with ErrConflict.
	Put(ctx context.Context, doc Doc) (rev string, err error)
	// Delete removes the document at revision rev; ErrNotFound when absent,
	// ErrConflict when rev is stale.
	Delete(ctx context.Context, id, rev string) error
	// List returns every document whose id starts with prefix, ordered by id.
	List(ctx context.Context, prefix string) ([]Doc, error)
	// Watch streams changes made after the call until ctx ends; the channel
	// is closed then.
	Watch(ctx context.Context) (<-chan Change, error)
	// Close releases the backend. It is safe to call once.
	Close() error
}

// Op is a comparison in a Cond.
type Op int

const (
	// Eq matches when the field equals Value (JSON equality).
	Eq Op = iota
	// Contains matches when the field is an array holding Value.
	Contains
	// Exists matches when the field is present, whatever its value.
	Exists
)

// Cond is one condition on a field of a document body. Field is the path of
// keys from the body's root, e.g. {"attributes","cmbs","member","local"}.
type Cond struct {
	Field []string
	Op    Op
	Value any
}

// Query selects documents whose id starts with Prefix and that match every
// condition in Where.
type Query struct {
	Prefix string
	Where  []Cond
}

// Finder is implemented by backends that evaluate queries natively (CouchDB
// through Mango). Backends without it are served by a scan in Find.
type Finder interface {
	Find(ctx context.Context, q Query) ([]Doc, error)
}

// Index names the fields a backend should index for queries.
type Index struct {
	Name   string
	Fields [][]string
}

// Indexer is implemented by backends that can build indexes for Find.
type Indexer interface {
	EnsureIndex(ctx context.Context, idx Index) error
}

// Find returns the documents matching q, ordered by id, using the backend's
// native query when it has one.
func Find(ctx context.Context, s Store, q Query) ([]Doc, error) {
	if f, ok := s.(Finder); ok {
		return f.Find(ctx, q)
	}
	docs, err := s.List(ctx, q.Prefix)
	if err != nil {
		return nil, err
	}
	out := docs[:0]
	for _, d := range docs {
		ok, err := Match(d.Body, q.Where)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// EnsureIndex asks the backend to build idx when it supports indexes.
func EnsureIndex(ctx context.Context, s Store, idx Index) error {
	if ix, ok := s.(Indexer); ok {
		return ix.EnsureIndex(ctx, idx)
	}
	return nil
}
