// Package instrumented decorates a store.Store with Prometheus metrics:
// operations, errors and latency by operation and backend.
//
// The decorator keeps the inner store's optional abilities: Wrap returns a
// value implementing store.Finder exactly when the inner store does, and
// store.Indexer likewise, so store.Find and store.EnsureIndex behave as they
// would on the bare backend (native query or scan, index or no-op).
package instrumented

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/houssem/cmbs/store"
)

// Operation label values.
const (
	OpGet         = "get"
	OpGetMany     = "get_many"
	OpPut         = "put"
	OpDelete      = "delete"
	OpList        = "list"
	OpWrite       = "write"
	OpScan        = "scan"
	OpWatch       = "watch"
	OpFind        = "find"
	OpEnsureIndex = "ensure_index"
	OpClose       = "close"
)

// allOps lists every operation label, so their series exist at zero
// before the first call.
func allOps() []string {
	return []string{OpGet, OpGetMany, OpPut, OpDelete, OpWrite, OpList, OpScan, OpWatch, OpFind, OpEnsureIndex, OpClose}
}

// Metrics holds the store collectors. One Metrics serves every store
// wrapped with it; the backend label tells them apart.
type Metrics struct {
	operations *prometheus.CounterVec
	errors     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// NewMetrics creates the store collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cmbs_store_operations_total",
			Help: "Store operations made, by operation and backend.",
		}, []string{"op", "backend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cmbs_store_errors_total",
			Help: "Store operations that failed, by operation and backend. Not found and conflict are answers, not failures, and are not counted.",
		}, []string{"op", "backend"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cmbs_store_operation_duration_seconds",
			Help:    "Time store operations took, by operation and backend.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op", "backend"}),
	}
	for _, c := range []prometheus.Collector{m.operations, m.errors, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("instrumented: register store metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one operation that started at start and ended with err.
func (m *Metrics) observe(op, backend string, start time.Time, err error) {
	m.operations.WithLabelValues(op, backend).Inc()
	m.duration.WithLabelValues(op, backend).Observe(time.Since(start).Seconds())
	if isFailure(err) {
		m.errors.WithLabelValues(op, backend).Inc()
	}
}

// isFailure tells failures from the answers callers expect: a missing
// document and a stale revision are how the store reports normal races.
func isFailure(err error) bool {
	return err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict)
}

// Wrap returns inner with every call counted and timed under the backend
// label (e.g. "bolt", "couch"). The result implements store.Finder and
// store.Indexer exactly when inner does.
func Wrap(inner store.Store, backend string, m *Metrics) store.Store {
	_, finds := inner.(store.Finder)
	_, indexes := inner.(store.Indexer)
	for _, op := range allOps() {
		// An ability the backend lacks never shows up as an operation:
		// Find then scans through List, EnsureIndex does nothing.
		if op == OpFind && !finds || op == OpEnsureIndex && !indexes {
			continue
		}
		m.operations.WithLabelValues(op, backend)
		m.errors.WithLabelValues(op, backend)
		m.duration.WithLabelValues(op, backend)
	}
	s := &Store{inner: inner, backend: backend, m: m}
	switch {
	case finds && indexes:
		return finderIndexer{s}
	case finds:
		return finder{s}
	case indexes:
		return indexer{s}
	default:
		return s
	}
}

// Unwrap returns the store a value from Wrap decorates, or s itself when it
// is not one.
func Unwrap(s store.Store) store.Store {
	if u, ok := s.(interface{ Unwrap() store.Store }); ok {
		return u.Unwrap()
	}
	return s
}

// Store is the decorator for backends with neither Finder nor Indexer;
// the other combinations embed it.
type Store struct {
	inner   store.Store
	backend string
	m       *Metrics
}

// Unwrap returns the decorated store.
func (s *Store) Unwrap() store.Store { return s.inner }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (store.Doc, error) {
	start := time.Now()
	doc, err := s.inner.Get(ctx, id)
	s.m.observe(OpGet, s.backend, start, err)
	return doc, err
}

// GetMany implements store.MultiGetter: natively when the backend does,
// one Get at a time otherwise (see store.GetMany).
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]store.Doc, error) {
	start := time.Now()
	docs, err := store.GetMany(ctx, s.inner, ids)
	s.m.observe(OpGetMany, s.backend, start, err)
	return docs, err
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, doc store.Doc) (string, error) {
	start := time.Now()
	rev, err := s.inner.Put(ctx, doc)
	s.m.observe(OpPut, s.backend, start, err)
	return rev, err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, id, rev string) error {
	start := time.Now()
	err := s.inner.Delete(ctx, id, rev)
	s.m.observe(OpDelete, s.backend, start, err)
	return err
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Doc, error) {
	start := time.Now()
	docs, err := s.inner.List(ctx, prefix)
	s.m.observe(OpList, s.backend, start, err)
	return docs, err
}

// Write implements store.Store.
func (s *Store) Write(ctx context.Context, writes []store.Write) ([]string, error) {
	start := time.Now()
	revs, err := s.inner.Write(ctx, writes)
	s.m.observe(OpWrite, s.backend, start, err)
	return revs, err
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, prefix, after string, limit int) ([]store.Doc, error) {
	start := time.Now()
	docs, err := s.inner.Scan(ctx, prefix, after, limit)
	s.m.observe(OpScan, s.backend, start, err)
	return docs, err
}

// Watch implements store.Store. Only opening the feed is timed; the feed
// itself lives as long as ctx.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	start := time.Now()
	ch, err := s.inner.Watch(ctx)
	s.m.observe(OpWatch, s.backend, start, err)
	return ch, err
}

// WatchSince implements store.Resumer when the backend does, and fails
// with errors.ErrUnsupported otherwise (see store.WatchSince). Only
// opening the feed is timed, as a Watch.
func (s *Store) WatchSince(ctx context.Context, since string) (<-chan store.Change, error) {
	start := time.Now()
	ch, err := store.WatchSince(ctx, s.inner, since)
	s.m.observe(OpWatch, s.backend, start, err)
	return ch, err
}

// Close implements store.Store.
func (s *Store) Close() error {
	start := time.Now()
	err := s.inner.Close()
	s.m.observe(OpClose, s.backend, start, err)
	return err
}

func (s *Store) find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	start := time.Now()
	docs, err := s.inner.(store.Finder).Find(ctx, q)
	s.m.observe(OpFind, s.backend, start, err)
	return docs, err
}

func (s *Store) ensureIndex(ctx context.Context, idx store.Index) error {
	start := time.Now()
	err := s.inner.(store.Indexer).EnsureIndex(ctx, idx)
	s.m.observe(OpEnsureIndex, s.backend, start, err)
	return err
}

// finder decorates a backend with native queries.
type finder struct{ *Store }

func (s finder) Find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	return s.find(ctx, q)
}

// indexer decorates a backend that builds indexes.
type indexer struct{ *Store }

func (s indexer) EnsureIndex(ctx context.Context, idx store.Index) error {
	return s.ensureIndex(ctx, idx)
}

// finderIndexer decorates a backend with both.
type finderIndexer struct{ *Store }

func (s finderIndexer) Find(ctx context.Context, q store.Query) ([]store.Doc, error) {
	return s.find(ctx, q)
}

func (s finderIndexer) EnsureIndex(ctx context.Context, idx store.Index) error {
	return s.ensureIndex(ctx, idx)
}
