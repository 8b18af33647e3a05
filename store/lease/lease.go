// Package lease shares work among servers on one store: a lease, held by
// one server at a time, says which of them does a piece of work (delivers
// an outbox stream, sends a subscription's callbacks). It is the
// Kubernetes Lease, kept in a store document.
//
// Each lease is a document "lease/NAME" holding the holder's name, when it
// was last renewed, its time to live, and data the holder keeps with it (a
// subscription's checkpoint). Every change is a Put at the revision last
// read, so of two servers racing for a lease exactly one wins: the store's
// revisions, not clocks, decide who holds it.
//
// Clocks decide only when a lease whose holder stopped renewing may be
// taken over, and no two clocks are compared: a server that finds a lease
// held by another remembers the document's revision and when (on its own
// monotonic clock) it first saw it, and takes the lease over once the
// revision has not changed for the lease's time to live. The holder, for
// its part, counts itself the holder for the time to live less a tenth
// from the moment it started its last successful renewal, which is before
// anyone could see that renewal. So holder and taker never overlap as long
// as their clocks run at rates within a tenth of each other; wall-clock
// differences between servers do not matter. A server that pauses (GC, a
// stopped VM) past its lease finds its next renewal refused and stops the
// work.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// Prefix starts the id of every lease document.
const Prefix = "lease/"

// docLease is the doc field of lease documents.
const docLease = "lease"

// Defaults of Config.
const (
	DefaultTTL = 10 * time.Second
	// DefaultFlush is how soon data set on a held lease is written.
	DefaultFlush = time.Second
	// DefaultIdle is how long a lease no one asked for stays held.
	DefaultIdle = time.Minute
)

// Config configures a Keeper.
type Config struct {
	// Store holds the lease documents. Required.
	Store store.Store
	// Holder names this server; two live servers must not share it.
	// Required.
	Holder string
	// TTL is how long a lease lasts without renewal (default 10s). Held
	// leases are renewed every third of it.
	TTL time.Duration
	// Flush is how soon data set with SetData is written (default 1s).
	Flush time.Duration
	// Idle is how long a held lease nobody Acquired is kept (default
	// 1m); then it is released for any server to take.
	Idle time.Duration
	// Logger receives the keeper's logs; nil discards them.
	Logger logrus.FieldLogger
}

// Keeper holds, renews and takes over leases for one server. Acquire and
// Release implement broker.Leases. Start it; Close releases what it holds.
type Keeper struct {
	cfg Config
	st  store.Store
	log logrus.FieldLogger

	mu      sync.Mutex
	leases  map[string]*lease
	started bool
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// lease is what the keeper knows of one lease.
type lease struct {
	name string
	// op serializes the store calls for this lease.
	op sync.Mutex

	// Guarded by Keeper.mu.
	rev      string // the document's revision as last read or written
	holder   string // its holder then
	ttl      time.Duration
	observed time.Time // when rev was first seen here
	held     bool
	renewed  time.Time // start of the last successful write while held
	until    time.Time // held until then, by this server's clock
	asked    time.Time // last Acquire
	data     json.RawMessage
	dirty    bool
}

// doc is a lease document's body.
type doc struct {
	Doc     string          `json:"doc"`
	Name    string          `json:"name"`
	Holder  string          `json:"holder"`
	Renewed time.Time       `json:"renewed"`
	Expires time.Time       `json:"expires"`
	TTL     string          `json:"ttl"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// New builds a keeper from cfg.
func New(cfg Config) (*Keeper, error) {
	if cfg.Store == nil {
		return nil, errors.New("lease: a store is required")
	}
	if cfg.Holder == "" {
		return nil, errors.New("lease: a holder name is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Flush <= 0 {
		cfg.Flush = DefaultFlush
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Keeper{cfg: cfg, st: cfg.Store, log: cfg.Logger.WithFields(logrus.Fields{"component": "lease", "holder": cfg.Holder}),
		leases: map[string]*lease{}, ctx: ctx, cancel: cancel, done: make(chan struct{})}, nil
}

// Holder is the name this keeper holds leases under.
func (k *Keeper) Holder() string { return k.cfg.Holder }

// TTL is how long this keeper's leases last unrenewed.
func (k *Keeper) TTL() time.Duration { return k.cfg.TTL }

// Start runs the renewals until Close.
func (k *Keeper) Start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.started {
		return errors.New("lease: already started or closed")
	}
	k.started = true
	go k.run()
	return nil
}

// Close stops the renewals and releases every lease held, so other
// servers take the work over at once instead of after the time to live.
func (k *Keeper) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return errors.New("lease: already closed")
	}
	k.closed = true
	started := k.started
	k.mu.Unlock()
	k.cancel()
	if started {
		<-k.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, l := range k.all() {
		if err := k.release(ctx, l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// halt stops the renewals without releasing anything: what a crash does.
func (k *Keeper) halt() {
	k.mu.Lock()
	k.closed = true
	started := k.started
	k.mu.Unlock()
	k.cancel()
	if started {
		<-k.done
	}
}

func (k *Keeper) all() []*lease {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Collect(maps.Values(k.leases))
}

func (k *Keeper) get(name string) *lease {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.leases[name]
	if !ok {
		l = &lease{name: name}
		k.leases[name] = l
	}
	return l
}

// holds reports whether l is held now; call it under k.mu.
func (l *lease) holds(now time.Time) bool { return l.held && now.Before(l.until) }

// Held reports whether this server holds the lease called name, without
// reading the store.
func (k *Keeper) Held(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.leases[name]
	return ok && l.holds(time.Now())
}

// Acquire reports whether this server holds the lease called name, taking
// it when it is free, released, or unchanged for its time to live. A held
// lease is renewed until Release, Close, or Idle passes without Acquire.
func (k *Keeper) Acquire(ctx context.Context, name string) (bool, error) {
	l := k.get(name)
	now := time.Now()
	k.mu.Lock()
	l.asked = now
	held, closed := l.holds(now), k.closed
	k.mu.Unlock()
	if held || closed {
		return held, nil
	}
	l.op.Lock()
	defer l.op.Unlock()
	return k.try(ctx, l)
}

// try reads the lease and takes it if it may; call it under l.op.
func (k *Keeper) try(ctx context.Context, l *lease) (bool, error) {
	d, err := k.st.Get(ctx, Prefix+l.name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return k.write(ctx, l, "", nil, "taken")
	case err != nil:
		return false, fmt.Errorf("lease %s: %w", l.name, err)
	}
	var cur doc
	if err := json.Unmarshal(d.Body, &cur); err != nil {
		return false, fmt.Errorf("lease %s: unreadable document: %w", l.name, err)
	}
	ttl, err := time.ParseDuration(cur.TTL)
	if err != nil || ttl <= 0 {
		ttl = k.cfg.TTL
	}
	now := time.Now()
	k.mu.Lock()
	if d.Rev != l.rev {
		l.rev, l.holder, l.ttl, l.observed = d.Rev, cur.Holder, ttl, now
	}
	stale := now.Sub(l.observed) >= ttl
	k.mu.Unlock()
	switch {
	case cur.Holder == k.cfg.Holder:
		// Held under this name before: renewals failed for a while, or
		// an earlier life of this server held it.
		return k.write(ctx, l, d.Rev, cur.Data, "taken again")
	case cur.Holder == "":
		return k.write(ctx, l, d.Rev, cur.Data, "taken after its release")
	case stale:
		k.log.WithFields(logrus.Fields{"lease": l.name, "from": cur.Holder, "unrenewed": now.Sub(l.observed).Round(time.Millisecond)}).
			Warn("taking over a lease its holder stopped renewing")
		return k.write(ctx, l, d.Rev, cur.Data, "taken over")
	}
	return false, nil
}

// write puts the lease as held by this server at revision rev ("" to
// create it) with data, and records the outcome; call it under l.op. A
// conflict means another server wrote first: not held.
func (k *Keeper) write(ctx context.Context, l *lease, rev string, data json.RawMessage, how string) (bool, error) {
	start := time.Now()
	body, err := json.Marshal(doc{Doc: docLease, Name: l.name, Holder: k.cfg.Holder, Renewed: start.UTC(),
		Expires: start.Add(k.cfg.TTL).UTC(), TTL: k.cfg.TTL.String(), Data: data})
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.name, err)
	}
	newRev, err := k.st.Put(ctx, store.Doc{ID: Prefix + l.name, Rev: rev, Body: body})
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrConflict):
		l.held = false
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lease %s: %w", l.name, err)
	}
	was := l.held
	l.rev, l.holder, l.ttl, l.observed = newRev, k.cfg.Holder, k.cfg.TTL, start
	l.held, l.renewed, l.until = true, start, start.Add(k.cfg.TTL-k.cfg.TTL/10)
	if !was {
		l.data, l.dirty = data, false
		k.log.WithField("lease", l.name).Info("lease " + how)
	}
	return true, nil
}

// Release gives the lease called name up, keeping its data, if this
// server holds it.
func (k *Keeper) Release(ctx context.Context, name string) error {
	k.mu.Lock()
	l, ok := k.leases[name]
	k.mu.Unlock()
	if !ok {
		return nil
	}
	return k.release(ctx, l)
}

func (k *Keeper) release(ctx context.Context, l *lease) error {
	l.op.Lock()
	defer l.op.Unlock()
	k.mu.Lock()
	held, rev, data := l.held, l.rev, l.data
	l.held = false
	k.mu.Unlock()
	if !held {
		return nil
	}
	now := time.Now().UTC()
	body, err := json.Marshal(doc{Doc: docLease, Name: l.name, Renewed: now, Expires: now, TTL: k.cfg.TTL.String(), Data: data})
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.name, err)
	}
	newRev, err := k.st.Put(ctx, store.Doc{ID: Prefix + l.name, Rev: rev, Body: body})
	switch {
	case errors.Is(err, store.ErrConflict):
		// Taken over meanwhile: nothing of ours to release.
		return nil
	case err != nil:
		return fmt.Errorf("lease %s: release: %w", l.name, err)
	}
	k.mu.Lock()
	l.rev, l.holder, l.observed = newRev, "", time.Now()
	k.mu.Unlock()
	k.log.WithField("lease", l.name).Debug("lease released")
	return nil
}

// Data returns the data kept with the lease called name: as found when
// this server took it, or as last set.
func (k *Keeper) Data(name string) json.RawMessage {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.leases[name]; ok {
		return l.data
	}
	return nil
}

// SetData keeps data with the lease called name, written within Flush
// while this server holds it; it is ignored otherwise.
func (k *Keeper) SetData(name string, data json.RawMessage) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.leases[name]; ok && l.held {
		l.data, l.dirty = data, true
	}
}

// run renews held leases, writes their data and lets idle ones go, until
// Close.
func (k *Keeper) run() {
	defer close(k.done)
	tick := time.NewTicker(min(k.cfg.Flush, k.cfg.TTL/3))
	defer tick.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-tick.C:
		}
		k.renew(k.ctx)
	}
}

// renew writes every held lease whose renewal or data is due.
func (k *Keeper) renew(ctx context.Context) {
	now := time.Now()
	for _, l := range k.all() {
		k.mu.Lock()
		held := l.held
		idle := now.Sub(l.asked) > k.cfg.Idle
		due := now.Sub(l.renewed) >= k.cfg.TTL/3 || l.dirty && now.Sub(l.renewed) >= k.cfg.Flush
		lapsed := held && !now.Before(l.until)
		k.mu.Unlock()
		if !held {
			continue
		}
		if idle {
			if err := k.release(ctx, l); err != nil && ctx.Err() == nil {
				k.log.WithError(err).WithField("lease", l.name).Warn("idle lease not released")
			}
			continue
		}
		if !due {
			continue
		}
		if lapsed {
			k.log.WithField("lease", l.name).Warn("lease lapsed unrenewed; trying to take it again")
		}
		l.op.Lock()
		k.mu.Lock()
		if !l.held {
			// Released meanwhile.
			k.mu.Unlock()
			l.op.Unlock()
			continue
		}
		rev, data, dirty := l.rev, l.data, l.dirty
		l.dirty = false
		k.mu.Unlock()
		ok, err := k.write(ctx, l, rev, data, "renewed")
		l.op.Unlock()
		switch {
		case err != nil:
			k.mu.Lock()
			l.dirty = l.dirty || dirty
			k.mu.Unlock()
			if ctx.Err() == nil {
				k.log.WithError(err).WithField("lease", l.name).Warn("lease not renewed; trying again")
			}
		case !ok:
			k.log.WithField("lease", l.name).Warn("lease lost: another server took it over")
		}
	}
}
