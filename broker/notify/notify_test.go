package notify_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
)

// TestCallbackEvents runs entity changes through both stores' change feeds
// to signed callbacks: each event once, in order per entity, with deletes
// carrying the kind, and subscriptions' own writes not notified.
func TestCallbackEvents(t *testing.T) {
	// The change feed is in process for bolt, CouchDB's continuous
	// _changes for couch.
	for _, b := range brokertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.Open(t), notify.Config{})
			all := newReceiver(t, "s3cret-key", 0)
			deletes := newReceiver(t, "", 0)
			allLoc := e.subscribe("all", map[string]any{"callback": all.url, "secret": "s3cret-key", "location": "/resource/"})
			e.subscribe("deletes", map[string]any{"callback": deletes.url, "events": []any{"deleted"}, "kind": occi.ResourceKind})

			e.resource("r1", "one")
			e.retitle("r1", "one, again")
			e.resource("r2", "two")
			e.retitle("r1", "one, third time")
			e.Must(http.StatusOK, "DELETE", "/resource/r1", nil)
			e.retitle("r2", "two, again")
			// A sentinel: once it is in, everything before it is too.
			e.resource("end", "end")
			all.waitEvent("the sentinel", is(notify.Created, "/resource/end"))
			deletes.waitEvent("the delete", is(notify.Deleted, "/resource/r1"))

			got := all.accepted()
			perEntity := map[string][]string{}
			ids := map[string]bool{}
			for _, ev := range got {
				perEntity[ev.Location] = append(perEntity[ev.Location], ev.Type)
				if ids[ev.ID] {
					t.Errorf("event %s arrived twice", ev.ID)
				}
				ids[ev.ID] = true
				if ev.Subscription != allLoc || ev.Time.IsZero() || ev.Kind != occi.ResourceKind {
					t.Errorf("event fields: %+v", ev)
				}
				if ev.Type != notify.Deleted && (ev.Entity == nil || ev.Entity.Location != ev.Location) {
					t.Errorf("%s has no entity", ev)
				}
			}
			want := map[string][]string{
				"/resource/r1":  {"created", "updated", "updated", "deleted"},
				"/resource/r2":  {"created", "updated"},
				"/resource/end": {"created"},
			}
			if !reflect.DeepEqual(perEntity, want) {
				t.Errorf("events per entity %v, want %v (all: %v)", perEntity, want, summary(got))
			}
			if d := deletes.accepted(); len(d) != 1 || d[0].Entity != nil || d[0].Kind != occi.ResourceKind {
				t.Errorf("deletes got %v", summary(d))
			}
			all.check()
			deletes.check()

			// Delivery counters reach the stored attributes.
			cmbstest.Eventually(t, "counters stored", func() bool {
				a := e.subAttrs(allLoc)
				return a["delivered"] == float64(len(got)) && a["state"] == notify.StateActive
			})
			if a := e.subAttrs(allLoc); a["secret"] != "********" {
				t.Errorf("secret rendered as %v", a["secret"])
			}
		})
	}
}

// TestRetries has the receiver fail three times: the event is retried with
// the same id, accepted once, and the subscription stays active.
func TestRetries(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{Retry: notify.Retry{Attempts: 5, Initial: 5 * time.Millisecond, Max: 40 * time.Millisecond}})
	r := newReceiver(t, "k", 3)
	loc := e.subscribe("retried", map[string]any{"callback": r.url, "secret": "k", "events": []any{"created"}})
	e.resource("x", "x")
	ev := r.waitEvent("the event after retries", is(notify.Created, "/resource/x"))
	tries := r.tries()
	if len(tries) != 4 {
		t.Fatalf("%d requests, want 4 (3 failures and a success): %v", len(tries), tries)
	}
	for _, id := range tries {
		if id != ev.ID {
			t.Errorf("a retry carried id %s, want %s", id, ev.ID)
		}
	}
	if n := len(r.accepted()); n != 1 {
		t.Errorf("accepted %d times", n)
	}
	// The receiver answers before the worker counts the success.
	cmbstest.Eventually(t, "the success counted", func() bool {
		st, _ := e.Notifier.Subscription(loc)
		return st.Delivered == 1
	})
	if st, _ := e.Notifier.Subscription(loc); st.State != notify.StateActive || st.Failed != 0 {
		t.Errorf("status %v", st)
	}
	r.check()
}

// TestFailing gives up on a receiver that always fails, marks the
// subscription failing, and recovers it by an update and by a success.
func TestFailing(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{Retry: notify.Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}})
	r := newReceiver(t, "", -1)
	loc := e.subscribe("dead", map[string]any{"callback": r.url, "events": []any{"created"}})
	e.resource("a", "a")
	cmbstest.Eventually(t, "state failing", func() bool {
		a := e.subAttrs(loc)
		return a["state"] == notify.StateFailing && a["failed"] == float64(1)
	})
	a := e.subAttrs(loc)
	if msg, _ := a["last_error"].(string); !strings.Contains(msg, "500") {
		t.Errorf("last_error %q does not give the status", msg)
	}
	if n := len(r.tries()); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}

	// Failing, the next event gets one try; a success makes it active.
	r.setFail(0)
	e.resource("b", "b")
	r.waitEvent("b after recovery", is(notify.Created, "/resource/b"))
	cmbstest.Eventually(t, "active again", func() bool { return e.subAttrs(loc)["state"] == notify.StateActive })

	// Failing again, an update (here, a new callback) makes it active at
	// once, and events go to the new callback.
	r.setFail(-1)
	e.resource("c", "c")
	cmbstest.Eventually(t, "failing again", func() bool { return e.subAttrs(loc)["state"] == notify.StateFailing })
	fixed := newReceiver(t, "", 0)
	e.Must(http.StatusOK, "POST", loc, subscriptionBody("dead", map[string]any{"callback": fixed.url}))
	if got := e.subAttrs(loc)["state"]; got != notify.StateActive {
		t.Errorf("state after the update %v", got)
	}
	cmbstest.Eventually(t, "the worker sees the update", func() bool {
		st, _ := e.Notifier.Subscription(loc)
		return st.State == notify.StateActive
	})
	e.resource("d", "d")
	fixed.waitEvent("d at the new callback", is(notify.Created, "/resource/d"))
	if a := e.subAttrs(loc); a["failed"] != float64(2) || a["delivered"] == float64(0) {
		t.Errorf("counters lost in the update: %v", a)
	}
	r.check()
}

// TestStops checks an expired and a deleted subscription receive nothing
// more, against a sentinel subscription that does.
func TestStops(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{})
	sentinel := newReceiver(t, "", 0)
	expiring := newReceiver(t, "", 0)
	deleted := newReceiver(t, "", 0)
	e.subscribe("sentinel", map[string]any{"callback": sentinel.url, "events": []any{"created"}})
	expLoc := e.subscribe("expiring", map[string]any{"callback": expiring.url, "events": []any{"created"},
		"expires": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)})
	delLoc := e.subscribe("deleted", map[string]any{"callback": deleted.url, "events": []any{"created"}})

	e.resource("before", "before")
	for _, r := range []*receiver{expiring, deleted, sentinel} {
		r.waitEvent("before", is(notify.Created, "/resource/before"))
	}
	cmbstest.Eventually(t, "expiry", func() bool { return e.subAttrs(expLoc)["state"] == notify.StateExpired })
	e.Must(http.StatusOK, "DELETE", delLoc, nil)
	if _, running := e.Notifier.Subscription(delLoc); running {
		t.Errorf("deleted subscription still running")
	}

	e.resource("after", "after")
	sentinel.waitEvent("after", is(notify.Created, "/resource/after"))
	for name, r := range map[string]*receiver{"expired": expiring, "deleted": deleted} {
		if got := summary(r.accepted()); !reflect.DeepEqual(got, []string{"created /resource/before"}) {
			t.Errorf("%s subscription received %v", name, got)
		}
	}
	// Extending an expired subscription revives it.
	e.Must(http.StatusOK, "POST", expLoc, subscriptionBody("expiring", map[string]any{
		"expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}))
	cmbstest.Eventually(t, "revived", func() bool {
		st, _ := e.Notifier.Subscription(expLoc)
		return st.State == notify.StateActive
	})
	e.resource("revived", "revived")
	expiring.waitEvent("revived", is(notify.Created, "/resource/revived"))
}

// TestSubscriptionResource checks what the provider accepts and shows.
func TestSubscriptionResource(t *testing.T) {
	e := newEnv(t, brokertest.OpenBolt(t), notify.Config{})
	r := newReceiver(t, "first-secret", 0)
	for _, tc := range []struct {
		name  string
		attrs map[string]any
		field string
	}{
		{"no callback", map[string]any{"events": []any{"created"}}, "cmbs.subscription.callback"},
		{"not http", map[string]any{"callback": "ftp://example.org/x"}, "cmbs.subscription.callback"},
		{"relative", map[string]any{"callback": "/hook"}, "cmbs.subscription.callback"},
		{"unknown event", map[string]any{"callback": r.url, "events": []any{"created", "exploded"}}, "cmbs.subscription.events"},
		{"events not strings", map[string]any{"callback": r.url, "events": []any{1}}, "cmbs.subscription.events"},
		{"bad expires", map[string]any{"callback": r.url, "expires": "tomorrow"}, "cmbs.subscription.expires"},
		{"past expires", map[string]any{"callback": r.url, "expires": "2001-01-01T00:00:00Z"}, "cmbs.subscription.expires"},
		{"bad location", map[string]any{"callback": r.url, "location": "resource/"}, "cmbs.subscription.location"},
		{"bad kind", map[string]any{"callback": r.url, "kind": "resource"}, "cmbs.subscription.kind"},
		{"secret is the mask", map[string]any{"callback": r.url, "secret": "********"}, "cmbs.subscription.secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := e.Do("POST", notify.Location, subscriptionBody("bad", tc.attrs))
			if status != http.StatusBadRequest || out["field"] != tc.field {
				t.Fatalf("status %d, problem %v; want 400 on %s", status, out, tc.field)
			}
		})
	}

	// Read-only attributes sent on create are replaced.
	loc := notify.Location + "s"
	e.Must(http.StatusCreated, "POST", notify.Location, subscriptionBody("s", map[string]any{
		"callback": r.url, "secret": "first-secret", "state": "failing", "delivered": 99}))
	a := e.subAttrs(loc)
	if a["state"] != notify.StateActive || a["delivered"] != float64(0) || a["secret"] != "********" {
		t.Fatalf("created subscription shows %v", a)
	}
	// Changing them is refused.
	status, out := e.Do("POST", loc, subscriptionBody("s", map[string]any{"state": "expired"}))
	if status != http.StatusBadRequest || out["field"] != "cmbs.subscription.state" {
		t.Errorf("changing state: %d %v", status, out)
	}
	// A full replace that sends the mask back keeps the secret.
	res := e.Must(http.StatusOK, "GET", loc, nil)["resources"].([]any)[0].(map[string]any)
	res["attributes"].(map[string]any)["cmbs"].(map[string]any)["subscription"].(map[string]any)["events"] = []any{"created"}
	e.Must(http.StatusOK, "PUT", loc, map[string]any{"resources": []any{map[string]any{
		"kind": notify.Kind, "attributes": res["attributes"]}}})
	stored, err := occi.GetEntity(t.Context(), e.Store, loc)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := stored.Attr("cmbs.subscription.secret"); v != "first-secret" {
		t.Errorf("stored secret after the round trip: %v", v)
	}
	// The feed is ordered: the update is applied before these changes.
	e.resource("probe", "probe")
	e.Must(http.StatusOK, "DELETE", "/resource/probe", nil)
	e.resource("probe2", "probe2")
	r.waitEvent("probe2", is(notify.Created, "/resource/probe2"))
	for _, ev := range r.accepted() {
		if ev.Type != notify.Created {
			t.Errorf("the events filter was not applied: got %s", ev)
		}
	}
	r.check()
	// Subscriptions have no actions.
	if status, _ := e.Do("POST", loc+"?action=send_l2", map[string]any{}); status != http.StatusBadRequest {
		t.Errorf("action on a subscription: %d", status)
	}
}

// TestStoredSubscriptionsResume restarts the notifier over the same store:
// stored subscriptions run again with their counters.
func TestStoredSubscriptionsResume(t *testing.T) {
	st := brokertest.OpenBolt(t)
	first := newEnv(t, st, notify.Config{})
	r := newReceiver(t, "", 0)
	loc := first.subscribe("kept", map[string]any{"callback": r.url, "events": []any{"created"}})
	first.resource("one", "one")
	r.waitEvent("one", is(notify.Created, "/resource/one"))
	cmbstest.Eventually(t, "the success counted", func() bool {
		st, _ := first.Notifier.Subscription(loc)
		return st.Delivered == 1
	})
	first.close()
	second := newEnv(t, st, notify.Config{})
	cmbstest.Eventually(t, "resumed", func() bool { _, ok := second.Notifier.Subscription(loc); return ok })
	if stt, _ := second.Notifier.Subscription(loc); stt.Delivered != 1 {
		t.Errorf("counters not resumed: %v", stt)
	}
	second.resource("two", "two")
	r.waitEvent("two", is(notify.Created, "/resource/two"))
}

func TestFilterMatch(t *testing.T) {
	msg := &occi.Entity{Location: "/cmbs/message/m", Kind: "http://houssem.org/cmbs#message",
		Attributes: map[string]any{"cmbs": map[string]any{"message": map[string]any{
			"topics": []any{"weather.paris"}, "providers": []any{"storage"}}}}}
	ev := &notify.Event{Type: notify.Created, Location: msg.Location, Kind: msg.Kind, Entity: msg}
	for _, tc := range []struct {
		name string
		f    notify.Filter
		want bool
	}{
		{"empty", notify.Filter{}, true},
		{"kind", notify.Filter{Kind: msg.Kind}, true},
		{"other kind", notify.Filter{Kind: "http://houssem.org/cmbs#member"}, false},
		{"location prefix", notify.Filter{Location: "/cmbs/message/"}, true},
		{"other location", notify.Filter{Location: "/cmbs/member/"}, false},
		{"topic wildcard", notify.Filter{Topics: []string{"weather.*"}}, true},
		{"topic tail", notify.Filter{Topics: []string{"news", "weather.>"}}, true},
		{"other topic", notify.Filter{Topics: []string{"news"}}, false},
		{"provider", notify.Filter{Providers: []string{"compute", "storage"}}, true},
		{"other provider", notify.Filter{Providers: []string{"compute"}}, false},
		{"event type", notify.Filter{Events: []string{"updated", "created"}}, true},
		{"other event type", notify.Filter{Events: []string{"deleted"}}, false},
		{"all set", notify.Filter{Kind: msg.Kind, Location: "/cmbs/", Topics: []string{"weather.paris"}, Providers: []string{"storage"}, Events: []string{"created"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(ev); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	if (notify.Filter{Topics: []string{"x"}}).Match(&notify.Event{Type: notify.Deleted}) {
		t.Errorf("a topic filter matched an event without an entity")
	}
}

func TestSign(t *testing.T) {
	body := []byte(`{"event":"created"}`)
	// echo -n '{"event":"created"}' | openssl dgst -sha256 -hmac secret
	const want = "sha256=74e1c80b3590da2bf380221609511ac0d4c3401a4aaa4c14dae3f899ee6f9bd0"
	if got := notify.Sign("secret", body); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if !notify.Verify("secret", body, want) || notify.Verify("other", body, want) || notify.Verify("secret", append(body, ' '), want) {
		t.Errorf("Verify does not tell signatures apart")
	}
}
