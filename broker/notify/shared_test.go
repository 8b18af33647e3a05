package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
	"github.com/houssem/cmbs/store/lease"
)

// TestEventIDsAreDerived: two servers alone on one store (no leases) both
// call a subscription back for one change, and both callbacks carry the
// same event id: it is derived from the change, not drawn at random.
func TestEventIDsAreDerived(t *testing.T) {
	st := brokertest.OpenBolt(t)
	e1, e2 := newEnv(t, st, notify.Config{}), newEnv(t, st, notify.Config{})
	rcv := newReceiver(t, "", 0)
	loc := e1.subscribe("twice", map[string]any{"callback": rcv.url, "events": []any{"created", "updated"}, "location": "/resource/"})
	cmbstest.Eventually(t, "the second server running the subscription", func() bool {
		_, ok := e2.Notifier.Subscription(loc)
		return ok
	})
	e1.resource("r1", "one")
	e2.retitle("r1", "uno")
	cmbstest.Eventually(t, "four callbacks", func() bool { return len(rcv.tries()) == 4 })
	ids := map[string]int{}
	for _, id := range rcv.tries() {
		ids[id]++
	}
	if len(ids) != 2 {
		t.Errorf("callbacks carried ids %v, want one id per change, from both servers", ids)
	}
	rcv.check()
}

// openCouch opens a fresh CouchDB database for the test.
func openCouch(t *testing.T) store.Store {
	t.Helper()
	st, err := couch.Open(context.Background(), couchtest.NewDBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// keeper starts a lease keeper for holder on st, closed when t ends.
func keeper(t *testing.T, st store.Store, holder string) *lease.Keeper {
	t.Helper()
	k, err := lease.New(lease.Config{Store: st, Holder: holder, TTL: time.Second, Flush: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// TestSharedSubscription runs two servers sharing one CouchDB database and
// one subscription: the lease holder alone calls back, each change once,
// and so does the other server once the holder stops and releases its
// lease, from where the holder had got to. A broker event the non-holder
// emits reaches the callback through the store.
func TestSharedSubscription(t *testing.T) {
	st := openCouch(t)
	ks := []*lease.Keeper{keeper(t, st, "one"), keeper(t, st, "two")}
	envs := []*env{newEnv(t, st, notify.Config{Leases: ks[0]}), newEnv(t, st, notify.Config{Leases: ks[1]})}
	rcv := newReceiver(t, "", 0)
	envs[0].Must(http.StatusCreated, "POST", notify.Location, subscriptionBody("shared", map[string]any{
		"callback": rcv.url, "events": []any{"created", "message_received"}, "location": "/resource/"}))
	name := "notify" + notify.Location + "shared"
	holder := -1
	cmbstest.Eventually(t, "a server holding the subscription", func() bool {
		for i, k := range ks {
			if k.Held(name) {
				holder = i
			}
		}
		return holder >= 0
	})
	other := 1 - holder

	for i := range 6 {
		envs[i%2].resource(fmt.Sprintf("r%d", i), "r")
	}
	// A broker event on the server that does not hold the subscription.
	envs[other].Notifier.Emit(broker.Event{Type: broker.EventMessageReceived, Time: time.Now().UTC(),
		Location: "/resource/r0", Member: "member-a", From: "member-b"})
	cmbstest.Eventually(t, "seven callbacks", func() bool { return len(rcv.tries()) >= 7 })

	envs[holder].close()
	if err := ks[holder].Close(); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < 12; i++ {
		envs[other].resource(fmt.Sprintf("r%d", i), "r")
	}
	cmbstest.Eventually(t, "thirteen callbacks", func() bool { return len(rcv.tries()) >= 13 })
	time.Sleep(time.Second)

	seen := map[string]int{}
	for _, id := range rcv.tries() {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s called back %d times", id, n)
		}
	}
	byLoc := map[string][]string{}
	for _, ev := range rcv.accepted() {
		byLoc[ev.Location] = append(byLoc[ev.Location], ev.Type)
	}
	for i := range 12 {
		loc := fmt.Sprintf("/resource/r%d", i)
		want := "created"
		if i == 0 {
			want = "created,message_received"
		}
		if got := strings.Join(byLoc[loc], ","); got != want && !(i == 0 && got == "message_received,created") {
			t.Errorf("%s: events %s, want %s", loc, got, want)
		}
	}
	if !ks[other].Held(name) {
		t.Error("the other server does not hold the subscription after the holder stopped")
	}
	rcv.check()
}

// TestSharedNeedsResumer: sharing subscriptions needs a change feed that
// resumes from a position; a notifier refuses to start without one.
func TestSharedNeedsResumer(t *testing.T) {
	st := brokertest.OpenBolt(t)
	n, err := notify.New(notify.Config{Store: st, Leases: keeper(t, st, "one")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Errorf("Start on a store whose feed cannot resume = %v, want an error saying so", err)
	}
	_ = n.Close() // started or not, it was built
}
