// Package bolt is the embedded store.Store backend, the default for cmbs. It
// keeps documents in one bbolt file owned by a single process.
//
// Every write is committed with fsync before Put or Delete returns, so an
// acknowledged write survives a crash. A writer alone commits at once;
// writers that overlap go through bbolt's Batch and share one transaction
// and one fsync (group commit).
// Revisions have CouchDB's shape, "N-hex", where N counts the writes of the
// document since it was created.
//
// Watch is served in process: after each commit the change is handed to every
// subscriber, in commit order, without blocking the writer.
//
// Find scans the documents under the query's prefix, skipping without
// decoding those that lack a string the query compares with (bodies are
// stored in one canonical encoding). EnsureIndex adds secondary indexes,
// kept in the file. An index on one field has an entry per (value, id) for
// a scalar value and for each scalar element of an array value, numbers
// keyed by numeric value so that 2 and 2.0 meet; an index on several fields
// has one per (values, id) where every field is a scalar. Every Put and
// Delete updates the entries in the transaction that writes the document,
// so they are as durable as the document and never stale, and Open rebuilds
// them if a build of cmbs without indexes wrote to the file. A Find with an
// Eq or Contains condition on an indexed field, or Eq conditions on every
// field of an index on several, reads only the documents listed under those
// values (from the index listing fewest when several apply) and checks them
// with store.Match, so its results are exactly those of the scan.
package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/houssem/cmbs/store"
)

// docsBucket holds id → record, where record is the revision, a zero byte
// and the compact JSON body.
var docsBucket = []byte("docs")

const (
	// DefaultLockTimeout is how long Open waits for another process to
	// release the file.
	DefaultLockTimeout = 2 * time.Second
	// DefaultBatchDelay is how long an overlapping write waits for others to join its
	// transaction. bbolt's own default, 10ms, adds too much latency for a
	// lone writer; fsync dominates anyway.
	DefaultBatchDelay = 2 * time.Millisecond
	// DefaultWatchBuffer is how many changes a subscriber may fall behind
	// before it is dropped.
	DefaultWatchBuffer = 1024
)

type config struct {
	lockTimeout time.Duration
	batchDelay  time.Duration
	watchBuffer int
	log         logrus.FieldLogger
}

// Option configures Open.
type Option func(*config)

// WithLockTimeout sets how long Open waits for the file lock held by another
// process before failing. Zero waits forever.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// WithBatchDelay sets the longest time a write waits for other writes to
// share its transaction.
func WithBatchDelay(d time.Duration) Option {
	return func(c *config) { c.batchDelay = d }
}

// WithWatchBuffer sets the per-subscriber buffer of Watch channels; a
// subscriber that falls further behind is dropped (see Store.Watch).
func WithWatchBuffer(n int) Option {
	return func(c *config) { c.watchBuffer = max(n, 1) }
}

// WithLogger sets where the store reports dropped subscribers; without
// it, or with nil, nothing is logged.
func WithLogger(l logrus.FieldLogger) Option {
	return func(c *config) { c.log = l }
}

// Store is a store.Store on a bbolt file. It implements store.Finder, with
// the indexes of store.Indexer when a query can use one and by filtering
// during a scan otherwise; either way only matching documents are copied
// out.
type Store struct {
	db   *bbolt.DB
	path string
	hub  *hub

	mu     sync.Mutex // guards closed and the Add side of ops
	closed bool
	ops    sync.WaitGroup // calls in flight, waited for by Close

	writers atomic.Int32 // writes in flight, see write

	ixcache atomic.Pointer[indexSet] // see indexes
}

// write commits fn. A writer alone commits at once; writers that overlap
// go through db.Batch and share a commit (and its fsync), which is worth
// the batch delay only when there is someone to share it with.
func (s *Store) write(fn func(*bbolt.Tx) error) error {
	if s.writers.Add(1) == 1 {
		defer s.writers.Add(-1)
		return s.db.Update(fn)
	}
	defer s.writers.Add(-1)
	return s.db.Batch(fn)
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Finder      = (*Store)(nil)
	_ store.Indexer     = (*Store)(nil)
	_ store.MultiGetter = (*Store)(nil)
)

// Open opens or creates the store file at path, creating its directory if
// needed. Only one process may have the file open; Open fails after the lock
// timeout if another holds it.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{
		lockTimeout: DefaultLockTimeout,
		batchDelay:  DefaultBatchDelay,
		watchBuffer: DefaultWatchBuffer,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = discardLogger()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("bolt: open %s: create directory: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      cfg.lockTimeout,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: another process holds the database lock (waited %s): %w", path, cfg.lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db.MaxBatchDelay = cfg.batchDelay
	var (
		seq     uint64
		rebuilt bool
	)
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(docsBucket)
		if err != nil {
			return err
		}
		seq = b.Sequence()
		if err := upgrade(tx, b); err != nil {
			return err
		}
		rebuilt, err = openIndexes(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: prepare buckets: %w", path, err)
	}
	log := cfg.log.WithField("store", path)
	if rebuilt {
		log.Warn("bolt: rebuilt the indexes, which missed writes made without them")
	}
	return &Store{db: db, path: path, hub: newHub(cfg.watchBuffer, log, seq+1)}, nil
}

// enter registers a call in flight, failing once the store is closed.
// Callers must call s.ops.Done when enter succeeds.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// Get returns the current version of the document id.
func (s *Store) Get(ctx context.Context, id string) (store.Doc, error) {
	if err := s.enter(ctx); err != nil {
		return store.Doc{}, fmt.Errorf("bolt: get %q: %w", id, err)
	}
	defer s.ops.Done()
	doc := store.Doc{ID: id}
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(docsBucket).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		rev, body, err := decodeRecord(v)
		if err != nil {
			return err
		}
		doc.Rev = rev
		doc.Body = bytes.Clone(body)
		return nil
	})
	if err != nil {
		return store.Doc{}, fmt.Errorf("bolt: get %q: %w", id, err)
	}
	return doc, nil
}

// GetMany returns the documents of ids that exist, read in one
// transaction.
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]store.Doc, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("bolt: get many: %w", err)
	}
	defer s.ops.Done()
	out := make(map[string]store.Doc, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(docsBucket)
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			rev, body, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%q: %w", id, err)
			}
			out[id] = store.Doc{ID: id, Rev: rev, Body: bytes.Clone(body)}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get many: %w", err)
	}
	return out, nil
}

// Put writes doc if doc.Rev is the current revision ("" for a new
// document) and returns the new revision. Ids longer than 32628 bytes are
// refused with store.ErrInvalid, since index entries must hold them.
func (s *Store) Put(ctx context.Context, doc store.Doc) (string, error) {
	p, err := prepare(doc)
	if err != nil {
		return "", fmt.Errorf("bolt: put: %w", err)
	}
	revs, err := s.commit(ctx, []store.Write{store.Put(doc)}, []prepared{p})
	if err != nil {
		return "", fmt.Errorf("bolt: put %q: %w", doc.ID, unwrapSingle(err))
	}
	return revs[0], nil
}

// Delete removes the document id at revision rev.
func (s *Store) Delete(ctx context.Context, id, rev string) error {
	if _, err := s.commit(ctx, []store.Write{store.Remove(id, rev)}, []prepared{nil}); err != nil {
		return fmt.Errorf("bolt: delete %q: %w", id, unwrapSingle(err))
	}
	return nil
}

// Write commits writes in one transaction: every write is checked before
// any is applied, so a failing one leaves the file as it was.
func (s *Store) Write(ctx context.Context, writes []store.Write) ([]string, error) {
	docs := make([]prepared, len(writes))
	seen := make(map[string]bool, len(writes))
	for i, w := range writes {
		var err error
		switch {
		case seen[w.Doc.ID]:
			err = fmt.Errorf("%w: id written twice in one batch", store.ErrInvalid)
		case w.Delete:
			err = store.CheckID(w.Doc.ID)
		default:
			docs[i], err = prepare(w.Doc)
		}
		if err != nil {
			return nil, fmt.Errorf("bolt: write: %w", &store.WriteError{Index: i, ID: w.Doc.ID, Err: err})
		}
		seen[w.Doc.ID] = true
	}
	revs, err := s.commit(ctx, writes, docs)
	if err != nil {
		return nil, fmt.Errorf("bolt: write: %w", err)
	}
	return revs, nil
}

// prepared is a document body ready to store: compact, with nothing but
// the escapes encoding/json writes (see prepare). Nil stands for a delete.
type prepared []byte

// prepare checks doc as store.CheckDoc does, and what only this backend
// limits (the id's length), and returns its body as stored: compacted,
// and re-encoded only when it holds escapes encoding/json would not write,
// so that scans and index maintenance can look for a string or a key by
// its bytes (see needles and mayIndex) while a body written by
// encoding/json, as every body cmbs writes is, costs no decoding.
func prepare(doc store.Doc) (prepared, error) {
	if err := store.CheckID(doc.ID); err != nil {
		return nil, err
	}
	if len(doc.ID) > maxIDLen {
		return nil, fmt.Errorf("%w: id of %d bytes, longer than %d", store.ErrInvalid, len(doc.ID), maxIDLen)
	}
	raw := bytes.TrimSpace(doc.Body)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: id %q: body is not a JSON object", store.ErrInvalid, doc.ID)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%w: id %q: body: %w", store.ErrInvalid, doc.ID, err)
	}
	body := buf.Bytes()
	if foreignEscapes(body) {
		var err error
		if body, err = canonical(body); err != nil {
			return nil, fmt.Errorf("%w: id %q: body: %w", store.ErrInvalid, doc.ID, err)
		}
	}
	if k := underscoreKey(body); k != "" {
		return nil, fmt.Errorf("%w: id %q: top-level key %q starts with an underscore", store.ErrInvalid, doc.ID, k)
	}
	return body, nil
}

// foreignEscapes reports whether the compact JSON body holds an escape
// encoding/json does not write: \/, \b, \f, or a \u escape of a character
// it writes as itself.
func foreignEscapes(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' || i+1 >= len(body) {
			continue
		}
		i++
		switch body[i] {
		case '"', '\\', 'n', 'r', 't':
		case 'u':
			if i+4 >= len(body) {
				return true
			}
			hex := string(body[i+1 : i+5])
			i += 4
			if strings.Trim(hex, "0123456789abcdef") != "" {
				return true // encoding/json writes lowercase hex
			}
			if hex < "0020" || hex == "003c" || hex == "003e" || hex == "0026" || hex == "2028" || hex == "2029" {
				continue
			}
			return true
		default:
			return true
		}
	}
	return false
}

// underscoreKey returns the first top-level key of the compact JSON object
// body that starts with an underscore, if any.
func underscoreKey(body []byte) string {
	depth, inString, escaped, expectKey := 0, false, false, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectKey && i+1 < len(body) && body[i+1] == '_' {
				end := bytes.IndexByte(body[i+1:], '"')
				if end < 0 {
					end = len(body) - i - 1
				}
				return string(body[i+1 : i+1+end])
			}
			expectKey = false
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return ""
}

// unwrapSingle drops the *store.WriteError of a one-write commit: Put and
// Delete name their document already.
func unwrapSingle(err error) error {
	var we *store.WriteError
	if errors.As(err, &we) {
		return we.Err
	}
	return err
}

// commit applies writes (docs[i] is the prepared body of a put, zero for
// a delete) in one transaction, after checking them all, and returns their
// new revisions. A failed check is the outcome, reported as a
// *store.WriteError; the function's error is reserved for failures that
// must abort the transaction, since in a batch that would make every other
// writer in it retry alone. The function may run more than once (bbolt
// retries batches), so it starts from scratch each time.
func (s *Store) commit(ctx context.Context, writes []store.Write, docs []prepared) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.ops.Done()
	var (
		revs    []string
		outcome error
	)
	err := s.write(func(tx *bbolt.Tx) error {
		revs, outcome = make([]string, len(writes)), nil
		b := tx.Bucket(docsBucket)
		olds := make([][]byte, len(writes))
		gens := make([]int, len(writes))
		for i, w := range writes {
			gen, old, failed, err := check(b, w)
			if err != nil {
				return err
			}
			if failed != nil {
				outcome = &store.WriteError{Index: i, ID: w.Doc.ID, Err: failed}
				return nil
			}
			gens[i], olds[i] = gen, old
		}
		set, err := s.indexes(tx)
		if err != nil {
			return err
		}
		for i, w := range writes {
			if revs[i], err = s.apply(tx, b, set, w.Doc.ID, gens[i], olds[i], docs[i]); err != nil {
				return err
			}
			if w.Delete {
				revs[i] = ""
			}
		}
		return nil
	})
	if err == nil {
		err = outcome
	}
	if err != nil {
		return nil, err
	}
	return revs, nil
}

// check decides whether w may be applied: its revision must be the
// document's current one ("" for a document that does not exist), and a
// delete needs a document. It returns the current generation and body;
// failed says why w may not be applied, err fails the transaction.
func check(b *bbolt.Bucket, w store.Write) (gen int, old []byte, failed, err error) {
	v := b.Get([]byte(w.Doc.ID))
	if v == nil {
		switch {
		case w.Delete:
			return 0, nil, store.ErrNotFound, nil
		case w.Doc.Rev != "":
			return 0, nil, fmt.Errorf("document does not exist, revision %q: %w", w.Doc.Rev, store.ErrConflict), nil
		}
		return 0, nil, nil, nil
	}
	cur, body, err := decodeRecord(v)
	if err != nil {
		return 0, nil, nil, err
	}
	if w.Doc.Rev != cur {
		return 0, nil, staleErr(w.Doc.Rev, cur), nil
	}
	return generation(cur), body, nil, nil
}

// apply writes doc's body (none to delete) as document id, whose current
// generation and body are gen and old, with its index entries, and
// returns the new revision. Subscribers hear of it once tx commits.
func (s *Store) apply(tx *bbolt.Tx, b *bbolt.Bucket, set *indexSet, id string, gen int, old []byte, doc prepared) (string, error) {
	key, body := []byte(id), []byte(doc)
	seq, err := b.NextSequence()
	if err != nil {
		return "", err
	}
	if err := reindex(tx, set, key, old, body, seq); err != nil {
		return "", err
	}
	rev := newRevision(gen + 1)
	if body == nil {
		err = b.Delete(key)
	} else {
		err = b.Put(key, encodeRecord(rev, body))
	}
	if err != nil {
		return "", err
	}
	change := store.Change{ID: id, Rev: rev, Deleted: body == nil}
	tx.OnCommit(func() { s.hub.publish(seq, change) })
	return rev, nil
}

// List returns the documents whose id starts with prefix, in byte order of
// their ids.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Doc, error) {
	docs, err := s.scan(ctx, prefix, nil)
	if err != nil {
		return nil, fmt.Errorf("bolt: list %q: %w", prefix, err)
	}
	return docs, nil
}

// Scan returns up to limit documents under prefix whose ids sort after
// after, in byte order of their ids.
func (s *Store) Scan(ctx context.Context, prefix, after string, limit int) ([]store.Doc, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("bolt: scan %q: %w", prefix, err)
	}
	defer s.ops.Done()
	var docs []store.Doc
	p := []byte(prefix)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(docsBucket).Cursor()
		k, v := c.Seek(p)
		if after >= prefix {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, p) && (limit <= 0 || len(docs) < limit); k, v = c.Next() {
			rev, body, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			docs = append(docs, store.Doc{ID: string(k), Rev: rev, Body: bytes.Clone(body)})
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: scan %q after %q: %w", prefix, after, err)
	}
	return docs, nil
}

// Find returns the documents matching q, ordered by id. When a condition
// compares an indexed field with a scalar (Eq, or Contains for an array
// field), Find reads only the documents the index lists for that value
// under q.Prefix, taking the condition with the fewest entries when several
// qualify; otherwise it scans the prefix. Either way every candidate is
// checked with store.Match, so indexes change the cost, never the answer.
func (s *Store) Find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	docs, err := s.scan(ctx, q.Prefix, q.Where)
	if err != nil {
		return nil, fmt.Errorf("bolt: find under %q: %w", q.Prefix, err)
	}
	return docs, nil
}

func (s *Store) scan(ctx context.Context, prefix string, where []store.Cond) ([]store.Doc, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.ops.Done()
	var docs []store.Doc
	p := []byte(prefix)
	needles := needles(where)
	err := s.db.View(func(tx *bbolt.Tx) error {
		if len(where) > 0 {
			set, err := s.indexes(tx)
			if err != nil {
				return err
			}
			if probes := plan(set, store.Query{Prefix: prefix, Where: where}); len(probes) > 0 {
				docs, err = findIndexed(ctx, tx, probes, where)
				return err
			}
		}
		c := tx.Bucket(docsBucket).Cursor()
	next:
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			rev, body, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			for _, alts := range needles {
				if !containsAny(body, alts) {
					continue next
				}
			}
			ok, err := store.Match(body, where)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			if ok {
				docs = append(docs, store.Doc{ID: string(k), Rev: rev, Body: bytes.Clone(body)})
			}
		}
		return ctx.Err()
	})
	return docs, err
}

// Watch returns a channel of the changes committed after the call. The
// channel is closed when ctx ends or the store closes.
//
// Writers never wait for subscribers. Each subscriber has a buffer (see
// WithWatchBuffer); one that lets it fill up is dropped: its channel is
// closed while ctx is still live, and a warning is logged. A subscriber that
// sees its channel close before ctx ends has missed changes and should
// re-read what it cares about and watch again.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("bolt: watch: %w", err)
	}
	defer s.ops.Done()
	ch, err := s.hub.subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("bolt: watch: %w", err)
	}
	return ch, nil
}

// Close waits for calls in flight, closes every Watch channel and closes the
// file. Later calls fail with store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("bolt: close %s: %w", s.path, store.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	s.ops.Wait()
	s.hub.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", s.path, err)
	}
	return nil
}

func staleErr(got, cur string) error {
	if got == "" {
		return fmt.Errorf("document exists at revision %q: %w", cur, store.ErrConflict)
	}
	return fmt.Errorf("revision %q is not the current %q: %w", got, cur, store.ErrConflict)
}

// newRevision returns "gen-hex" with 128 random bits, so revisions never
// repeat, even for a document deleted and created again.
func newRevision(gen int) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	return strconv.Itoa(gen) + "-" + hex.EncodeToString(b[:])
}

// generation returns N of a revision "N-hex" written by this package.
func generation(rev string) int {
	n, _, _ := strings.Cut(rev, "-")
	gen, err := strconv.Atoi(n)
	if err != nil {
		return 0
	}
	return gen
}

func encodeRecord(rev string, body []byte) []byte {
	rec := make([]byte, 0, len(rev)+1+len(body))
	rec = append(rec, rev...)
	rec = append(rec, 0)
	return append(rec, body...)
}

func decodeRecord(rec []byte) (rev string, body []byte, err error) {
	r, b, ok := bytes.Cut(rec, []byte{0})
	if !ok {
		return "", nil, errors.New("corrupt record: no revision separator")
	}
	return string(r), b, nil
}

// metaBucket holds the file's format version under formatKey.
var (
	metaBucket = []byte("meta")
	formatKey  = []byte("format")
)

// format 2 stores bodies in canonical form (see canonical).
const format = 2

// upgrade brings a file written by an earlier format up to date, in the
// transaction that opens it.
func upgrade(tx *bbolt.Tx, docs *bbolt.Bucket) error {
	meta, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return err
	}
	if v := meta.Get(formatKey); len(v) == 1 && v[0] >= format {
		return nil
	}
	type record struct{ key, value []byte }
	var rewrite []record
	err = docs.ForEach(func(k, v []byte) error {
		rev, body, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		canon, err := canonical(body)
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		if !bytes.Equal(canon, body) {
			rewrite = append(rewrite, record{bytes.Clone(k), encodeRecord(rev, canon)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade to format %d: %w", format, err)
	}
	for _, r := range rewrite {
		if err := docs.Put(r.key, r.value); err != nil {
			return err
		}
	}
	return meta.Put(formatKey, []byte{format})
}

// canonical re-encodes a body the one way encoding/json writes it: keys
// sorted, strings escaped alike whoever wrote them. prepare uses it for a
// body holding escapes encoding/json does not write, which scans could not
// find by their bytes (see needles).
func canonical(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: body: %w", store.ErrInvalid, err)
	}
	return encodeJSON(v)
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// needles lists, for each string a condition compares with, the ways a
// stored body may write it (see jsonStrings): a body must hold one of each
// to match where. Bodies are stored with only the escapes encoding/json
// writes (see prepare), so a body holding the string holds one of those
// byte strings, and a scan can skip the others without decoding them. A
// query holding a condition store.Match rejects has none, so that the scan
// reaches it and fails as store.Match does.
func needles(where []store.Cond) [][][]byte {
	if !wellFormed(where) {
		return nil
	}
	var out [][][]byte
	for _, c := range where {
		s, ok := c.Value.(string)
		if !ok || (c.Op != store.Eq && c.Op != store.Contains) {
			continue
		}
		if alts := jsonStrings(s); len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out
}

// wellFormed reports whether store.Match accepts every condition of where:
// each has a path, a known operator and, to compare with, a value JSON can
// hold.
func wellFormed(where []store.Cond) bool {
	for _, c := range where {
		if len(c.Field) == 0 {
			return false
		}
		switch c.Op {
		case store.Exists:
		case store.Eq, store.Contains:
			if _, err := store.NormalizeValue(c.Value); err != nil {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// discardLogger is the logger of a store built without one: it drops
// everything, so the package never writes to logrus's global logger behind
// its caller's back.
func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
