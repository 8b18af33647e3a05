package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/keys"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
)

// identity is a member's key pair and the trusted-keys file it reads.
type identity struct {
	keys  layers.KeyPair
	file  string
	trust *keys.Trust
}

// newIdentity makes a key pair and an empty trusted-keys file, read again
// every 20 ms.
func newIdentity(t *testing.T) *identity {
	t.Helper()
	kp, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	id := &identity{keys: kp, file: filepath.Join(t.TempDir(), "trusted-keys")}
	id.trustKeys(t)
	if id.trust, err = keys.OpenTrust(id.file, 20*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// trustKeys writes the trusted-keys file: exactly these keys.
func (id *identity) trustKeys(t *testing.T, pubs ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# trusted members\n")
	for i, k := range pubs {
		b.WriteString(k + " member " + string(rune('a'+i)) + "\n")
	}
	if err := os.WriteFile(id.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if id.trust != nil {
		if err := id.trust.Reload(); err != nil {
			t.Fatal(err)
		}
	}
}

// trusts makes id trust the others.
func (id *identity) trusts(t *testing.T, others ...*identity) {
	t.Helper()
	var pubs []string
	for _, o := range others {
		pubs = append(pubs, o.keys.Public)
	}
	id.trustKeys(t, pubs...)
}

// curve returns opts set up to run with id's key and trust.
func (id *identity) curve(opts brokertest.Options) brokertest.Options {
	opts.Broker.Keys, opts.Broker.Curve, opts.Broker.Trust = &id.keys, true, id.trust
	return opts
}

// TestCurveLayers runs the chain of TestLayers with CURVE: every member
// trusts the others' keys and nothing else changes: discovery and every
// layer work as in plain mode, and members record each other's keys.
func TestCurveLayers(t *testing.T) {
	ia, ib, ic, id := newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)
	ia.trusts(t, ib, ic, id)
	id.trusts(t, ia)
	ib.trusts(t, ia, ic)
	ic.trusts(t, ia, ib)
	c := brokertest.Start(t, ic.curve(brokertest.Options{ID: "member-c", Topics: []string{"weather.paris", "news"}, Providers: []string{"storage"}}))
	b := brokertest.Start(t, ib.curve(brokertest.Options{ID: "member-b", Neighbors: []*brokertest.Member{c}, Topics: []string{"weather.*"}, Providers: []string{"compute"}}))
	a := brokertest.Start(t, ia.curve(brokertest.Options{ID: "member-a", Neighbors: []*brokertest.Member{b}}))

	b.Discover()
	if res := a.Discover(); !reflect.DeepEqual(res["discovered"], []any{"member-b", "member-c"}) {
		t.Fatalf("discovered %v", res)
	}
	for who, want := range map[string]string{"member-a": ia.keys.Public, "member-b": ib.keys.Public, "member-c": ic.keys.Public} {
		if got := a.Attrs("/cmbs/member/"+who, "member")["public_key"]; got != want {
			t.Errorf("A's record of %s has key %v, want %s", who, got, want)
		}
	}
	if got := b.Attrs("/cmbs/member/member-a", "member")["public_key"]; got != ia.keys.Public {
		t.Errorf("B learned A with key %v", got)
	}
	for _, tc := range []struct {
		id, layer string
		attrs     map[string]any
		want      map[string]string
	}{
		{"m-l2", "l2", nil, map[string]string{"member-b": "delivered", "member-c": "delivered"}},
		{"m-l31", "l31", map[string]any{"providers": []any{"storage"}}, map[string]string{"member-c": "delivered"}},
		{"m-l32", "l32", map[string]any{"topics": []any{"weather.lyon"}}, map[string]string{"member-b": "delivered"}},
		{"m-l4", "l4", map[string]any{"providers": []any{"compute", "storage"}, "topics": []any{"news"}}, map[string]string{"member-c": "delivered"}},
		{"m-l1", "l1", map[string]any{"l1_socket_receiver_member": c.Sockets[broker.L1]}, map[string]string{"member-c": "delivered"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			a.Message(tc.id, tc.layer, tc.attrs)
			if got := brokertest.Outcome(a.Send(tc.id, tc.layer)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("outcome %v, want %v", got, tc.want)
			}
		})
	}
	if got := c.Attrs("/cmbs/message/m-l2", "message")["path_history"]; !reflect.DeepEqual(got, []any{"member-a", "member-c"}) {
		t.Errorf("path_history at C: %v", got)
	}
	// Forwarded through B: each hop delivers as itself.
	a.Must(http.StatusOK, "POST", "/cmbs/member/member-c", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "member-b", "distance": 2}}}}}})
	a.Message("m-via", "l31", map[string]any{"providers": []any{"storage"}})
	if got := brokertest.Outcome(a.Send("m-via", "l31")); got["member-c"] != "delivered" {
		t.Fatalf("forwarded outcome %v", got)
	}
	if got := c.Attrs("/cmbs/message/m-via", "message")["path_history"]; !reflect.DeepEqual(got, []any{"member-a", "member-b", "member-c"}) {
		t.Errorf("path_history of a forwarded message at C: %v", got)
	}
	// An L1 request to a socket no member of A's has: A finds its key
	// among the keys it trusts.
	d := brokertest.Start(t, id.curve(brokertest.Options{ID: "member-d"}))
	a.Message("m-l1-socket", "l1", map[string]any{"l1_socket_receiver_member": d.Sockets[broker.L1]})
	if got := brokertest.Outcome(a.Send("m-l1-socket", "l1")); got["member-d"] != "delivered" {
		t.Errorf("L1 to a socket: %v", got)
	}
}

// rogueEnvelopes are what a process that is no member sends a member:
// a describe introducing itself, a sync and a deliver of a message.
func rogueEnvelopes(l broker.Layer) [][]byte {
	from := map[string]any{"id": "rogue", "sockets": map[string]any{"l1": "tcp://127.0.0.1:9", "l2": "tcp://127.0.0.1:9"}, "distance": 0}
	msg := map[string]any{"id": "rogue-msg", "mixins": []any{"http://houssem.org/cmbs#" + string(l)},
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{"path_history": []any{"rogue"}, "message_content": "pwned"}}}}
	envs := []map[string]any{
		{"type": "describe", "layer": "l1", "from": from},
		{"type": "sync", "layer": l, "from": from, "session": "rogue-session"},
		{"type": "deliver", "layer": l, "from": from, "session": "rogue-session", "entries": []any{
			map[string]any{"seq": 1, "kind": "message", "to": []any{}, "hops": 0, "expires": "2099-01-01T00:00:00Z", "message": msg}}},
	}
	var out [][]byte
	for _, e := range envs {
		raw, _ := json.Marshal(e)
		out = append(out, raw)
	}
	return out
}

// unchanged checks that m knows no member but itself, stores no message
// and has nothing to deliver.
func unchanged(t *testing.T, m *brokertest.Member) {
	t.Helper()
	ctx := context.Background()
	members, err := occi.FindEntitiesAt(ctx, m.Store, broker.MemberLocation, broker.MemberKind)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ID != m.ID {
		var ids []string
		for _, e := range members {
			ids = append(ids, e.ID)
		}
		t.Errorf("%s knows members %v, want only itself", m.ID, ids)
	}
	if msgs, err := occi.FindEntitiesAt(ctx, m.Store, broker.MessageLocation, broker.MessageKind); err != nil || len(msgs) != 0 {
		t.Errorf("%s stores %d messages (%v)", m.ID, len(msgs), err)
	}
	if docs, err := m.Store.Scan(ctx, "outbox/", "", 10); err != nil || len(docs) != 0 {
		t.Errorf("%s has %d outbox entries (%v)", m.ID, len(docs), err)
	}
	if docs, err := m.Store.Scan(ctx, "seen/", "", 10); err != nil || len(docs) != 0 {
		t.Errorf("%s recorded %d messages seen (%v)", m.ID, len(docs), err)
	}
}

// TestCurveRogues: a process without CURVE, and one with a fresh key that
// knows the member's public key, each send describe, sync and deliver to
// every layer socket. Nothing changes on the member, and each attempt is
// counted as a refusal of its kind.
func TestCurveRogues(t *testing.T) {
	im, friend := newIdentity(t), newIdentity(t)
	im.trusts(t, friend)
	m := startObserved(t, im.curve(brokertest.Options{ID: "guarded"}))
	fresh, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	rogues := []struct {
		name   string
		cfg    layers.ClientConfig
		reason string
	}{
		{"no curve", layers.ClientConfig{}, "handshake"},
		{"fresh key", layers.ClientConfig{Curve: &fresh}, "untrusted_key"},
	}
	ctx := context.Background()
	for _, r := range rogues {
		t.Run(r.name, func(t *testing.T) {
			r.cfg.Timeout, r.cfg.Attempts = 2*time.Second, 1
			c, err := layers.NewClient(r.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cmbstest.NoError(t, c.Close)
			for _, l := range broker.Layers() {
				target := layers.Target{Endpoint: m.Sockets[l], Key: im.keys.Public}
				for _, env := range rogueEnvelopes(l) {
					_, err := c.RequestTo(ctx, target, env)
					// A plain client mostly learns of the mechanism
					// mismatch; when the receiver closes first, only that
					// the handshake failed. The receiver counts it either way.
					if !errors.Is(err, layers.ErrAuth) && (err == nil || !strings.Contains(err.Error(), "handshake failed")) {
						t.Errorf("%s on %s: %v, want a refused handshake", env[:20], l, err)
					}
				}
				cmbstest.Eventually(t, "the refusals on "+string(l)+" counted", func() bool {
					return m.value("cmbs_layer_peers_refused_total", map[string]string{"layer": string(l), "reason": r.reason}) >= 3
				})
			}
		})
	}
	unchanged(t, m.Member)
}

// TestCurveIdentity: a peer with a trusted key speaks only for its own
// member: it cannot describe another member, take the local member's id,
// open a session or deliver as another, or deliver a message whose path
// does not end with itself.
func TestCurveIdentity(t *testing.T) {
	im, ip, iq := newIdentity(t), newIdentity(t), newIdentity(t)
	im.trusts(t, ip, iq)
	ip.trusts(t, im)
	iq.trusts(t, im)
	p := brokertest.Start(t, ip.curve(brokertest.Options{ID: "p"}))
	q := brokertest.Start(t, iq.curve(brokertest.Options{ID: "q"}))
	m := startObserved(t, im.curve(brokertest.Options{ID: "m", Neighbors: []*brokertest.Member{p, q}}))
	if res := m.Discover(); !reflect.DeepEqual(res["discovered"], []any{"p", "q"}) {
		t.Fatalf("discovered %v", res)
	}
	before := m.Attrs("/cmbs/member/q", "member")

	// A process holding p's key.
	c, err := layers.NewClient(layers.ClientConfig{Curve: &ip.keys, Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	ctx := context.Background()
	ask := func(l broker.Layer, env map[string]any) ([]byte, error) {
		raw, _ := json.Marshal(env)
		return c.RequestTo(ctx, layers.Target{Endpoint: m.Sockets[l], Key: im.keys.Public}, raw)
	}
	elsewhere := map[string]any{"l1": "tcp://127.0.0.1:9", "l2": "tcp://127.0.0.1:9"}
	refused := []struct {
		name string
		l    broker.Layer
		env  map[string]any
		want string
	}{
		{"describe as q", broker.L1, map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "q", "sockets": elsewhere}}, "speaks for member p, not q"},
		{"describe as m", broker.L1, map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "m", "sockets": elsewhere}}, "speaks for member p, not m"},
		{"describe with another key", broker.L1, map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "p", "public_key": iq.keys.Public, "sockets": elsewhere}}, "comes from key"},
		{"sync as q", broker.L2, map[string]any{"type": "sync", "layer": "l2", "from": map[string]any{"id": "q"}, "session": "s-q"}, "speaks for member p, not q"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ask(tc.l, tc.env)
			if !errors.Is(err, layers.ErrRemote) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want a refusal saying %q", err, tc.want)
			}
		})
	}
	if got := m.Attrs("/cmbs/member/q", "member"); !reflect.DeepEqual(got["l1_socket"], before["l1_socket"]) || got["public_key"] != iq.keys.Public {
		t.Errorf("q's record changed: %v, was %v", got, before)
	}
	if got := m.value("cmbs_layer_peers_refused_total", map[string]string{"layer": "l1", "reason": "identity"}); got != 3 {
		t.Errorf("identity refusals on l1 = %v, want 3", got)
	}

	// p's own session: a deliver as q in it is not taken, nor is a message
	// whose path does not end with p.
	if _, err := ask(broker.L2, map[string]any{"type": "sync", "layer": "l2", "from": map[string]any{"id": "p"}, "session": "s-p"}); err != nil {
		t.Fatal(err)
	}
	entry := func(seq int, path ...any) map[string]any {
		return map[string]any{"seq": seq, "kind": "message", "to": []any{}, "hops": 0, "expires": "2099-01-01T00:00:00Z",
			"message": map[string]any{"id": "forged", "mixins": []any{"http://houssem.org/cmbs#l2"},
				"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{"path_history": path}}}}}
	}
	rep, err := ask(broker.L2, map[string]any{"type": "deliver", "layer": "l2", "from": map[string]any{"id": "q"}, "session": "s-p",
		"entries": []any{entry(1, "q")}})
	if err != nil || !strings.Contains(string(rep), `"resync":true`) {
		t.Errorf("a deliver as q in p's session answered %s, %v; want a resync", rep, err)
	}
	rep, err = ask(broker.L2, map[string]any{"type": "deliver", "layer": "l2", "from": map[string]any{"id": "p"}, "session": "s-p",
		"entries": []any{entry(1, "q")}})
	if err != nil || !strings.Contains(string(rep), "must end with p") {
		t.Errorf("a forged path answered %s, %v; want it refused", rep, err)
	}
	if m.Has("forged") {
		t.Error("the forged message was stored")
	}
	rep, err = ask(broker.L2, map[string]any{"type": "deliver", "layer": "l2", "from": map[string]any{"id": "p"}, "session": "s-p",
		"entries": []any{entry(2, "q", "p")}})
	if err != nil || !strings.Contains(string(rep), `"delivered"`) || !m.Has("forged") {
		t.Errorf("a message from p, through q, answered %s, %v", rep, err)
	}
	if got := m.Attrs("/cmbs/message/forged", "message")["path_history"]; !reflect.DeepEqual(got, []any{"q", "p", "m"}) {
		t.Errorf("path_history %v", got)
	}
}

// TestCurveUntrustedPeer: without trust on first use, a member whose key
// is not trusted is neither reached nor learned, nor is any member it
// knows; each side that could not connect says why in neighbors_state.
func TestCurveUntrustedPeer(t *testing.T) {
	im, iu, ix := newIdentity(t), newIdentity(t), newIdentity(t)
	im.trusts(t, newIdentity(t))
	iu.trusts(t, im, ix)
	ix.trusts(t, iu)
	x := brokertest.Start(t, ix.curve(brokertest.Options{ID: "x"}))
	u := brokertest.Start(t, iu.curve(brokertest.Options{ID: "u", Neighbors: []*brokertest.Member{x}}))
	if res := u.Discover(); !reflect.DeepEqual(res["discovered"], []any{"x"}) {
		t.Fatalf("u's discovery: %v", res)
	}
	m := startObserved(t, im.curve(brokertest.Options{ID: "m", Neighbors: []*brokertest.Member{u}}))

	res := m.Discover()
	if got, _ := res["discovered"].([]any); len(got) != 0 {
		t.Errorf("m discovered %v through an untrusted member", got)
	}
	state, _ := m.Attrs("/cmbs/member/m", "member")["neighbors_state"].(map[string]any)[u.Sockets[broker.L1]].(string)
	if !strings.HasPrefix(state, "refused: ") || !strings.Contains(state, "holds none of the 1 CURVE keys tried") {
		t.Errorf("m's neighbors_state for u: %q", state)
	}
	unchanged(t, m.Member)

	// u knows m's key and dials it: m's receiver refuses u, and u says so.
	u.Must(http.StatusOK, "POST", "/cmbs/member/u", map[string]any{"resources": []any{map[string]any{
		"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"neighbors_socket": []any{m.Sockets[broker.L1]}}}}}}})
	u.Discover()
	state, _ = u.Attrs("/cmbs/member/u", "member")["neighbors_state"].(map[string]any)[m.Sockets[broker.L1]].(string)
	if !strings.HasPrefix(state, "refused: ") || !strings.Contains(state, "did not admit") {
		t.Errorf("u's neighbors_state for m: %q", state)
	}
	if got := m.value("cmbs_layer_peers_refused_total", map[string]string{"layer": "l1", "reason": "untrusted_key"}); got < 1 {
		t.Errorf("m counted %v refusals of u's key", got)
	}
	unchanged(t, m.Member)
}

// TestCurveTrustOnFirstUse: with trust on first use, any key is admitted
// and the first member it speaks for is bound to it: another key cannot
// speak for that member later.
func TestCurveTrustOnFirstUse(t *testing.T) {
	im, iu := newIdentity(t), newIdentity(t)
	iu.trusts(t, im)
	opts := im.curve(brokertest.Options{ID: "m"})
	opts.Broker.Trust, opts.Broker.TrustOnFirstUse = nil, true
	m := brokertest.Start(t, opts)
	u := brokertest.Start(t, iu.curve(brokertest.Options{ID: "u", Neighbors: []*brokertest.Member{m}}))
	if res := u.Discover(); !reflect.DeepEqual(res["discovered"], []any{"m"}) {
		t.Fatalf("u's discovery: %v", res)
	}
	if got := m.Attrs("/cmbs/member/u", "member")["public_key"]; got != iu.keys.Public {
		t.Fatalf("m bound u to %v", got)
	}
	impostor, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	c, err := layers.NewClient(layers.ClientConfig{Curve: &impostor, Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	env, _ := json.Marshal(map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "u", "sockets": map[string]any{"l1": "tcp://127.0.0.1:9"}}})
	if _, err := c.RequestTo(context.Background(), layers.Target{Endpoint: m.Sockets[broker.L1], Key: im.keys.Public}, env); err == nil ||
		!strings.Contains(err.Error(), "is bound to key") {
		t.Fatalf("an impostor's describe: %v", err)
	}
	if got := m.Attrs("/cmbs/member/u", "member"); got["l1_socket"] != u.Sockets[broker.L1] {
		t.Errorf("the impostor rewrote u: %v", got)
	}
	// m dials u back with the key u proved.
	m.Message("tofu-1", "l2", nil)
	if got := brokertest.Outcome(m.Send("tofu-1", "l2")); got["u"] != "delivered" {
		t.Errorf("outcome %v", got)
	}
}

// TestCurveKeyRotation: a member changes its key; its peer's trusted keys
// gain the new key and lose the old one, with no restart of the peer:
// the member speaks for itself again under its new key, messages flow
// both ways, and the old key is refused.
func TestCurveKeyRotation(t *testing.T) {
	ia, ib := newIdentity(t), newIdentity(t)
	ia.trusts(t, ib)
	ib.trusts(t, ia)
	a := startObserved(t, ia.curve(brokertest.Options{ID: "a"}))
	dir := t.TempDir()
	bOpts := ib.curve(brokertest.Options{ID: "b", DBPath: filepath.Join(dir, "b.db"), Neighbors: []*brokertest.Member{a.Member}})
	b := brokertest.Start(t, bOpts)
	b.Discover()
	a.Message("before", "l2", nil)
	if got := brokertest.Outcome(a.Send("before", "l2")); got["b"] != "delivered" {
		t.Fatalf("before the rotation: %v", got)
	}

	// b comes back with a new key, on the same store and sockets.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	old := ib.keys
	rotated, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ib.keys = rotated
	ia.trustKeys(t, rotated.Public)
	bOpts.Sockets, bOpts.NoMember = b.Sockets, true
	b2 := brokertest.Start(t, bOpts)
	if got := b2.Attrs("/cmbs/member/b", "member")["public_key"]; got != rotated.Public {
		t.Fatalf("b's public key after the rotation: %v", got)
	}
	if res := b2.Discover(); !reflect.DeepEqual(res["discovered"], []any{"a"}) {
		t.Fatalf("b's discovery after the rotation: %v", res)
	}
	if got := a.Attrs("/cmbs/member/b", "member")["public_key"]; got != rotated.Public {
		t.Errorf("a's record of b has key %v, want the new one", got)
	}
	a.Message("after", "l2", nil)
	if got := brokertest.Outcome(a.Send("after", "l2")); got["b"] != "delivered" {
		t.Errorf("a to b after the rotation: %v", got)
	}
	b2.Message("back", "l2", nil)
	if got := brokertest.Outcome(b2.Send("back", "l2")); got["a"] != "delivered" {
		t.Errorf("b to a after the rotation: %v", got)
	}
	c, err := layers.NewClient(layers.ClientConfig{Curve: &old, Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	env, _ := json.Marshal(map[string]any{"type": "describe", "layer": "l1", "from": map[string]any{"id": "b"}})
	if _, err := c.RequestTo(context.Background(), layers.Target{Endpoint: a.Sockets[broker.L1], Key: ia.keys.Public}, env); !errors.Is(err, layers.ErrAuth) {
		t.Errorf("the old key's describe: %v, want refused", err)
	}
}

// TestPublicKeyReadOnly: the local member shows its server's key, and no
// client sets a member's key.
func TestPublicKeyReadOnly(t *testing.T) {
	id := newIdentity(t)
	m := brokertest.Start(t, id.curve(brokertest.Options{ID: "m", Layers: []broker.Layer{}}))
	if got := m.Attrs("/cmbs/member/m", "member")["public_key"]; got != id.keys.Public {
		t.Fatalf("local member's key %v", got)
	}
	other, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	member := func(id string, attrs map[string]any) map[string]any {
		return map[string]any{"resources": []any{map[string]any{"kind": broker.MemberKind, "id": id,
			"attributes": map[string]any{"cmbs": map[string]any{"member": attrs}}}}}
	}
	m.Must(http.StatusBadRequest, "POST", broker.MemberLocation, member("r", map[string]any{"local": "false", "public_key": other.Public}))
	m.Must(http.StatusBadRequest, "POST", "/cmbs/member/m", member("m", map[string]any{"public_key": other.Public}))
	m.Must(http.StatusCreated, "POST", broker.MemberLocation, member("r", map[string]any{"local": "false"}))
	if _, ok := m.Attrs("/cmbs/member/r", "member")["public_key"]; ok {
		t.Error("a member declared by a client has a key")
	}
	// A full replacement keeps the key.
	m.Must(http.StatusOK, "PUT", "/cmbs/member/m", member("m", map[string]any{"local": "true"})["resources"].([]any)[0])
	if got := m.Attrs("/cmbs/member/m", "member")["public_key"]; got != id.keys.Public {
		t.Errorf("local member's key after a PUT: %v", got)
	}
	stored, err := occi.GetEntity(context.Background(), m.Store, broker.MemberLocation+"m")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := stored.Attr("cmbs.member.public_key"); got != id.keys.Public {
		t.Errorf("the stored member's key: %v", got)
	}
}
