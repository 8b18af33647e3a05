package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
)

// BenchConfig describes a backend to Bench.
type BenchConfig struct {
	// Open returns a new, empty store; Bench closes it.
	Open func(tb testing.TB) store.Store
	// Docs is how many documents the Get benchmarks read among.
	Docs int
	// Parallelism multiplies GOMAXPROCS for the parallel benchmarks.
	Parallelism int
	// Measure, when set, is called before a Put benchmark's loop and the
	// function it returns after it, to report backend costs (pages written).
	Measure func(b *testing.B, s store.Store) func()
}

// benchBody is the size and shape of an OCCI entity document.
var benchBody = json.RawMessage(`{"kind":"compute","attributes":{"occi.core.id":"x","occi.compute.cores":2,"occi.compute.hostname":"node-1"},"mixins":["a","b"]}`)

// Bench runs the same Put and Get benchmarks, one writer or reader and
// many, against a backend, so backends compare row by row.
func Bench(b *testing.B, cfg BenchConfig) {
	ctx := context.Background()
	b.Run("Put", func(b *testing.B) {
		s := cfg.Open(b)
		defer cmbstest.NoError(b, s.Close)
		if cfg.Measure != nil {
			defer cfg.Measure(b, s)()
		}
		i := 0
		for b.Loop() {
			if _, err := s.Put(ctx, store.Doc{ID: fmt.Sprintf("doc/%09d", i), Body: benchBody}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("PutParallel", func(b *testing.B) {
		s := cfg.Open(b)
		defer cmbstest.NoError(b, s.Close)
		var n atomic.Int64
		b.SetParallelism(cfg.Parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Put(ctx, store.Doc{ID: fmt.Sprintf("doc/%09d", n.Add(1)), Body: benchBody}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Get", func(b *testing.B) {
		s := fill(b, cfg)
		defer cmbstest.NoError(b, s.Close)
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, fmt.Sprintf("doc/%09d", i%cfg.Docs)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s := fill(b, cfg)
		defer cmbstest.NoError(b, s.Close)
		var n atomic.Int64
		b.SetParallelism(cfg.Parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, fmt.Sprintf("doc/%09d", n.Add(1)%int64(cfg.Docs))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// fill writes cfg.Docs documents from several goroutines, so that backends
// with group commit set up quickly.
func fill(b *testing.B, cfg BenchConfig) store.Store {
	s := cfg.Open(b)
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < cfg.Docs; i += workers {
				if _, err := s.Put(context.Background(), store.Doc{ID: fmt.Sprintf("doc/%09d", i), Body: benchBody}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return s
}
