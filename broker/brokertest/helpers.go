package brokertest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi/auth"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// Patience is how long WaitFor, and so Send, wait before failing a test:
// long enough for a loaded machine running the race detector.
const Patience = 20 * time.Second

// Quiet returns a logger that discards everything, so a test's output
// shows only its failures.
func Quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// OpenBolt opens a bbolt store in a fresh t.TempDir(), closed when t ends.
func OpenBolt(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Backend is a kind of store a test can run on.
type Backend struct {
	Name string
	// Open returns a fresh, empty store, closed when t ends.
	Open func(t testing.TB) store.Store
}

// Backends lists every kind of store: embedded bbolt, and CouchDB as a
// database of its own on couchtest's shared pouchdb-server. A package
// whose tests open the couch backend should stop that server from its
// TestMain with couchtest.Main.
func Backends() []Backend {
	return []Backend{
		{Name: "bolt", Open: OpenBolt},
		{Name: "couch", Open: func(t testing.TB) store.Store {
			t.Helper()
			st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
			if err != nil {
				t.Fatalf("open couch: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	}
}

// FreeSockets returns a tcp:// endpoint on a free loopback port for every
// layer.
func FreeSockets(t testing.TB) map[broker.Layer]string {
	t.Helper()
	out := map[broker.Layer]string{}
	for _, l := range broker.Layers() {
		out[l] = layertest.FreeEndpoint(t)
	}
	return out
}

// WaitFor polls cond until it holds, failing t when it still does not
// after Patience; what says what was awaited.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UsersFile writes a users file in t.TempDir() holding user with password
// pw and returns its path. The password is hashed at bcrypt's lowest cost:
// the file is what auth.Load reads, and tests stay quick.
func UsersFile(t testing.TB, user, pw string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Users loads a UsersFile, for the authentication middleware.
func Users(t testing.TB, user, pw string) *auth.Users {
	t.Helper()
	users, err := auth.Load(UsersFile(t, user, pw))
	if err != nil {
		t.Fatal(err)
	}
	return users
}
