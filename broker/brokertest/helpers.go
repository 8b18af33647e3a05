package brokertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi/auth"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// Quiet returns a logger that discards everything, as occitest.Quiet.
func Quiet() *logrus.Logger { return occitest.Quiet() }

// OpenBolt opens a bbolt store in a fresh t.TempDir(), closed when t ends,
// as occitest.OpenBolt.
func OpenBolt(t testing.TB) store.Store {
	t.Helper()
	return occitest.OpenBolt(t)
}

// Backend is a kind of store a test can run on.
type Backend = occitest.Backend

// Backends lists every kind of store, as occitest.Backends. A package
// whose tests open the couch backend should stop couchtest's shared server
// from its TestMain with couchtest.Main.
func Backends() []Backend { return occitest.Backends() }

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
