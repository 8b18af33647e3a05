package notify

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

//go:embed categories.json
var categoriesJSON []byte

// Categories returns the subscription kind.
func Categories() ([]*occi.Category, error) {
	return occi.ParseCategories(categoriesJSON)
}

// Retry is how a callback that fails is tried again.
type Retry struct {
	// Attempts bounds the tries of one event, the first included
	// (default 5).
	Attempts int
	// Initial is the pause before the second try (default 500ms); each
	// later pause doubles, up to Max (default 30s).
	Initial time.Duration
	Max     time.Duration
}

// pause is the wait before try number attempt+1.
func (r Retry) pause(attempt int) time.Duration {
	d := r.Initial
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Config configures a Notifier.
type Config struct {
	// Store is watched for changes and holds the subscriptions. Required.
	Store store.Store
	// Logger receives the notifier's logs; nothing is logged when nil.
	Logger logrus.FieldLogger
	// Client makes the callbacks. The default times a request out after
	// 10s and follows no redirects (a redirect counts as a failure).
	Client *http.Client
	// Retry is the callback retry policy.
	Retry Retry
	// QueueSize bounds each subscription's waiting events (default 256);
	// events that find it full are dropped and counted.
	QueueSize int
	// StreamBuffer bounds each /events client's waiting events (default
	// 256); a client that lets it fill is disconnected.
	StreamBuffer int
	// StreamWriteWait is how long a write to an /events client may block
	// before the client counts as gone (default 10s).
	StreamWriteWait time.Duration
	// History is how many recent events are kept for /events clients that
	// resume with Last-Event-ID (default 1024), and HistoryBytes about how
	// much memory they may take in all (default 16 MiB): the oldest go
	// first.
	History      int
	HistoryBytes int
	// StatusInterval is how often, at most, a busy subscription's counters
	// are written to the store (default 1s); state changes are written at
	// once.
	StatusInterval time.Duration
	// Leases, when set, share the subscriptions among the servers of one
	// store (see shared.go): each subscription's callbacks are sent by
	// the server holding its lease, from the checkpoint kept with it, and
	// the broker's events are recorded in the store for the holders to
	// send. The store must then be a store.Resumer (CouchDB). Nil: this
	// server sends every subscription's callbacks itself.
	Leases Leases
}

// Leases are what a notifier sharing a store needs of lease.Keeper.
type Leases interface {
	broker.Leases
	// Held reports, without reading the store, whether this server holds
	// the lease called name.
	Held(name string) bool
	// Data and SetData read and keep the data kept with a lease: where
	// its subscription's holder had got to.
	Data(name string) json.RawMessage
	SetData(name string, data json.RawMessage)
}

// Notifier owns the change-feed reader, one worker per subscription and
// the /events streams. Register it on the OCCI server, Start it, attach it
// to the broker with SetEventSink, and Close it before the store.
type Notifier struct {
	cfg Config
	st  store.Store
	log logrus.FieldLogger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	started bool
	closed  bool
	subs    map[string]*subscription
	streams map[*stream]struct{}
	// history holds the latest events, oldest first, for streams that
	// resume; guarded by mu's write lock or histMu under its read lock.
	histMu    sync.Mutex
	history   []kept
	histBytes int

	// kinds maps kind locations to kind ids; replaced whole by the
	// change-feed goroutine (and Start before it runs).
	kinds atomic.Pointer[map[string]string]
	// Owned by the change-feed goroutine (and Start before it runs).
	deleted *recentSet

	// recorder writes the broker's events to the store for the servers
	// sharing it; nil for a server alone on its store.
	recorder *eventRecorder
}

// New builds a notifier from cfg.
func New(cfg Config) (*Notifier, error) {
	if cfg.Store == nil {
		return nil, errors.New("notify: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 5
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = 500 * time.Millisecond
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = 30 * time.Second
	}
	cfg.Retry.Max = max(cfg.Retry.Max, cfg.Retry.Initial)
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.StreamWriteWait <= 0 {
		cfg.StreamWriteWait = defaultWriteWait
	}
	if cfg.StreamBuffer <= 0 {
		cfg.StreamBuffer = 256
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 1024
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = 16 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{cfg: cfg, st: cfg.Store, log: cfg.Logger.WithField("component", "notify"),
		ctx: ctx, cancel: cancel, subs: map[string]*subscription{}, streams: map[*stream]struct{}{},
		deleted: newRecentSet(4096)}
	n.kinds.Store(&map[string]string{})
	if cfg.Leases != nil {
		n.recorder = newEventRecorder(n)
	}
	return n, nil
}

// shared reports whether this notifier shares its store's subscriptions
// with other servers.
func (n *Notifier) shared() bool { return n.cfg.Leases != nil }

// Register adds the cmbs_subscription provider to srv, registers the
// subscription kind and attaches the provider when the kind has none.
func (n *Notifier) Register(ctx context.Context, srv *occi.Server) error {
	srv.Providers().Register(Provider, provider{n})
	cats, err := Categories()
	if err != nil {
		return fmt.Errorf("notify: categories: %w", err)
	}
	if err := srv.EnsureCategories(ctx, cats); err != nil {
		return fmt.Errorf("notify: register categories: %w", err)
	}
	c, err := srv.Category(ctx, Kind)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if c.Providers == nil || len(c.Providers.Local) == 0 {
		if _, err := srv.AttachProviders(ctx, Kind, occi.Providers{Local: []string{Provider}}); err != nil {
			return fmt.Errorf("notify: attach %s: %w", Provider, err)
		}
	}
	return nil
}

// Start watches the store and starts a worker for every stored
// subscription. Changes made after Start returns are all seen.
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return errors.New("notify: closed")
	case n.started:
		n.mu.Unlock()
		return errors.New("notify: already started")
	}
	n.started = true
	n.mu.Unlock()
	if n.shared() {
		// Checked now rather than when a subscription is first taken.
		wctx, cancel := context.WithCancel(n.ctx)
		ch, err := store.WatchSince(wctx, n.st, "")
		cancel()
		if err != nil {
			return fmt.Errorf("notify: subscriptions shared among servers need a store whose change feed resumes: %w", err)
		}
		for range ch {
		}
	}
	// Watch before loading, so nothing written in between is missed.
	ch, err := n.st.Watch(n.ctx)
	if err != nil {
		return fmt.Errorf("notify: watch the store: %w", err)
	}
	if err := n.load(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("notify: closed")
	}
	n.wg.Add(1)
	go n.follow(ch)
	if n.recorder != nil {
		n.wg.Add(2)
		go n.recorder.run()
		go n.pruneEvents()
	}
	return nil
}

// load reads the kinds' locations and the stored subscriptions.
func (n *Notifier) load(ctx context.Context) error {
	if err := n.loadKinds(ctx); err != nil {
		return err
	}
	subs, err := occi.FindEntitiesAt(ctx, n.st, Location, Kind)
	if err != nil {
		return fmt.Errorf("notify: load subscriptions: %w", err)
	}
	live := map[string]bool{}
	for _, e := range subs {
		live[e.Location] = true
		n.upsert(e, "")
	}
	n.mu.RLock()
	var gone []string
	for loc := range n.subs {
		if !live[loc] {
			gone = append(gone, loc)
		}
	}
	n.mu.RUnlock()
	for _, loc := range gone {
		n.remove(loc)
	}
	return nil
}

func (n *Notifier) loadKinds(ctx context.Context) error {
	docs, err := n.st.List(ctx, "category:")
	if err != nil {
		return fmt.Errorf("notify: list categories: %w", err)
	}
	kinds := map[string]string{}
	for _, d := range docs {
		var c occi.Category
		if err := json.Unmarshal(d.Body, &c); err != nil || c.Class != occi.ClassKind || c.Location == "" {
			continue
		}
		kinds[c.Location] = c.ID()
	}
	n.kinds.Store(&kinds)
	return nil
}

// kindAt names the kind whose location holds the entity at path.
func (n *Notifier) kindAt(path string) string {
	return (*n.kinds.Load())[path[:strings.LastIndexByte(path, '/')+1]]
}

// follow turns the change feed into events until Close. A feed that ends
// early (a store that drops a reader that fell behind) is opened again and
// the subscriptions reloaded; the changes in between are not reported.
func (n *Notifier) follow(ch <-chan store.Change) {
	defer n.wg.Done()
	pause := 100 * time.Millisecond
	for {
		select {
		case <-n.ctx.Done():
			return
		case c, ok := <-ch:
			if ok {
				n.handle(c)
				continue
			}
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Warn("the store's change feed ended; watching again, and changes made meanwhile are not notified")
		for {
			var err error
			if ch, err = n.st.Watch(n.ctx); err == nil {
				err = n.load(n.ctx)
			}
			if err == nil {
				pause = 100 * time.Millisecond
				break
			}
			n.log.WithError(err).Warn("watching the store again failed")
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 10*time.Second)
		}
	}
}

// handle turns one change into an event, or into a subscription update.
func (n *Notifier) handle(c store.Change) {
	switch {
	case strings.HasPrefix(c.ID, "category:"):
		if err := n.loadKinds(n.ctx); err != nil {
			n.log.WithError(err).Warn("kind locations not refreshed")
		}
	case strings.HasPrefix(c.ID, Location):
		// Subscriptions are not notified: their counters change with every
		// delivery, which would notify the subscriptions again, and their
		// secrets are no one else's.
		n.reconcile(c)
	case strings.HasPrefix(c.ID, "/"):
		n.publish(n.entityEvent(n.ctx, c, n.deleted))
	case strings.HasPrefix(c.ID, eventPrefix) && !c.Deleted && n.shared():
		if ev := n.recordedEvent(n.ctx, c); ev != nil {
			n.publish(ev)
		}
	}
}

// entityEvent turns a change of the entity at c.ID into its event; deleted
// remembers the deletions seen on the same feed, so that a document
// written again reads as created.
func (n *Notifier) entityEvent(ctx context.Context, c store.Change, deleted *recentSet) *Event {
	ev := &Event{ID: entityEventID(c), Time: time.Now().UTC(), Location: c.ID}
	if c.Deleted {
		ev.Type, ev.Kind = Deleted, n.kindAt(c.ID)
		deleted.add(c.ID)
		return ev
	}
	ev.Type = Updated
	// A first revision is a creation; so is a write after a delete, which
	// CouchDB numbers on from the deleted revision.
	if generation(c.Rev) == 1 || deleted.take(c.ID) {
		ev.Type = Created
	}
	d, err := n.st.Get(ctx, c.ID)
	switch {
	case err == nil:
		e, err := occi.DecodeEntity(d)
		if err != nil {
			n.log.WithError(err).WithField("id", c.ID).Debug("change to a document that is not an entity")
			return nil
		}
		ev.Entity, ev.Kind = e, e.Kind
	case errors.Is(err, store.ErrNotFound):
		// Deleted since; the deletion follows on the feed.
		ev.Kind = n.kindAt(c.ID)
	default:
		if ctx.Err() != nil {
			return nil
		}
		n.log.WithError(err).WithField("entity", c.ID).Warn("changed entity not read; its event has no entity")
		ev.Kind = n.kindAt(c.ID)
	}
	return ev
}

// reconcile follows a change to a subscription document.
func (n *Notifier) reconcile(c store.Change) {
	if c.Deleted {
		n.remove(c.ID)
		return
	}
	e, err := occi.GetEntity(n.ctx, n.st, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n.remove(c.ID)
	case err != nil:
		if n.ctx.Err() == nil {
			n.log.WithError(err).WithField("subscription", c.ID).Warn("changed subscription not read")
		}
	default:
		n.upsert(e, c.Seq)
	}
}

// upsert starts or reconfigures the subscription e; seq is the position of
// the change that reported it on the feed, "" when it was read at start.
func (n *Notifier) upsert(e *occi.Entity, seq string) {
	if e.Kind != Kind {
		return
	}
	sp, err := parseSpec(e)
	if err != nil {
		n.log.WithError(err).WithField("subscription", e.Location).Warn("invalid subscription; nothing is delivered to it")
		n.remove(e.Location)
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	s, ok := n.subs[e.Location]
	if !ok {
		s = newSubscription(n, e.Location, sp, statusOf(e), generation(e.Rev))
		s.startSeq = seq
		n.subs[e.Location] = s
		n.wg.Add(1)
		if n.shared() {
			go s.runShared()
		} else {
			go s.run()
		}
		n.mu.Unlock()
		n.log.WithFields(logrus.Fields{"subscription": e.Location, "state": s.st.State}).Debug("subscription started")
		return
	}
	n.mu.Unlock()
	s.reconfigure(sp, statusOf(e).State, generation(e.Rev))
}

// remove stops the subscription at location and waits for its worker.
func (n *Notifier) remove(location string) {
	n.mu.Lock()
	s := n.subs[location]
	delete(n.subs, location)
	n.mu.Unlock()
	if s != nil {
		s.stop(false)
		n.log.WithField("subscription", location).Debug("subscription stopped")
	}
}

// Subscription returns the live status of the subscription at location,
// as its worker knows it (the stored attributes lag it by at most
// StatusInterval). ok is false when no worker runs it.
func (n *Notifier) Subscription(location string) (st Status, ok bool) {
	n.mu.RLock()
	s := n.subs[location]
	n.mu.RUnlock()
	if s == nil {
		return Status{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, true
}

// Emit takes the broker's events (Notifier is a broker.EventSink). It never
// blocks. Sharing the store with other servers, it records them there for
// every server to hear (see shared.go).
func (n *Notifier) Emit(be broker.Event) {
	ev := fromBroker(be)
	if n.recorder != nil {
		n.recorder.add(ev)
		return
	}
	n.publish(ev)
}

// publish hands ev to every matching subscription and stream without
// waiting for any. Sharing the store, subscriptions read their own feeds
// instead.
func (n *Notifier) publish(ev *Event) {
	if ev == nil {
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	n.remember(ev)
	if !n.shared() {
		for _, s := range n.subs {
			s.offer(ev)
		}
	}
	for st := range n.streams {
		st.offer(ev)
	}
}

// Close stops the change feed, the streams (with a close frame) and the
// workers, which write their counters a last time, and waits for them all.
// Close it before the store.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("notify: already closed")
	}
	n.closed = true
	subs := n.subs
	n.subs = map[string]*subscription{}
	n.mu.Unlock()
	for _, s := range subs {
		s.final.Store(true)
	}
	n.cancel()
	n.wg.Wait()
	if n.recorder != nil {
		n.recorder.flush()
	}
	return nil
}

// recentSet remembers up to size keys, forgetting the oldest first.
type recentSet struct {
	size  int
	keys  map[string]struct{}
	order []string
}

func newRecentSet(size int) *recentSet {
	return &recentSet{size: size, keys: map[string]struct{}{}}
}

func (r *recentSet) add(k string) {
	if _, ok := r.keys[k]; ok {
		return
	}
	if len(r.order) >= r.size {
		delete(r.keys, r.order[0])
		r.order = r.order[1:]
	}
	r.keys[k] = struct{}{}
	r.order = append(r.order, k)
}

// take reports whether k is held, and forgets it.
func (r *recentSet) take(k string) bool {
	if _, ok := r.keys[k]; !ok {
		return false
	}
	delete(r.keys, k)
	for i, o := range r.order {
		if o == k {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	return true
}

// discardLogger is the logger of a notifier built without one: it drops
// everything, so the package never writes to logrus's global logger behind
// its caller's back.
func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
