package occi

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// Provider is a backend attached to kinds. The server calls it for every
// entity of those kinds, before the store write, so an error aborts the
// operation and nothing is stored. Errors of type *Error keep their status;
// any other error answers 502, naming the provider.
type Provider interface {
	// Create is called before a new entity is stored; it may fill in
	// attributes of e.
	Create(ctx context.Context, e *Entity) error
	// Read is called after an entity is read and before it is rendered; it
	// may refresh attributes of e for the response.
	Read(ctx context.Context, e *Entity) error
	// Update is called before old is replaced by updated.
	Update(ctx context.Context, old, updated *Entity) error
	// Delete is called before e is removed.
	Delete(ctx context.Context, e *Entity) error
	// Action runs action inv on e. A nil result answers 200 with the
	// entity's location.
	Action(ctx context.Context, e *Entity, inv ActionInvocation) (*ActionResult, error)
}

// Exclusive marks providers whose checks look at other entities of their
// kind (one local member per server, say). The server runs such a
// provider's Create or Update and the store write it guards one request at a
// time for that kind, so two requests cannot both pass a check only one of
// them may. Within one request that writes several entities, the others
// are not stored yet when the provider is called: Batch lists them.
type Exclusive interface {
	Provider
	Exclusive()
}

// Stager is implemented by providers whose Create adds writes of their own
// to the store transaction that creates an entity, so that the entity and
// what the provider derives from it (a message and its outbox entries) are
// committed together or not at all.
type Stager interface {
	Provider
	// StageCreate is called instead of Create. It may fill in attributes
	// of e, and returns what to commit with it.
	StageCreate(ctx context.Context, e *Entity) (*Stage, error)
}

// Stage is what a Stager adds to the creation of an entity.
type Stage struct {
	// Writes are committed in the entity's transaction.
	Writes []store.Write
	// Committed, when set, runs once the transaction is committed and
	// before the answer is written, with the revisions the commit gave
	// Writes, in order. It may wait within ctx (under a Prefer wait, for
	// the result of what the create started), and returns the
	// Preference-Applied value when it honoured a preference; the answer
	// then shows the created entities as they are after it.
	Committed func(ctx context.Context, revs []string) (preferenceApplied string)
}

// ActionInvocation is one triggered action.
type ActionInvocation struct {
	// ID is the action's category id (scheme+term); Term its term.
	ID   string
	Term string
	// Attributes are the action's parameters from the request body.
	Attributes map[string]any
}

// ActionResult is what an action answers: a status and a JSON body. When
// Location is set (a path), the answer carries it as an absolute URL in a
// Location header, and as {"Location":[…]} when Body is nil.
type ActionResult struct {
	Status   int
	Body     any
	Location string
	// PreferenceApplied is the Preference-Applied header (RFC 7240) when
	// the action honoured a preference of the request (see PreferencesOf).
	PreferenceApplied string
}

// Registry maps local provider names to providers. It is filled at start
// (dummy, then the broker's) and read by every request.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns a registry holding the "dummy" provider.
func NewRegistry(log logrus.FieldLogger) *Registry {
	r := &Registry{providers: map[string]Provider{}}
	r.Register("dummy", Dummy{Log: log})
	return r
}

// Register adds or replaces the provider called name.
func (r *Registry) Register(name string, p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[name] = p
}

// Lookup returns the provider called name.
func (r *Registry) Lookup(name string) (Provider, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[name]
	return p, ok
}

// Names lists the registered providers, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Dummy is a provider that logs each call and does nothing else: the backend
// for kinds that only need storing.
type Dummy struct {
	Log logrus.FieldLogger
}

func (d Dummy) log(op string, e *Entity) {
	if d.Log != nil {
		d.Log.WithFields(logrus.Fields{"provider": "dummy", "op": op, "entity": e.Location}).Debug("provider call")
	}
}

// Create logs the call.
func (d Dummy) Create(_ context.Context, e *Entity) error { d.log("create", e); return nil }

// Read logs the call.
func (d Dummy) Read(_ context.Context, e *Entity) error { d.log("read", e); return nil }

// Update logs the call.
func (d Dummy) Update(_ context.Context, _, e *Entity) error { d.log("update", e); return nil }

// Delete logs the call.
func (d Dummy) Delete(_ context.Context, e *Entity) error { d.log("delete", e); return nil }

// Action logs the call and answers with the default result.
func (d Dummy) Action(_ context.Context, e *Entity, inv ActionInvocation) (*ActionResult, error) {
	d.log("action "+inv.Term, e)
	return nil, nil
}

// providerError gives a provider's plain error a status and its name.
func providerError(name string, err error) error {
	if statusOf(err) != 500 {
		return err
	}
	return &Error{Status: 502, Detail: fmt.Sprintf("provider %s: %v", name, err), Err: err}
}
