package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
)

// Member security. In plain mode whoever reaches a layer socket is heard,
// and a request's sender is whoever it says it is. With Config.Curve:
//
//   - every layer receiver is a CURVE server holding the member's key, and
//     its ZAP handler admits only the keys Trust lists (any key with
//     TrustOnFirstUse); a key removed from the list is refused on its next
//     handshake and on its next request over a connection already open;
//   - a request speaks only for the member whose key sent it: a describe
//     or sync binds its sender's description to the key, a member bound to
//     a key is described only by that key (unless that key is no longer
//     trusted and the new one is: a rotation), a deliver is taken only in
//     a session its key opened, and the path of a message delivered ends
//     with its sender;
//   - the broker dials every peer at the public key it published, found
//     among the trusted keys (FindKey) for a socket no known member has,
//     and checks that a member answering discovery describes itself with
//     the key it proved it holds;
//   - refused peers are counted per layer and reason, and logged with
//     their key; the side that could not connect shows why in
//     neighbors_state and in the reasons of pending deliveries.

// Trust says which member keys this member admits.
type Trust interface {
	// Trusted reports whether key may connect.
	Trusted(key string) bool
	// Keys lists the trusted keys, which the broker tries on a socket it
	// knows no key for.
	Keys() []string
}

// Why a peer was refused, as the refusal metric labels it.
const (
	// refusedKey: its key is not trusted.
	refusedKey = "untrusted_key"
	// refusedHandshake: its handshake failed before any key was proven
	// (no CURVE, or it does not know this member's key).
	refusedHandshake = "handshake"
	// refusedIdentity: its key is trusted, but its request spoke for
	// another member.
	refusedIdentity = "identity"
)

// checkSecurity refuses a configuration that could not run securely.
func (c *Config) checkSecurity() error {
	if c.Keys != nil {
		if err := layers.CheckKey(c.Keys.Public); err != nil {
			return fmt.Errorf("broker: member public key: %w", err)
		}
	}
	if !c.Curve {
		return nil
	}
	if c.Keys == nil {
		return errors.New("broker: CURVE needs the member's key pair")
	}
	if c.Trust == nil && !c.TrustOnFirstUse {
		return errors.New("broker: CURVE needs trusted keys, or trust on first use: otherwise no peer is admitted")
	}
	return nil
}

// publicKey is the local member's key, "" without one.
func (b *Broker) publicKey() string {
	if b.cfg.Keys == nil {
		return ""
	}
	return b.cfg.Keys.Public
}

// describeSelf is the local member's description, with its key and size
// limit.
func (b *Broker) describeSelf(self *occi.Entity) memberInfo {
	info := describe(self)
	info.PublicKey, info.MaxMessageBytes = b.publicKey(), int(b.cfg.MaxMessageSize)
	return info
}

// selfAttrs are the local member's read-only attributes, as this server
// sets them: its key (when it has one) and its size limit.
func (b *Broker) selfAttrs() map[string]any {
	out := map[string]any{attrMaxMessage: float64(b.cfg.MaxMessageSize)}
	if k := b.publicKey(); k != "" {
		out[attrPublicKey] = k
	}
	return out
}

// markSelf writes the local member's read-only attributes into e.
func (b *Broker) markSelf(e *occi.Entity) {
	for name, v := range b.selfAttrs() {
		e.SetAttr(name, v)
	}
}

// selfDiffers reports whether the stored local member e says otherwise
// than this server of its read-only attributes.
func (b *Broker) selfDiffers(e *occi.Entity) bool {
	for name, v := range b.selfAttrs() {
		if got, _ := e.Attr(name); attrText(got) != attrText(v) {
			return true
		}
	}
	return false
}

// attrText is an attribute value as text, so "10" and 10 compare equal.
func attrText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		return strings.TrimSpace(t)
	}
	return fmt.Sprint(v)
}

// fixReadOnly keeps a member's public_key and max_message_bytes read-only:
// the local member's are this server's; another member's are what
// discovery recorded (old's), which no client sets. A client that sends
// other values is told so.
func (b *Broker) fixReadOnly(old, e *occi.Entity) error {
	local, self := flag(e, attrLocal, false), b.selfAttrs()
	for _, name := range []string{attrPublicKey, attrMaxMessage} {
		given, _ := e.Attr(name)
		var was any
		if old != nil {
			was, _ = old.Attr(name)
		}
		changed := attrText(given) != "" && attrText(given) != attrText(was)
		if local {
			want, has := self[name]
			if changed && attrText(given) != attrText(want) {
				return occi.BadRequest(name, "%s is read-only: the local member's is its server's (%s)", name, attrText(want))
			}
			if has {
				e.SetAttr(name, want)
			}
			continue
		}
		if changed {
			return occi.BadRequest(name, "%s is read-only: it is learned from the member itself in discovery", name)
		}
		if attrText(was) != "" {
			e.SetAttr(name, was)
		}
	}
	return nil
}

// trusted reports whether key is listed as trusted.
func (b *Broker) trusted(key string) bool {
	return b.cfg.Trust != nil && b.cfg.Trust.Trusted(key)
}

// admit is the receivers' ZAP decision.
func (b *Broker) admit(p layers.Peer) error {
	if b.cfg.TrustOnFirstUse || b.trusted(p.Key) {
		return nil
	}
	return fmt.Errorf("key %s is not among the trusted keys", p.Key)
}

// curveServer is the CURVE configuration of the receivers, nil in plain
// mode.
func (b *Broker) curveServer() *layers.CurveServer {
	if !b.cfg.Curve {
		return nil
	}
	return &layers.CurveServer{Keys: *b.cfg.Keys, Admit: b.admit}
}

// onRefused counts and reports the peers layer l's receiver turned away.
func (b *Broker) onRefused(l Layer) func(layers.Refusal) {
	return func(f layers.Refusal) {
		reason := refusedHandshake
		if f.Cause == layers.RefusedKey {
			reason = refusedKey
		}
		b.refused(l, reason, f.Peer, f.Reason)
	}
}

// refused counts a refused peer and logs it with its key.
func (b *Broker) refused(l Layer, reason string, p layers.Peer, why string) {
	b.cfg.Metrics.peerRefused(l, reason)
	b.refusals.report(b.log.WithFields(logrus.Fields{"layer": l, "reason": reason, "key": p.Key, "address": p.Address}),
		reason+" "+p.Key, "peer refused: "+why)
}

// authorize checks, on a CURVE receiver, that a request's sender speaks
// for the member it names, and remembers its key in env.
func (b *Broker) authorize(ctx context.Context, l Layer, p layers.Peer, ms *members, env *envelope) error {
	if p.Key == "" {
		return errors.New("a request without an authenticated sender")
	}
	if !b.cfg.TrustOnFirstUse && !b.trusted(p.Key) {
		// Removed from the trusted keys after it connected.
		return fmt.Errorf("key %s is no longer trusted here", layers.ShortKey(p.Key))
	}
	env.key = p.Key
	if env.Type != reqDescribe && env.Type != reqSync || env.From.ID == "" {
		// A deliver is checked against the session its key opened; an
		// anonymous describe learns nothing.
		return nil
	}
	if k := env.From.PublicKey; k != "" && k != p.Key {
		return fmt.Errorf("the request describes member %s with key %s, but comes from key %s",
			env.From.ID, layers.ShortKey(k), layers.ShortKey(p.Key))
	}
	env.From.PublicKey = p.Key
	if err := b.maySpeakFor(ms, env.From.ID, p.Key); err != nil {
		return err
	}
	if env.Type == reqSync {
		// A sender not known under this key (new here, or rotated its
		// key) is learned now, as a describe would: its deliveries are
		// then routed and answered as its own.
		if m := ms.byID[env.From.ID]; m == nil || m.PublicKey != p.Key {
			if err := b.learn(ctx, ms.local.e, env.From, "", 1, true); err != nil {
				return fmt.Errorf("member %s not recorded: %w", env.From.ID, err)
			}
			b.table.invalidate()
		}
	}
	return nil
}

// checkPath refuses, from an authenticated sender, a message whose path
// does not end with that sender: every member appends itself before it
// passes a message on, so the hop recorded here is the one whose key
// delivered it.
func (in *intake) checkPath(msg message) error {
	if in.env.key == "" {
		return nil
	}
	if n := len(msg.Path); n == 0 || msg.Path[n-1] != in.env.From.ID {
		return fmt.Errorf("message %s: %s must end with %s, the member that delivered it", msg.ID, msgPath, in.env.From.ID)
	}
	return nil
}

// maySpeakFor reports why key may not describe member id, or nil: a key
// speaks for one member, and a member bound to a key is spoken for by that
// key only, unless the key was removed from the trusted keys and the new
// one is listed (a rotation). Under trust on first use a binding is never
// moved: delete the member to let another key speak for it.
func (b *Broker) maySpeakFor(ms *members, id, key string) error {
	if other := ms.byKey[key]; other != nil && other.ID != id {
		return fmt.Errorf("key %s speaks for member %s, not %s", layers.ShortKey(key), other.ID, id)
	}
	m := ms.byID[id]
	switch {
	case m == nil:
		return nil
	case m.Local:
		return fmt.Errorf("%s is this member's own id", id)
	case m.PublicKey == "" || m.PublicKey == key:
		return nil
	case !b.cfg.TrustOnFirstUse && !b.trusted(m.PublicKey) && b.trusted(key):
		b.log.WithFields(logrus.Fields{"member": id, "old_key": m.PublicKey, "key": key}).
			Info("member's key rotated: its old key is no longer trusted, its new one is")
		return nil
	}
	return fmt.Errorf("member %s is bound to key %s; key %s cannot speak for it", id, layers.ShortKey(m.PublicKey), layers.ShortKey(key))
}

// dialKey is the key to dial endpoint with: known when the caller has it,
// else that of the member with that socket, else the trusted key (or,
// under trust on first use, the member key) the receiver there turns out
// to hold. An error says why none can be used; a KindAuth error means the
// receiver there does not admit this member.
func (b *Broker) dialKey(ctx context.Context, ms *members, known, endpoint string) (string, error) {
	if known != "" {
		return known, nil
	}
	if m := ms.bySocket(endpoint); m != nil && m.PublicKey != "" {
		return m.PublicKey, nil
	}
	var candidates []string
	if b.cfg.Trust != nil {
		candidates = b.cfg.Trust.Keys()
	}
	if b.cfg.TrustOnFirstUse {
		for key := range ms.byKey {
			candidates = append(candidates, key)
		}
	}
	if len(candidates) == 0 {
		return "", &layers.Error{Endpoint: endpoint, Kind: layers.KindAuth,
			Reason: "no key is known for this socket, and no trusted key to try"}
	}
	key, err := b.direct.FindKey(ctx, endpoint, candidates)
	if err != nil {
		return "", err
	}
	return key, nil
}

// refusalLog spaces out the warnings about refused peers: the first of a
// kind in a minute is a warning, the rest debug messages, so a peer
// retrying every 100 ms cannot flood the log. The metric counts them all.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// refusalQuiet is how long a refused peer's next refusals stay quiet.
const refusalQuiet = time.Minute

func (r *refusalLog) report(log logrus.FieldLogger, kind, msg string) {
	now := time.Now()
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	loud := now.Sub(r.last[kind]) >= refusalQuiet
	if loud {
		if len(r.last) >= 1024 {
			for k, t := range r.last {
				if now.Sub(t) >= refusalQuiet {
					delete(r.last, k)
				}
			}
		}
		r.last[kind] = now
	}
	r.mu.Unlock()
	if loud {
		log.Warn(msg)
	} else {
		log.Debug(msg)
	}
}
