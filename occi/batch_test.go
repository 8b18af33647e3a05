package occi_test

import (
	"net/http"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// TestBatchCreateAllOrNothing: a multi-entity POST that fails on any of
// its entities, in the checks, a provider or the store, stores none.
func TestBatchCreateAllOrNothing(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  int
		field string
	}{
		{"existing id last", `{"resources":[{"id":"n1"},{"id":"n2"},{"id":"old"}]}`, http.StatusConflict, "resources[2].id"},
		{"provider refuses one", `{"resources":[{"id":"n1"},{"id":"refused"},{"id":"n2"}]}`, http.StatusBadRequest, ""},
		{"id twice", `{"resources":[{"id":"n1"},{"id":"n2"},{"id":"n1"}]}`, http.StatusBadRequest, "resources[2].id"},
		{"link to a missing resource", `{"resources":[{"id":"n1","links":[{"kind":"` + occi.LinkKind + `","target":"/compute/nowhere"}]}]}`, http.StatusBadRequest, "resources[0].links[0].target"},
	}
	forEachStore(t, func(t *testing.T, st store.Store) {
		reg := occi.NewRegistry(occitest.Quiet())
		reg.Register("refuser", refuser{"create", "refused"})
		e := newEnv(t, st, occi.Options{Providers: reg})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusOK, "PUT", "/-/", `{"providers":[{"Provider":{"local":["refuser"],"remote":[]},"OCCI_ID":"`+computeK+`"}]}`)
		e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"old"}]}`)
		for _, tc := range tests {
			res := e.MustRequest(tc.want, "POST", "/compute/", tc.body)
			if tc.field != "" && res.Body["field"] != tc.field {
				t.Errorf("%s: field %v, want %s (%s)", tc.name, res.Body["field"], tc.field, res.Raw)
			}
			for _, p := range []string{"/compute/n1", "/compute/n2", "/compute/refused"} {
				if res := e.Request("GET", p, ""); res.Status != http.StatusNotFound {
					t.Errorf("%s: %s was stored (%d)", tc.name, p, res.Status)
				}
			}
		}
		got := e.MustRequest(http.StatusOK, "GET", "/compute/", "").Locations()
		if len(got) != 1 {
			t.Errorf("compute after the refused batches: %q", got)
		}
	})
}
