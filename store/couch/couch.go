// Package couch is the CouchDB store.Store backend, through kivik. It works
// with CouchDB and with PouchDB Server, which the tests run against.
//
// A document's body is stored as the top-level fields of the CouchDB
// document, next to _id and _rev, so the database stays readable with
// CouchDB's own tools and queries.
//
// Find runs natively as a Mango query. The selector is built to match a
// superset of the documents store.Match accepts, and every result is checked
// with store.Match before it is returned, so queries mean exactly the same on
// every backend even where servers disagree: objects are compared regardless
// of key order, which Mango's $eq does not do, and PouchDB's $elemMatch
// misses values in arrays that start with an object.
//
// Find names the index it wants in use_index when the query has an Eq
// condition on every field of a JSON index: given the id range every
// selector carries, the servers would otherwise plan on the primary index
// and read every document under the prefix. The store lists the database's
// indexes at Open and after EnsureIndex.
//
// Ids are selected by prefix with the range [prefix, prefix+"\ufff0"), the
// CouchDB idiom; an id whose character right after the prefix is U+FFF0 or
// above may be missed by List and Find. Results are ordered by id in byte
// order, the same order the embedded backend uses.
package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb"
	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// DefaultPageSize is how many documents Find asks for per _find request.
// Servers default to 25 when no limit is given.
const DefaultPageSize = 1000

// idRangeEnd closes the id range of a prefix query.
const idRangeEnd = "\ufff0"

// Watch feed tuning: the heartbeat keeps idle feeds alive through proxies,
// and a broken feed is reopened with a growing pause up to maxRetryPause.
const (
	heartbeat     = 10 * time.Second
	minRetryPause = 100 * time.Millisecond
	maxRetryPause = 5 * time.Second
	watchBuffer   = 64
)

type config struct {
	pageSize int
	log      logrus.FieldLogger
}

// Option configures Open.
type Option func(*config)

// WithPageSize sets how many documents Find fetches per request.
func WithPageSize(n int) Option {
	return func(c *config) { c.pageSize = max(n, 1) }
}

// WithLogger sets where the store reports broken change feeds; without it,
// or with nil, nothing is logged.
func WithLogger(l logrus.FieldLogger) Option {
	return func(c *config) { c.log = l }
}

// Store is a store.Store on one CouchDB database. It implements store.Finder
// with Mango and store.Indexer with Mango indexes.
type Store struct {
	client    *kivik.Client
	db        *kivik.DB
	transport *http.Transport
	name      string
	pageSize  int
	dialect   dialect
	log       logrus.FieldLogger

	// indexes are the JSON indexes Find may name, as listed at Open and
	// after each EnsureIndex; indexMu serializes the listings.
	indexes atomic.Pointer[[]mangoIndex]
	indexMu sync.Mutex

	// life ends when Close starts, stopping Watch feeds.
	life    context.Context
	endLife context.CancelFunc

	mu     sync.Mutex // guards closed and the Add side of ops
	closed bool
	ops    sync.WaitGroup // calls and Watch feeds in flight, waited for by Close
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Finder      = (*Store)(nil)
	_ store.Indexer     = (*Store)(nil)
	_ store.MultiGetter = (*Store)(nil)
	_ store.Resumer     = (*Store)(nil)
)

// Open connects to the database named by the last path element of rawURL,
// e.g. "http://user:pass@host:5984/cmbs", creating it if it does not exist.
// Credentials in the URL are sent with HTTP basic authentication.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	cfg := config{pageSize: DefaultPageSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = discardLogger()
	}
	base, name, user, err := splitURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("couch: open: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	kopts := []kivik.Option{couchdb.OptionHTTPClient(&http.Client{Transport: plainFeeds{transport}})}
	if user != nil {
		password, _ := user.Password()
		kopts = append(kopts, couchdb.BasicAuth(user.Username(), password))
	}
	client, err := kivik.New("couch", base, kopts...)
	if err != nil {
		return nil, fmt.Errorf("couch: open %s: %w", redact(rawURL), err)
	}
	fail := func(err error) (*Store, error) {
		_ = client.Close()
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("couch: open %s: %w", redact(rawURL), err)
	}
	version, err := client.Version(ctx)
	if err != nil {
		return fail(fmt.Errorf("server version: %w", err))
	}
	if err := ensureDB(ctx, client, name); err != nil {
		return fail(err)
	}
	life, endLife := context.WithCancel(context.Background())
	s := &Store{
		client:    client,
		db:        client.DB(name),
		transport: transport,
		name:      name,
		pageSize:  cfg.pageSize,
		dialect:   dialect{pouch: strings.Contains(strings.ToLower(version.Vendor), "pouchdb")},
		log:       cfg.log.WithField("db", name),
		life:      life,
		endLife:   endLife,
	}
	// Indexes made before, by this process or another, serve Find from
	// the start.
	if err := s.loadIndexes(ctx); err != nil {
		endLife()
		return fail(err)
	}
	// Batches a crash interrupted are completed before anyone reads.
	if err := s.recover(ctx); err != nil {
		endLife()
		return fail(err)
	}
	return s, nil
}

// plainFeeds asks for change feeds uncompressed: PouchDB Server gzips
// responses when asked and then holds a continuous feed back until it ends.
type plainFeeds struct{ next http.RoundTripper }

func (t plainFeeds) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/_changes") && r.Header.Get("Accept-Encoding") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept-Encoding", "identity")
	}
	return t.next.RoundTrip(r)
}

// splitURL separates the server URL, the database name and the credentials.
func splitURL(rawURL string) (base, name string, user *url.Userinfo, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", nil, fmt.Errorf("parse URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", nil, fmt.Errorf("URL %s: scheme must be http or https", redact(rawURL))
	}
	if u.Host == "" {
		return "", "", nil, fmt.Errorf("URL %s: no host", redact(rawURL))
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	i := strings.LastIndex(path, "/")
	if i < 0 || path[i+1:] == "" {
		return "", "", nil, fmt.Errorf("URL %s: no database name in the path", redact(rawURL))
	}
	name, err = url.PathUnescape(path[i+1:])
	if err != nil {
		return "", "", nil, fmt.Errorf("URL %s: database name: %w", redact(rawURL), err)
	}
	server := url.URL{Scheme: u.Scheme, Host: u.Host, RawPath: path[:i]}
	server.Path, _ = url.PathUnescape(path[:i])
	return server.String(), name, u.User, nil
}

// redact hides the password of a URL for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func ensureDB(ctx context.Context, client *kivik.Client, name string) error {
	exists, err := client.DBExists(ctx, name)
	if err != nil {
		return fmt.Errorf("check database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	err = client.CreateDB(ctx, name)
	if err != nil && kivik.HTTPStatus(err) != http.StatusPreconditionFailed {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// enter registers a call in flight, failing once the store is closed.
// Callers must call s.ops.Done when enter succeeds.
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// mapErr turns kivik's HTTP statuses into the store's errors, keeping the
// original for its message.
func mapErr(err error) error {
	switch kivik.HTTPStatus(err) {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case http.StatusConflict:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// kivik reports a network error as 502; a caller's own
		// cancellation is not the database's outage.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// Get returns the current version of the document id.
func (s *Store) Get(ctx context.Context, id string) (store.Doc, error) {
	if err := s.enter(); err != nil {
		return store.Doc{}, fmt.Errorf("couch: get %q: %w", id, err)
	}
	defer s.ops.Done()
	if store.CheckID(id) != nil {
		return store.Doc{}, fmt.Errorf("couch: get %q: %w", id, store.ErrNotFound)
	}
	var fields map[string]json.RawMessage
	if err := s.db.Get(ctx, id).ScanDoc(&fields); err != nil {
		return store.Doc{}, fmt.Errorf("couch: get %q: %w", id, mapErr(err))
	}
	doc, err := fromCouch(id, fields)
	if err != nil {
		return store.Doc{}, fmt.Errorf("couch: get %q: %w", id, err)
	}
	return doc, nil
}

// Put writes doc if doc.Rev is the current revision ("" for a new
// document) and returns the new revision.
func (s *Store) Put(ctx context.Context, doc store.Doc) (string, error) {
	body, err := store.CheckDoc(doc)
	if err != nil {
		return "", fmt.Errorf("couch: put: %w", err)
	}
	if err := s.enter(); err != nil {
		return "", fmt.Errorf("couch: put %q: %w", doc.ID, err)
	}
	defer s.ops.Done()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return "", fmt.Errorf("couch: put %q: %w", doc.ID, err)
	}
	if doc.Rev != "" {
		if !revPattern.MatchString(doc.Rev) {
			// CouchDB answers 400 to a malformed revision; for the store
			// it is just not the current one.
			return "", fmt.Errorf("couch: put %q: malformed revision %q: %w", doc.ID, doc.Rev, store.ErrConflict)
		}
		rev, err := json.Marshal(doc.Rev)
		if err != nil {
			return "", fmt.Errorf("couch: put %q: %w", doc.ID, err)
		}
		fields["_rev"] = rev
	}
	rev, err := s.db.Put(ctx, doc.ID, fields)
	if err != nil {
		return "", fmt.Errorf("couch: put %q: %w", doc.ID, mapErr(err))
	}
	return rev, nil
}

// revPattern accepts CouchDB revisions, "N-hex".
var revPattern = regexp.MustCompile(`^[0-9]+-[0-9a-zA-Z]+$`)

// Delete removes the document id at revision rev.
func (s *Store) Delete(ctx context.Context, id, rev string) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("couch: delete %q: %w", id, err)
	}
	defer s.ops.Done()
	if store.CheckID(id) != nil {
		return fmt.Errorf("couch: delete %q: %w", id, store.ErrNotFound)
	}
	var err error
	if revPattern.MatchString(rev) {
		_, err = s.db.Delete(ctx, id, rev)
		err = mapErr(err)
	} else {
		err = fmt.Errorf("malformed revision %q: %w", rev, store.ErrConflict)
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		// Servers disagree on a revision the document never had (CouchDB
		// says conflict, PouchDB not found) and call a deleted document
		// in conflict; whether the document exists decides.
		err = s.absentOrConflict(ctx, id, err)
	}
	if err != nil {
		return fmt.Errorf("couch: delete %q: %w", id, err)
	}
	return nil
}

// absentOrConflict classifies a failed write of id by whether the document
// exists now.
func (s *Store) absentOrConflict(ctx context.Context, id string, cause error) error {
	_, err := s.db.GetRev(ctx, id)
	switch {
	case err == nil:
		if errors.Is(cause, store.ErrConflict) {
			return cause
		}
		return fmt.Errorf("%w: %w", store.ErrConflict, cause)
	case kivik.HTTPStatus(err) == http.StatusNotFound:
		if errors.Is(cause, store.ErrNotFound) {
			return cause
		}
		return fmt.Errorf("%w: %w", store.ErrNotFound, cause)
	default:
		return fmt.Errorf("%w (checking existence: %w)", cause, err)
	}
}

// List returns the documents whose id starts with prefix, ordered by id.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Doc, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: list %q: %w", prefix, err)
	}
	defer s.ops.Done()
	params := map[string]any{"include_docs": true}
	if prefix != "" {
		params["startkey"] = prefix
		params["endkey"] = prefix + idRangeEnd
	}
	rs := s.db.AllDocs(ctx, kivik.Params(params))
	defer func() { _ = rs.Close() }()
	var docs []store.Doc
	for rs.Next() {
		id, err := rs.ID()
		if err != nil {
			return nil, fmt.Errorf("couch: list %q: %w", prefix, err)
		}
		if !wanted(id, prefix) {
			continue
		}
		var fields map[string]json.RawMessage
		if err := rs.ScanDoc(&fields); err != nil {
			return nil, fmt.Errorf("couch: list %q: %q: %w", prefix, id, err)
		}
		doc, err := fromCouch(id, fields)
		if err != nil {
			return nil, fmt.Errorf("couch: list %q: %w", prefix, err)
		}
		docs = append(docs, doc)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("couch: list %q: %w", prefix, mapErr(err))
	}
	sortDocs(docs)
	return docs, nil
}

// wanted reports whether id belongs in results for prefix: the server's
// range is wider than the prefix, and design documents are not the store's.
func wanted(id, prefix string) bool {
	return strings.HasPrefix(id, prefix) && !reserved(id)
}

// reserved reports ids that are not the store's callers': CouchDB's design
// and local documents, and this backend's batch journals.
func reserved(id string) bool {
	return strings.HasPrefix(id, "_") || strings.HasPrefix(id, store.ReservedPrefix)
}

func sortDocs(docs []store.Doc) {
	slices.SortFunc(docs, func(a, b store.Doc) int { return strings.Compare(a.ID, b.ID) })
}

// Find returns the documents matching q, ordered by id. It pages through
// _find results with bookmarks where the server gives them, and with skip
// otherwise, so results larger than a page are complete. It names an index
// that can serve q in use_index (see chooseIndex), and when such a query
// fails, lists the indexes again and retries once: PouchDB Server fails a
// query naming an index that has been deleted.
func (s *Store) Find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: find under %q: %w", q.Prefix, err)
	}
	defer s.ops.Done()
	docs, err := s.find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("couch: find under %q: %w", q.Prefix, err)
	}
	return docs, nil
}

func (s *Store) find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	selector, err := s.dialect.buildSelector(q)
	if err != nil {
		return nil, err
	}
	idx, hinted := chooseIndex(s.knownIndexes(), q.Where)
	docs, err := s.findWith(ctx, q, selector, idx, hinted)
	if err == nil || !hinted || ctx.Err() != nil {
		return docs, err
	}
	// PouchDB Server fails a query naming an index it no longer has, so
	// the indexes are listed again and the query retried once.
	if lerr := s.loadIndexes(ctx); lerr != nil {
		return nil, fmt.Errorf("%w; listing indexes to retry: %w", err, lerr)
	}
	idx, hinted = chooseIndex(s.knownIndexes(), q.Where)
	return s.findWith(ctx, q, selector, idx, hinted)
}

// findWith runs selector, naming idx in use_index when hinted, and keeps
// the documents that belong under q.Prefix and match q.Where.
func (s *Store) findWith(ctx context.Context, q store.Query, selector map[string]any, idx mangoIndex, hinted bool) ([]store.Doc, error) {
	var useIndex []string
	if hinted {
		useIndex = idx.useIndex()
	}
	var (
		docs     []store.Doc
		seen     = map[string]bool{}
		bookmark string
		skip     int
	)
	for {
		query := findQuery{Selector: selector, Limit: s.pageSize, Bookmark: bookmark, UseIndex: useIndex}
		if bookmark == "" {
			query.Skip = skip
		}
		n, next, err := s.findPage(ctx, query, func(id string, fields map[string]json.RawMessage) error {
			if seen[id] || !wanted(id, q.Prefix) {
				return nil
			}
			seen[id] = true
			doc, err := fromCouch(id, fields)
			if err != nil {
				return err
			}
			ok, err := store.Match(doc.Body, q.Where)
			if err != nil {
				return fmt.Errorf("%q: %w", id, err)
			}
			if ok {
				docs = append(docs, doc)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if n < s.pageSize {
			break
		}
		bookmark = next
		skip += n
	}
	sortDocs(docs)
	return docs, nil
}

// findQuery is the body of a _find request.
type findQuery struct {
	Selector map[string]any `json:"selector"`
	Limit    int            `json:"limit"`
	Skip     int            `json:"skip,omitempty"`
	Bookmark string         `json:"bookmark,omitempty"`
	UseIndex []string       `json:"use_index,omitempty"`
}

// findPage runs one _find request, handing each document to fn, and returns
// how many rows came back and the bookmark for the next page, if any.
func (s *Store) findPage(ctx context.Context, q findQuery, fn func(string, map[string]json.RawMessage) error) (int, string, error) {
	rs := s.db.Find(ctx, q)
	defer func() { _ = rs.Close() }()
	n := 0
	for rs.Next() {
		n++
		var fields map[string]json.RawMessage
		if err := rs.ScanDoc(&fields); err != nil {
			return 0, "", err
		}
		var id string
		if err := json.Unmarshal(fields["_id"], &id); err != nil {
			return 0, "", fmt.Errorf("result without a usable _id: %w", err)
		}
		if err := fn(id, fields); err != nil {
			return 0, "", err
		}
	}
	if err := rs.Err(); err != nil {
		return 0, "", mapErr(err)
	}
	meta, err := rs.Metadata()
	if err != nil {
		return 0, "", err
	}
	return n, meta.Bookmark, nil
}

// EnsureIndex creates a Mango JSON index on idx.Fields; creating an index
// that exists is a no-op. Fields Mango cannot name are left out, since an
// index only speeds queries up. Find names the index from then on.
func (s *Store) EnsureIndex(ctx context.Context, idx store.Index) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("couch: ensure index %q: %w", idx.Name, err)
	}
	defer s.ops.Done()
	var fields []string
	for _, path := range idx.Fields {
		if name, ok := mangoField(path); ok {
			fields = append(fields, name)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	def := struct {
		Fields []string `json:"fields"`
	}{fields}
	if err := s.db.CreateIndex(ctx, "", idx.Name, def); err != nil {
		return fmt.Errorf("couch: ensure index %q: %w", idx.Name, mapErr(err))
	}
	// The server names the design document, so Find learns where the
	// index lives from the listing.
	if err := s.loadIndexes(ctx); err != nil {
		return fmt.Errorf("couch: ensure index %q: %w", idx.Name, err)
	}
	return nil
}

// Watch returns a channel of the changes made after the call, read from the
// continuous _changes feed. The channel is closed when ctx ends or the store
// closes. A feed that breaks is reopened from the last change seen, so no
// change is lost while the server's sequence survives; failures are logged.
// A slow reader only slows the feed down.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	return s.WatchSince(ctx, "")
}

// WatchSince implements store.Resumer: Watch from the change whose Seq is
// since, or from the current sequence when since is empty. CouchDB's
// sequences are opaque; a clustered CouchDB may replay changes from before
// since after a shard moves, so readers must take a change twice calmly.
func (s *Store) WatchSince(ctx context.Context, since string) (<-chan store.Change, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: watch: %w", err)
	}
	if since == "" {
		// The current sequence, rather than since=now, makes sure a
		// write made once Watch has returned is seen even if the feed
		// connects later.
		stats, err := s.db.Stats(ctx)
		if err != nil {
			s.ops.Done()
			return nil, fmt.Errorf("couch: watch: %w", mapErr(err))
		}
		since = stats.UpdateSeq
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.life, cancel)
	out := make(chan store.Change, watchBuffer)
	go func() {
		defer s.ops.Done()
		defer close(out)
		defer stop()
		defer cancel()
		s.follow(wctx, since, out)
	}()
	return out, nil
}

// follow copies the changes feed to out from since until ctx ends.
func (s *Store) follow(ctx context.Context, since string, out chan<- store.Change) {
	pause := minRetryPause
	for {
		var err error
		since, err = s.followOnce(ctx, since, out)
		if ctx.Err() != nil {
			return
		}
		s.log.WithError(err).WithField("since", since).Warn("changes feed broke; reopening it")
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxRetryPause)
	}
}

// followOnce reads one connection of the feed and returns the last sequence
// it saw.
func (s *Store) followOnce(ctx context.Context, since string, out chan<- store.Change) (string, error) {
	feed := s.db.Changes(ctx, kivik.Params(map[string]any{
		"feed":      "continuous",
		"since":     since,
		"heartbeat": int(heartbeat / time.Millisecond),
	}))
	defer func() { _ = feed.Close() }()
	for feed.Next() {
		id := feed.ID()
		seq := feed.Seq()
		if seq != "" {
			since = seq
		}
		revs := feed.Changes()
		if reserved(id) || len(revs) == 0 {
			continue
		}
		select {
		case out <- store.Change{ID: id, Rev: revs[0], Deleted: feed.Deleted(), Seq: since}:
		case <-ctx.Done():
			return since, ctx.Err()
		}
	}
	if err := feed.Err(); err != nil {
		return since, err
	}
	return since, errors.New("feed ended")
}

// Close stops Watch feeds, waits for calls in flight and releases the
// client. Later calls fail with store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("couch: close %q: %w", s.name, store.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	s.endLife()
	s.ops.Wait()
	err := errors.Join(s.db.Close(), s.client.Close())
	s.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("couch: close %q: %w", s.name, err)
	}
	return nil
}

// fromCouch splits a CouchDB document into the store's Doc: reserved fields
// go, the rest is the body.
func fromCouch(id string, fields map[string]json.RawMessage) (store.Doc, error) {
	var rev string
	if raw, ok := fields["_rev"]; ok {
		if err := json.Unmarshal(raw, &rev); err != nil {
			return store.Doc{}, fmt.Errorf("%q: _rev: %w", id, err)
		}
	}
	for k := range fields {
		if strings.HasPrefix(k, "_") {
			delete(fields, k)
		}
	}
	body, err := encodeJSON(fields)
	if err != nil {
		return store.Doc{}, fmt.Errorf("%q: %w", id, err)
	}
	return store.Doc{ID: id, Rev: rev, Body: body}, nil
}

// encodeJSON marshals v without escaping HTML characters, keeping bodies as
// close as possible to what was stored.
func encodeJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// discardLogger is the logger of a store built without one: it drops
// everything, so the package never writes to logrus's global logger behind
// its caller's back.
func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
