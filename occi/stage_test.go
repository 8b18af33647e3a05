package occi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// stager stages one companion document per entity it creates, refuses the
// entity called "refused", and records what it saw once committed.
type stager struct {
	st        store.Store
	mu        sync.Mutex
	committed []string
	waits     []time.Duration
}

func (p *stager) StageCreate(ctx context.Context, e *occi.Entity) (*occi.Stage, error) {
	if e.ID == "refused" {
		return nil, occi.BadRequest("id", "the stager refuses %s", e.ID)
	}
	body, err := json.Marshal(map[string]string{"of": e.Location})
	if err != nil {
		return nil, err
	}
	e.SetAttr("staged", "yes")
	return &occi.Stage{
		Writes: []store.Write{store.Put(store.Doc{ID: "companion" + e.Location, Body: body})},
		Committed: func(ctx context.Context, revs []string) string {
			// The entity and its companion are both stored by now, and
			// revs holds the companion's revision.
			_, errE := p.st.Get(ctx, e.Location)
			_, errC := p.st.Get(ctx, "companion"+e.Location)
			wait := occi.PreferencesOf(ctx).Wait
			p.mu.Lock()
			defer p.mu.Unlock()
			if errE == nil && errC == nil && len(revs) == 1 && revs[0] != "" {
				p.committed = append(p.committed, e.ID)
			}
			p.waits = append(p.waits, wait)
			if wait > 0 {
				return occi.WaitApplied(wait)
			}
			return ""
		},
	}, nil
}
func (p *stager) Create(context.Context, *occi.Entity) error {
	return errors.New("Create called on a Stager")
}
func (p *stager) Read(context.Context, *occi.Entity) error                 { return nil }
func (p *stager) Update(context.Context, *occi.Entity, *occi.Entity) error { return nil }
func (p *stager) Delete(context.Context, *occi.Entity) error               { return nil }
func (p *stager) Action(context.Context, *occi.Entity, occi.ActionInvocation) (*occi.ActionResult, error) {
	return nil, nil
}

// TestStagedCreate: a Stager's writes are committed with the entities, a
// refusal of one entity creates none, Committed runs after the commit, and
// a wait preference it honours makes the answer show the entities.
func TestStagedCreate(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		p := &stager{st: st}
		reg := occi.NewRegistry(occitest.Quiet())
		reg.Register("stager", p)
		e := newEnv(t, st, occi.Options{Providers: reg})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusOK, "PUT", "/-/", `{"providers":[{"Provider":{"local":["stager"],"remote":[]},"OCCI_ID":"`+computeK+`"}]}`)

		e.MustRequest(http.StatusBadRequest, "POST", "/compute/", `{"resources":[{"id":"a"},{"id":"refused"},{"id":"c"}]}`)
		for _, id := range []string{"/compute/a", "/compute/c", "companion/compute/a"} {
			if _, err := st.Get(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused create left %s (Get: %v)", id, err)
			}
		}

		res := e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"},{"id":"b"}]}`)
		if res.Header.Get("Preference-Applied") != "" || len(res.Header.Values("Location")) != 2 {
			t.Errorf("create without preference answered %v %s", res.Header, res.Raw)
		}
		res = e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"w"}]}`, "Prefer", "wait=7")
		if got := res.Header.Get("Preference-Applied"); got != "wait=7" {
			t.Errorf("Preference-Applied = %q, want wait=7", got)
		}
		if got := get(res.Body, "resources.0.attributes.staged"); got != "yes" {
			t.Errorf("a create with an applied preference answered %s, want the entity", res.Raw)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.committed) != 3 {
			t.Errorf("Committed saw both documents for %q, want a, b and w", p.committed)
		}
		if len(p.waits) != 3 || p.waits[2] != 7*time.Second || p.waits[0] != 0 {
			t.Errorf("waits seen = %v", p.waits)
		}
	})
}
