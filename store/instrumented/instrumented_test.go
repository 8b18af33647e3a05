package instrumented_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
	"github.com/houssem/cmbs/store/instrumented"
	"github.com/houssem/cmbs/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

func openBolt(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openCouch(t *testing.T) store.Store {
	t.Helper()
	st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// plain hides every optional ability of a real store, so the decorator is
// exercised over a backend that Find must scan.
type plain struct{ store.Store }

// indexOnly exposes a real store's Indexer but not its Finder.
type indexOnly struct{ store.Store }

func (s indexOnly) EnsureIndex(ctx context.Context, idx store.Index) error {
	return s.Store.(store.Indexer).EnsureIndex(ctx, idx)
}

func newMetrics(t *testing.T) (*prometheus.Registry, *instrumented.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := instrumented.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name    string
		backend string
		open    func(t *testing.T) store.Store
	}{
		{"bolt", "bolt", openBolt},
		{"bolt without Finder", "bolt", func(t *testing.T) store.Store { return plain{openBolt(t)} }},
		{"couch", "couch", openCouch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := newMetrics(t)
			storetest.Run(t, func(t *testing.T) store.Store {
				return instrumented.Wrap(tt.open(t), tt.backend, m)
			})
		})
	}
}

func TestAbilitiesFollowTheInnerStore(t *testing.T) {
	tests := []struct {
		name            string
		open            func(t *testing.T) store.Store
		finder, indexer bool
	}{
		{name: "bolt", open: openBolt, finder: true, indexer: true},
		{name: "neither", open: func(t *testing.T) store.Store { return plain{openBolt(t)} }},
		{name: "couch", open: openCouch, finder: true, indexer: true},
		{name: "indexer only", open: func(t *testing.T) store.Store { return indexOnly{openCouch(t)} }, indexer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, m := newMetrics(t)
			inner := tt.open(t)
			s := instrumented.Wrap(inner, "x", m)
			t.Cleanup(func() { cmbstest.NoError(t, s.Close) })
			if _, ok := s.(store.Finder); ok != tt.finder {
				t.Errorf("Finder = %v, want %v", ok, tt.finder)
			}
			if _, ok := s.(store.Indexer); ok != tt.indexer {
				t.Errorf("Indexer = %v, want %v", ok, tt.indexer)
			}
			if got := instrumented.Unwrap(s); got != inner {
				t.Errorf("Unwrap = %T, want the inner store", got)
			}
			ctx := context.Background()
			if err := store.EnsureIndex(ctx, s, store.Index{Name: "by-kind", Fields: [][]string{{"kind"}}}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"/a/1", "/a/2", "/b/1"} {
				if _, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(`{"kind":"k"}`)}); err != nil {
					t.Fatal(err)
				}
			}
			docs, err := store.Find(ctx, s, store.Query{Prefix: "/a/", Where: []store.Cond{{Field: []string{"kind"}, Op: store.Eq, Value: "k"}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != 2 || docs[0].ID != "/a/1" || docs[1].ID != "/a/2" {
				t.Fatalf("Find = %v, want /a/1 and /a/2", docs)
			}
			// A backend without Finder is scanned through List; the scan is
			// then what the metrics see, and no find series exists. The same
			// goes for EnsureIndex, a no-op without Indexer.
			wantFind, wantList := 1.0, 0.0
			if !tt.finder {
				wantFind, wantList = -1, 1
			}
			wantIndex := -1.0
			if tt.indexer {
				wantIndex = 1
			}
			for op, want := range map[string]float64{
				instrumented.OpFind: wantFind, instrumented.OpList: wantList,
				instrumented.OpEnsureIndex: wantIndex, instrumented.OpPut: 3,
			} {
				if got := counter(t, reg, "cmbs_store_operations_total", op, "x"); got != want {
					t.Errorf("operations{op=%s} = %v, want %v", op, got, want)
				}
			}
		})
	}
}

func TestErrorsAreFailuresOnly(t *testing.T) {
	reg, m := newMetrics(t)
	s := instrumented.Wrap(openBolt(t), "bolt", m)
	ctx := context.Background()
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get = %v, want not found", err)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "d", Body: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "d", Body: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create = %v, want conflict", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "e", Body: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Put after Close = %v, want closed", err)
	}
	tests := []struct {
		metric, op string
		want       float64
	}{
		{"cmbs_store_operations_total", instrumented.OpGet, 1},
		{"cmbs_store_operations_total", instrumented.OpPut, 3},
		{"cmbs_store_errors_total", instrumented.OpGet, 0},
		{"cmbs_store_errors_total", instrumented.OpPut, 1},
		{"cmbs_store_errors_total", instrumented.OpDelete, 0},
	}
	for _, tt := range tests {
		if got := counter(t, reg, tt.metric, tt.op, "bolt"); got != tt.want {
			t.Errorf("%s{op=%s} = %v, want %v", tt.metric, tt.op, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "cmbs_store_operation_duration_seconds"); n == 0 {
		t.Error("no latency histogram series")
	}
}

// counter reads one counter series from reg, -1 when there is none.
func counter(t *testing.T, reg *prometheus.Registry, name, op, backend string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == op && labels["backend"] == backend {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return -1
}
