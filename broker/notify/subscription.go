package notify

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/houssem/cmbs/occi"
)

// The subscription kind and its provider.
const (
	Kind     = "http://houssem.org/cmbs#subscription"
	Location = "/cmbs/subscription/"
	Provider = "cmbs_subscription"
)

// Subscription attribute names.
const (
	attrPrefix       = "cmbs.subscription."
	attrCallback     = attrPrefix + "callback"
	attrKind         = attrPrefix + "kind"
	attrLocation     = attrPrefix + "location"
	attrTopics       = attrPrefix + "topics"
	attrProviders    = attrPrefix + "providers"
	attrEvents       = attrPrefix + "events"
	attrExpires      = attrPrefix + "expires"
	attrSecret       = attrPrefix + "secret"
	attrState        = attrPrefix + "state"
	attrDelivered    = attrPrefix + "delivered"
	attrFailed       = attrPrefix + "failed"
	attrDropped      = attrPrefix + "dropped"
	attrLastError    = attrPrefix + "last_error"
	attrLastDelivery = attrPrefix + "last_delivery"
)

// Subscription states.
const (
	StateActive  = "active"
	StateFailing = "failing"
	StateExpired = "expired"
)

// secretMask stands for a secret in every rendering of a subscription.
// Sent back unchanged in an update, it keeps the stored secret.
const secretMask = "********"

// spec is what a subscription asks for.
type spec struct {
	callback string
	filter   Filter
	secret   string
	expires  time.Time
}

func (s spec) expired(now time.Time) bool { return !s.expires.IsZero() && !now.Before(s.expires) }

// parseSpec reads and checks a subscription's attributes.
func parseSpec(e *occi.Entity) (spec, error) {
	var sp spec
	var err error
	if sp.callback, err = attrString(e, attrCallback); err != nil {
		return sp, err
	}
	if err := checkCallback(sp.callback); err != nil {
		return sp, err
	}
	if sp.filter.Kind, err = attrString(e, attrKind); err != nil {
		return sp, err
	}
	if sp.filter.Location, err = attrString(e, attrLocation); err != nil {
		return sp, err
	}
	if sp.filter.Topics, err = attrList(e, attrTopics); err != nil {
		return sp, err
	}
	if sp.filter.Providers, err = attrList(e, attrProviders); err != nil {
		return sp, err
	}
	if sp.filter.Events, err = attrList(e, attrEvents); err != nil {
		return sp, err
	}
	if err := sp.filter.Validate(attrPrefix); err != nil {
		return sp, err
	}
	if sp.secret, err = attrString(e, attrSecret); err != nil {
		return sp, err
	}
	expires, err := attrString(e, attrExpires)
	if err != nil {
		return sp, err
	}
	if expires != "" {
		if sp.expires, err = time.Parse(time.RFC3339, expires); err != nil {
			return sp, occi.BadRequest(attrExpires, "%s %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", attrExpires, expires)
		}
	}
	return sp, nil
}

func checkCallback(raw string) error {
	if raw == "" {
		return occi.BadRequest(attrCallback, "missing required attribute %s, the URL events are POSTed to", attrCallback)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return occi.BadRequest(attrCallback, "%s %q must be an absolute http or https URL", attrCallback, raw)
	}
	if u.Fragment != "" {
		return occi.BadRequest(attrCallback, "%s %q must not have a fragment", attrCallback, raw)
	}
	return nil
}

// attrString reads an optional string attribute; absent and null read as "".
func attrString(e *occi.Entity, name string) (string, error) {
	v, ok := e.Attr(name)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", occi.BadRequest(name, "%s must be a string", name)
	}
	return strings.TrimSpace(s), nil
}

// attrList reads an optional list of strings; a lone string is a list of
// one and "" (the original's empty default) none.
func attrList(e *occi.Entity, name string) ([]string, error) {
	v, ok := e.Attr(name)
	if !ok || v == nil {
		return nil, nil
	}
	switch t := v.(type) {
	case string:
		return stringList(t), nil
	case []any:
		for i, item := range t {
			if _, ok := item.(string); !ok {
				return nil, occi.BadRequest(name, "%s[%d] must be a string", name, i)
			}
		}
		return stringList(t), nil
	}
	return nil, occi.BadRequest(name, "%s must be an array of strings", name)
}

// Status is a subscription's delivery state, kept in its read-only
// attributes.
type Status struct {
	State        string
	Delivered    int64
	Failed       int64
	Dropped      int64
	LastError    string
	LastDelivery time.Time
}

func statusOf(e *occi.Entity) Status {
	st := Status{State: StateActive}
	if s, _ := attrString(e, attrState); s != "" {
		st.State = s
	}
	count := func(name string) int64 {
		v, _ := e.Attr(name)
		switch t := v.(type) {
		case float64:
			return int64(t)
		case string:
			n, _ := strconv.ParseInt(t, 10, 64)
			return n
		}
		return 0
	}
	st.Delivered, st.Failed, st.Dropped = count(attrDelivered), count(attrFailed), count(attrDropped)
	st.LastError, _ = attrString(e, attrLastError)
	if s, _ := attrString(e, attrLastDelivery); s != "" {
		st.LastDelivery, _ = time.Parse(time.RFC3339Nano, s)
	}
	return st
}

// apply writes the status into e's attributes.
func (st Status) apply(e *occi.Entity) {
	e.SetAttr(attrState, st.State)
	e.SetAttr(attrDelivered, float64(st.Delivered))
	e.SetAttr(attrFailed, float64(st.Failed))
	e.SetAttr(attrDropped, float64(st.Dropped))
	unset(e, attrLastError)
	if st.LastError != "" {
		e.SetAttr(attrLastError, st.LastError)
	}
	unset(e, attrLastDelivery)
	if !st.LastDelivery.IsZero() {
		e.SetAttr(attrLastDelivery, st.LastDelivery.UTC().Format(time.RFC3339Nano))
	}
}

func unset(e *occi.Entity, name string) {
	parts := strings.Split(name, ".")
	m := e.Attributes
	for _, k := range parts[:len(parts)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, parts[len(parts)-1])
}

// provider is cmbs_subscription: it checks subscriptions, keeps their
// read-only attributes its own, masks secrets and stops deliveries of
// deleted subscriptions at once.
type provider struct{ n *Notifier }

// Create checks a new subscription and starts it active with zero counts,
// whatever the client sent for the read-only attributes.
func (p provider) Create(_ context.Context, e *occi.Entity) error {
	sp, err := parseSpec(e)
	if err != nil {
		return err
	}
	if sp.secret == secretMask {
		return occi.BadRequest(attrSecret, "%s cannot be %q, which stands for a hidden secret", attrSecret, secretMask)
	}
	if sp.expired(time.Now()) {
		return occi.BadRequest(attrExpires, "%s is in the past", attrExpires)
	}
	Status{State: StateActive}.apply(e)
	return nil
}

// Read masks the secret.
func (provider) Read(_ context.Context, e *occi.Entity) error {
	if s, _ := attrString(e, attrSecret); s != "" {
		e.SetAttr(attrSecret, secretMask)
	}
	return nil
}

// Update checks the new attributes, keeps the stored secret when the mask
// comes back, carries the counters over and makes the subscription active
// again (or expired), since an update is how a client says it fixed what
// made deliveries fail.
func (provider) Update(_ context.Context, old, updated *occi.Entity) error {
	if s, _ := attrString(updated, attrSecret); s == secretMask {
		unset(updated, attrSecret)
		if prev, _ := attrString(old, attrSecret); prev != "" {
			updated.SetAttr(attrSecret, prev)
		}
	}
	sp, err := parseSpec(updated)
	if err != nil {
		return err
	}
	oldExpires, _ := attrString(old, attrExpires)
	newExpires, _ := attrString(updated, attrExpires)
	now := time.Now()
	if newExpires != oldExpires && sp.expired(now) {
		return occi.BadRequest(attrExpires, "%s is in the past", attrExpires)
	}
	st := statusOf(old)
	st.State = StateActive
	if sp.expired(now) {
		st.State = StateExpired
	}
	st.apply(updated)
	return nil
}

// Delete stops the subscription's deliveries before it is removed, so no
// event reaches its callback once the client has been answered.
func (p provider) Delete(_ context.Context, e *occi.Entity) error {
	p.n.remove(e.Location)
	return nil
}

// Action refuses: subscriptions have none.
func (provider) Action(_ context.Context, e *occi.Entity, inv occi.ActionInvocation) (*occi.ActionResult, error) {
	return nil, occi.BadRequest("action", "subscription %s has no action %q", e.ID, inv.Term)
}

// generation is the number before the dash of a revision: both backends
// count writes that way ("3-ab…"), so a larger one is a later write.
func generation(rev string) int {
	n, _, _ := strings.Cut(rev, "-")
	g, err := strconv.Atoi(n)
	if err != nil {
		return 0
	}
	return g
}

func (st Status) String() string {
	return fmt.Sprintf("%s (delivered %d, failed %d, dropped %d)", st.State, st.Delivered, st.Failed, st.Dropped)
}
