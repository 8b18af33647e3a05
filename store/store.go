package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("document not found")

// ErrConflict is returned when a write names a revision that is not the
// document's current one, or creates a document whose id already exists.
var ErrConflict = errors.New("document update conflict")

// ErrUnavailable is wrapped by a backend's error when the database cannot
// be reached or says it cannot serve now (a network error, CouchDB
// answering 502, 503 or 504): the request may succeed if tried again
// later, and nothing was written.
var ErrUnavailable = errors.New("store unavailable")

// Doc is one stored document. Body is a JSON object; its top-level keys must
// not start with an underscore (CouchDB reserves those).
type Doc struct {
	ID   string
	Rev  string
	Body json.RawMessage
}

// Write is one change of a Store.Write: Doc written at Doc.Rev ("" to
// create it), or, with Delete, the document Doc.ID removed at Doc.Rev
// (Doc.Body is then ignored).
type Write struct {
	Doc    Doc
	Delete bool
}

// Put is a Write that creates or updates doc.
func Put(doc Doc) Write { return Write{Doc: doc} }

// Remove is a Write that deletes the document id at revision rev.
func Remove(id, rev string) Write { return Write{Doc: Doc{ID: id, Rev: rev}, Delete: true} }

// WriteError is why a Store.Write wrote nothing: its Index-th write failed
// with Err.
type WriteError struct {
	Index int
	ID    string
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("write %d (%q): %v", e.Index, e.ID, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// CheckWrites checks what a Store.Write may hold whatever the backend:
// documents Put would accept, and each id at most once. It returns the
// compact bodies of the puts (nil for deletes).
func CheckWrites(writes []Write) ([]json.RawMessage, error) {
	bodies := make([]json.RawMessage, len(writes))
	seen := make(map[string]bool, len(writes))
	for i, w := range writes {
		if seen[w.Doc.ID] {
			return nil, &WriteError{Index: i, ID: w.Doc.ID, Err: fmt.Errorf("%w: id written twice in one batch", ErrInvalid)}
		}
		seen[w.Doc.ID] = true
		if w.Delete {
			if err := CheckID(w.Doc.ID); err != nil {
				return nil, &WriteError{Index: i, ID: w.Doc.ID, Err: err}
			}
			continue
		}
		body, err := CheckDoc(w.Doc)
		if err != nil {
			return nil, &WriteError{Index: i, ID: w.Doc.ID, Err: err}
		}
		bodies[i] = body
	}
	return bodies, nil
}

// Change reports one write seen on the change feed.
type Change struct {
	ID      string
	Rev     string
	Deleted bool
	// Seq is the change's position in the feed, which a Resumer can read
	// the feed again after; empty from backends that cannot.
	Seq string
}

// Resumer is implemented by backends whose change feed can be read again
// from a position, so that a reader that stopped, in this process or in
// another one sharing the database, resumes where it had got to (CouchDB's
// _changes?since=).
type Resumer interface {
	// WatchSince streams, as Watch does, the changes made after the one
	// whose Seq is since; an empty since means after the call. Each
	// Change carries its Seq. Read from an earlier position, the feed
	// reports a document changed several times once, with its latest
	// revision: CouchDB keeps only the latest change of each document.
	WatchSince(ctx context.Context, since string) (<-chan Change, error)
}

// WatchSince reads s's change feed from since when s is a Resumer, and
// fails with errors.ErrUnsupported when it is not.
func WatchSince(ctx context.Context, s Store, since string) (<-chan Change, error) {
	if r, ok := s.(Resumer); ok {
		return r.WatchSince(ctx, since)
	}
	return nil, fmt.Errorf("store: this backend's change feed cannot be resumed from a position: %w", errors.ErrUnsupported)
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
	// Write commits several writes atomically: all of them or none. Each
	// is checked as Put or Delete would check it; when one fails, Write
	// returns a *WriteError naming it (wrapping ErrConflict, ErrNotFound or
	// ErrInvalid) and writes nothing. An id may appear once per call. It
	// returns each write's new revision ("" for a delete), in order.
	//
	// Backends commit a Write with one durable commit (one fsync on the
	// embedded store), so batching writes is how callers make many of
	// them cheap.
	Write(ctx context.Context, writes []Write) (revs []string, err error)
	// List returns every document whose id starts with prefix, ordered by id.
	List(ctx context.Context, prefix string) ([]Doc, error)
	// Scan returns, ordered by id, at most limit documents whose id starts
	// with prefix and sorts after after ("" to start at the first). Ids
	// are ordered by their bytes. Paging with the last id a Scan returned
	// visits each document present throughout exactly once, whatever is
	// written meanwhile. A limit of zero or less means no limit.
	Scan(ctx context.Context, prefix, after string, limit int) ([]Doc, error)
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

// MultiGetter is implemented by backends that read many documents at once
// (one transaction on the embedded store, one request on CouchDB).
type MultiGetter interface {
	// GetMany returns the current version of each document of ids that
	// exists, by id; absent ones are left out.
	GetMany(ctx context.Context, ids []string) (map[string]Doc, error)
}

// GetMany reads the documents of ids that exist, by id, in one go when
// the backend can, one Get at a time otherwise.
func GetMany(ctx context.Context, s Store, ids []string) (map[string]Doc, error) {
	if m, ok := s.(MultiGetter); ok {
		return m.GetMany(ctx, ids)
	}
	out := make(map[string]Doc, len(ids))
	for _, id := range ids {
		d, err := s.Get(ctx, id)
		switch {
		case err == nil:
			out[id] = d
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return out, nil
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
