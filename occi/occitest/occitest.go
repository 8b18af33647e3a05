// Package occitest runs plain OCCI servers inside a test's process and
// speaks to them over real HTTP: Serve brings up an occi.Server on a store,
// Backends opens stores of every kind (bbolt in a TempDir, CouchDB on
// couchtest's pouchdb-server), and Client's helpers send JSON requests.
//
// It knows nothing of the broker or the ZeroMQ layers, so occi's own tests
// can use it without depending on them; broker/brokertest builds its
// members on it. It is for tests only; production code never imports it.
package occitest

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// Quiet returns a logger that discards everything, so a test's output
// shows only its failures.
func Quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// OpenBolt opens a bbolt store in a fresh t.TempDir(), closed when t ends
// unless a server that owns it closed it first.
func OpenBolt(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { closeStore(t, st) })
	return st
}

// OpenCouch opens a CouchDB store on a database of its own on couchtest's
// shared pouchdb-server, closed when t ends unless a server that owns it
// closed it first.
func OpenCouch(t testing.TB) store.Store {
	t.Helper()
	st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
	if err != nil {
		t.Fatalf("open couch: %v", err)
	}
	t.Cleanup(func() { closeStore(t, st) })
	return st
}

// closeStore closes st at the end of a test; a store already closed by the
// server that owned it (ServerOptions.OwnStore) is not an error.
func closeStore(t testing.TB, st store.Store) {
	if err := st.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("close the test's store: %v", err)
	}
}

// Backend is a kind of store a test can run on.
type Backend struct {
	Name string
	// Open returns a fresh, empty store, closed when t ends.
	Open func(t testing.TB) store.Store
}

// Backends lists every kind of store: embedded bbolt (OpenBolt), and
// CouchDB (OpenCouch). A package whose tests open the couch backend
// should stop couchtest's shared server from its TestMain with
// couchtest.Main.
func Backends() []Backend {
	return []Backend{
		{Name: "bolt", Open: OpenBolt},
		{Name: "couch", Open: OpenCouch},
	}
}
