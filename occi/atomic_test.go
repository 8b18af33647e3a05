package occi_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// refuser is a provider that refuses one operation on one entity, so a
// request touching several entities fails part way through.
type refuser struct {
	op, id string
}

func (p refuser) check(op string, e *occi.Entity) error {
	if op == p.op && e.ID == p.id {
		return occi.BadRequest("", "provider refuses %s of %s", op, e.ID)
	}
	return nil
}
func (p refuser) Create(_ context.Context, e *occi.Entity) error    { return p.check("create", e) }
func (p refuser) Read(_ context.Context, e *occi.Entity) error      { return nil }
func (p refuser) Update(_ context.Context, _, e *occi.Entity) error { return p.check("update", e) }
func (p refuser) Delete(_ context.Context, e *occi.Entity) error    { return p.check("delete", e) }
func (p refuser) Action(_ context.Context, e *occi.Entity, _ occi.ActionInvocation) (*occi.ActionResult, error) {
	return nil, nil
}

// TestFailedWritesChangeNothing checks that a request refused part way
// through leaves every entity as it was.
func TestFailedWritesChangeNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		refuse  refuser
		kind    string // the kind the provider is attached to
		method  string
		path    string
		body    string
		want    int
		unmoved []string // paths whose representation must not change
	}{
		{"mixin association", refuser{"update", "b"}, computeK, "POST", "/template/resource/medium/",
			`{"X-OCCI-Location":["/compute/a","/compute/b"]}`, http.StatusBadRequest, []string{"/compute/a", "/compute/b", "/template/resource/medium/"}},
		{"resource with links", refuser{"delete", "a"}, computeK, "DELETE", "/compute/a", "",
			http.StatusBadRequest, []string{"/compute/a", "/networkinterface/n"}},
		{"kind collection", refuser{"delete", "b"}, computeK, "DELETE", "/compute/", "",
			http.StatusBadRequest, []string{"/compute/a", "/compute/b", "/networkinterface/n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				reg := occi.NewRegistry(occitest.Quiet())
				reg.Register("refuser", tc.refuse)
				e := newEnv(t, st, occi.Options{Providers: reg})
				e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
				e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"},{"id":"b"}]}`)
				e.MustRequest(http.StatusCreated, "POST", "/networkinterface/", `{"links":[{"id":"n","source":"/compute/a","target":"/compute/b"}]}`)
				e.MustRequest(http.StatusOK, "PUT", "/-/", `{"providers":[{"Provider":{"local":["refuser"],"remote":[]},"OCCI_ID":"`+tc.kind+`"}]}`)
				before := map[string]any{}
				for _, p := range tc.unmoved {
					before[p] = e.MustRequest(http.StatusOK, "GET", p, "").Body
				}
				e.MustRequest(tc.want, tc.method, tc.path, tc.body)
				for _, p := range tc.unmoved {
					if got := e.MustRequest(http.StatusOK, "GET", p, "").Body; !reflect.DeepEqual(got, before[p]) {
						t.Errorf("%s changed by a refused request:\n got %v\nwant %v", p, got, before[p])
					}
				}
			})
		})
	}
}

// TestRefusedCategoryRequestsChangeNothing checks that a query interface
// request refused after some of its categories were checked leaves every
// category as it was.
func TestRefusedCategoryRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		strict bool
		method string
		body   string
		want   int
	}{
		{"update with an unknown provider, strict", true, "PUT",
			`{"kinds":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","title":"changed"}],
			"providers":[{"Provider":{"local":["nosuch"],"remote":[]},"OCCI_ID":"` + computeK + `"}]}`, http.StatusBadRequest},
		{"update listing a kind twice", false, "PUT",
			`{"kinds":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","title":"one"},
			{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","title":"two"}]}`, http.StatusBadRequest},
		{"registration merging into a kind twice", false, "POST",
			`{"kinds":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","attributes":{"x":{"one":{"type":"string"}}}},
			{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","attributes":{"x":{"two":{"type":"string"}}}}]}`, http.StatusBadRequest},
		{"delete listing a mixin twice", false, "DELETE",
			`{"mixins":[{"term":"medium","scheme":"http://example.com/template/resource#"},
			{"term":"medium","scheme":"http://example.com/template/resource#"}]}`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				e := newEnv(t, st, occi.Options{Strict: tc.strict})
				e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
				before := e.MustRequest(http.StatusOK, "GET", "/-/", "").Body
				e.MustRequest(tc.want, tc.method, "/-/", tc.body)
				if got := e.MustRequest(http.StatusOK, "GET", "/-/", "").Body; !reflect.DeepEqual(got, before) {
					t.Errorf("categories changed by a refused request:\n got %v\nwant %v", got, before)
				}
			})
		})
	}
}
