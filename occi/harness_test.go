package occi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// forEachStore runs fn on a fresh store of each kind, in parallel; every
// server test runs on both.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for _, b := range occitest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.Open(t))
		})
	}
}

// env is one running server with a client speaking to it.
type env struct {
	*occitest.Server
}

func newEnv(t testing.TB, st store.Store, opts occi.Options) *env {
	t.Helper()
	return &env{occitest.Serve(t, occitest.ServerOptions{Store: st, OCCI: opts})}
}

// example reads a request file from examples/.
func example(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatalf("read example: %v", err)
	}
	return string(data)
}

// get walks a decoded JSON value by keys and indexes ("resources.0.id").
func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}
