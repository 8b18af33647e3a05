package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }

// ttl is short, so takeovers happen within the test; the rules hold
// whatever its length.
const ttl = 600 * time.Millisecond

// backends opens a fresh store of each kind; servers sharing one store
// share the value, as servers share a CouchDB database.
func backends(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"bolt": func(t *testing.T) store.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"couch": func(t *testing.T) store.Store {
			s, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

// keeper starts a keeper named holder on st, closed when the test ends
// unless the test closed or halted it.
func keeper(t *testing.T, st store.Store, holder string) *Keeper {
	t.Helper()
	k, err := New(Config{Store: st, Holder: holder, TTL: ttl, Flush: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func acquire(t *testing.T, k *Keeper, name string) bool {
	t.Helper()
	ok, err := k.Acquire(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: Acquire(%s): %v", k.Holder(), name, err)
	}
	return ok
}

func TestLeases(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("OneHolderAmongMany", func(t *testing.T) { testOneHolder(t, open(t)) })
			t.Run("RenewedWhileHeld", func(t *testing.T) { testRenewed(t, open(t)) })
			t.Run("TakenOverAfterACrash", func(t *testing.T) { testTakeover(t, open(t)) })
			t.Run("ReleasedAtClose", func(t *testing.T) { testRelease(t, open(t)) })
			t.Run("LostAfterAPause", func(t *testing.T) { testLost(t, open(t)) })
			t.Run("IdleReleased", func(t *testing.T) { testIdle(t, open(t)) })
		})
	}
}

// testOneHolder races five servers for each of several leases: exactly
// one wins each, and keeps it.
func testOneHolder(t *testing.T, st store.Store) {
	var ks []*Keeper
	for i := range 5 {
		ks = append(ks, keeper(t, st, fmt.Sprintf("server-%d", i)))
	}
	for _, name := range []string{"a", "outbox/l2/member-b/", "notify/cmbs/subscription/s1"} {
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for _, k := range ks {
			wg.Go(func() {
				if acquire(t, k, name) {
					mu.Lock()
					winners = append(winners, k.Holder())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("lease %s held by %v, want exactly one server", name, winners)
		}
		for _, k := range ks {
			if got := acquire(t, k, name); got != (k.Holder() == winners[0]) {
				t.Errorf("lease %s: %s Acquire = %v after %s won it", name, k.Holder(), got, winners[0])
			}
		}
	}
}

// testRenewed holds a lease for several times its time to live: the
// renewals keep every other server out.
func testRenewed(t *testing.T, st store.Store) {
	a, b := keeper(t, st, "a"), keeper(t, st, "b")
	if !acquire(t, a, "l") {
		t.Fatal("a did not take a free lease")
	}
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(ttl / 6) {
		if acquire(t, b, "l") {
			t.Fatal("b took a lease a renews")
		}
		if !a.Held("l") {
			t.Fatal("a lost a lease it renews")
		}
	}
}

// testTakeover crashes the holder (its renewals stop, nothing is
// released): another server takes the lease over once it has seen it
// unrenewed for the time to live, not before, and finds the data the
// holder kept with it.
func testTakeover(t *testing.T, st store.Store) {
	a, b := keeper(t, st, "a"), keeper(t, st, "b")
	if !acquire(t, a, "l") {
		t.Fatal("a did not take a free lease")
	}
	a.SetData("l", json.RawMessage(`{"seq":"42"}`))
	waitFor(t, "a's data written", func() bool {
		d, err := st.Get(context.Background(), Prefix+"l")
		return err == nil && json.Valid(d.Body) && string(mustDoc(t, d).Data) == `{"seq":"42"}`
	})
	if acquire(t, b, "l") {
		t.Fatal("b took a held lease")
	}
	a.halt()
	crashed := time.Now()
	waitFor(t, "b takes the lease over", func() bool { return acquire(t, b, "l") })
	if took := time.Since(crashed); took < ttl-ttl/10 {
		t.Errorf("b took the lease %v after a's last renewal could have been, before its time to live %v", took, ttl)
	}
	if got := string(b.Data("l")); got != `{"seq":"42"}` {
		t.Errorf("b found data %s, want a's", got)
	}
	if a.Held("l") {
		t.Error("a, crashed, still counts itself the holder")
	}
}

// testRelease closes the holder: the lease is free at once, with its data.
func testRelease(t *testing.T, st store.Store) {
	a, err := New(Config{Store: st, Holder: "a", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	b := keeper(t, st, "b")
	if !acquire(t, a, "l") {
		t.Fatal("a did not take a free lease")
	}
	a.SetData("l", json.RawMessage(`"checkpoint"`))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, b, "l") {
		t.Fatal("b did not take a released lease at once")
	}
	if got := string(b.Data("l")); got != `"checkpoint"` {
		t.Errorf("b found data %s, want what a kept", got)
	}
}

// testLost pauses the holder past its lease (no renewals, as in a long
// GC or a stopped VM): another server takes it over, and the holder, when
// it wakes, knows it lost it.
func testLost(t *testing.T, st store.Store) {
	a, err := New(Config{Store: st, Holder: "a", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	// Not started: a holds, but never renews.
	b := keeper(t, st, "b")
	if !acquire(t, a, "l") {
		t.Fatal("a did not take a free lease")
	}
	waitFor(t, "b takes the lease over", func() bool { return acquire(t, b, "l") })
	if a.Held("l") || acquire(t, a, "l") {
		t.Error("a still holds a lease b took over")
	}
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(ttl / 6) {
		if !b.Held("l") {
			t.Fatal("b lost the lease to a paused server")
		}
	}
}

// testIdle lets a lease go that nobody asks for.
func testIdle(t *testing.T, st store.Store) {
	a, err := New(Config{Store: st, Holder: "a", TTL: time.Hour, Flush: 20 * time.Millisecond, Idle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b := keeper(t, st, "b")
	if !acquire(t, a, "l") {
		t.Fatal("a did not take a free lease")
	}
	waitFor(t, "the idle lease released", func() bool { return acquire(t, b, "l") })
}

func mustDoc(t *testing.T, d store.Doc) doc {
	t.Helper()
	var out doc
	if err := json.Unmarshal(d.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
