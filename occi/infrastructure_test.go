package occi_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// TestPyOCNIExamplesWithInfrastructure sends pyOCNI's request files to a
// server that registered the infrastructure model at start. Their compute
// and networkinterface kinds are the model's, at the same locations, so
// posting them merges into the registered kinds, and every file is
// answered with the status it gets without the model.
func TestPyOCNIExamplesWithInfrastructure(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{WithInfrastructure: true})
		for _, step := range []struct {
			method, path, file string
			status             int
		}{
			{"POST", "/-/", "post_actions.json", 201},
			{"POST", "/-/", "post_kinds.json", 201},
			{"POST", "/-/", "post_mixins.json", 201},
			{"POST", "/-/", "post_categories.json", 201},
			{"POST", "/-/", "post_categories.json", 201},
			{"GET", "/-/", "filter_categories.json", 200},
			{"PUT", "/-/", "put_actions.json", 200},
			{"PUT", "/-/", "put_kinds.json", 200},
			{"PUT", "/-/", "put_mixins.json", 200},
			{"PUT", "/-/", "put_categories.json", 200},
			{"PUT", "/-/", "put_providers.json", 200},
			{"POST", "/compute/", "post_resources.json", 201},
			{"POST", "/networkinterface/", "post_links.json", 201},
			{"PUT", nic, "post_custom_link.json", 200},
			{"PUT", compute1, "post_custom_resource.json", 200},
			{"PUT", compute1, "full_update_resource.json", 200},
			{"POST", compute1, "partial_update_resource.json", 200},
			{"PUT", nic, "full_update_link.json", 200},
			{"POST", nic, "partial_update_link.json", 200},
			{"GET", "/", "get_res_link_b_path.json", 200},
			{"DELETE", "/-/", "delete_categories.json", 409},
			{"DELETE", compute2, "", 200},
			{"DELETE", "/compute/", "", 200},
			{"DELETE", "/-/", "delete_mixins.json", 200},
			{"DELETE", "/-/", "delete_actions.json", 200},
			{"DELETE", "/-/", "delete_kinds.json", 200},
			{"DELETE", "/-/", "delete_categories.json", 404},
		} {
			body := ""
			if step.file != "" {
				body = example(t, step.file)
			}
			res := e.MustRequest(step.status, step.method, step.path, body)
			if step.file == "post_resources.json" && len(res.Body["Location"].([]any)) != 2 {
				t.Errorf("post_resources.json: %s", res.Raw)
			}
			if step.file == "post_categories.json" {
				// The merged compute kind keeps the model's parent and
				// definitions: pyOCNI's hostname pattern, which rejects
				// host names with dots, does not replace the model's.
				k := e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"term":"compute","scheme":"`+occi.InfraScheme+`"}]}`)
				if !reflect.DeepEqual(get(k.Body, "kinds.0.related"), []any{occi.ResourceKind}) ||
					get(k.Body, "kinds.0.attributes.occi.compute.cores.type") != "integer" ||
					get(k.Body, "kinds.0.attributes.occi.compute.hostname.pattern") != nil ||
					!strings.Contains(get(k.Body, "kinds.0.attributes.occi.compute.state.pattern").(string), "error") {
					t.Errorf("merged compute kind: %s", k.Raw)
				}
			}
		}
	})
}

// TestInfrastructureCategories checks the model is well formed: every
// kind and mixin has a location and the dummy provider, every action a
// kind offers is in the model, and Init can run again.
func TestInfrastructureCategories(t *testing.T) {
	t.Parallel()
	cats := occi.InfrastructureCategories()
	ids := map[string]*occi.Category{}
	for _, c := range cats {
		if _, dup := ids[c.ID()]; dup {
			t.Errorf("%s twice", c.ID())
		}
		ids[c.ID()] = c
	}
	terms := map[string]bool{}
	for _, c := range cats {
		switch c.Class {
		case occi.ClassAction:
			terms[c.Term] = true
		default:
			if c.Location == "" || c.Providers == nil || !reflect.DeepEqual(c.Providers.Local, []string{"dummy"}) {
				t.Errorf("%s: location %q, providers %v", c.ID(), c.Location, c.Providers)
			}
		}
		for _, a := range c.Actions {
			if ids[a] == nil || ids[a].Class != occi.ClassAction {
				t.Errorf("%s offers %s, which is not in the model", c.ID(), a)
			}
		}
	}
	for _, term := range []string{"start", "stop", "restart", "suspend", "online", "offline", "backup", "snapshot", "resize", "up", "down"} {
		if !terms[term] {
			t.Errorf("no action %s", term)
		}
	}
	for _, id := range []string{occi.ComputeKind, occi.StorageKind, occi.NetworkKind, occi.NetworkInterfaceKind, occi.StorageLinkKind,
		occi.IPNetworkMixin, occi.IPNetworkIfaceMixin, occi.OSTemplateMixin, occi.ResourceTemplate} {
		if ids[id] == nil {
			t.Errorf("%s missing", id)
		}
	}
	var osTpl, resTpl int
	for _, c := range cats {
		if len(c.Related) == 1 && c.Related[0] == occi.OSTemplateMixin {
			osTpl++
		}
		if len(c.Related) == 1 && c.Related[0] == occi.ResourceTemplate {
			resTpl++
		}
	}
	if osTpl == 0 || resTpl == 0 {
		t.Errorf("templates: %d os_tpl, %d resource_tpl", osTpl, resTpl)
	}
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{WithInfrastructure: true})
		before := e.MustRequest(http.StatusOK, "GET", "/-/", "")
		if err := e.OCCI.Init(t.Context()); err != nil {
			t.Fatalf("second Init: %v", err)
		}
		after := e.MustRequest(http.StatusOK, "GET", "/-/", "")
		if !reflect.DeepEqual(before.Body, after.Body) {
			t.Errorf("a second Init changed the categories")
		}
		// A resource template's defaults fill the compute kind's
		// attributes, which have none.
		e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a","mixins":["http://schemas.cmbs.local/occi/infrastructure/resource_tpl#large"]}]}`)
		a := e.MustRequest(http.StatusOK, "GET", "/compute/a", "")
		if get(a.Body, "resources.0.attributes.occi.compute.cores") != 4.0 || get(a.Body, "resources.0.attributes.occi.compute.memory") != 8.0 {
			t.Errorf("large template defaults: %s", a.Raw)
		}
	})
}

// TestPostKeepsBuiltinDefinitions posts categories over registered ones:
// a built-in kind (registered by the server) gains the new attributes but
// keeps its own definitions, while a client's kind takes the definitions
// posted again, as pyOCNI merges them.
func TestPostKeepsBuiltinDefinitions(t *testing.T) {
	e := newEnv(t, occitest.OpenBolt(t), occi.Options{WithInfrastructure: true})
	kind := func(term, scheme, location string, attrs string) string {
		return `{"kinds":[{"term":"` + term + `","scheme":"` + scheme + `","location":"` + location + `","attributes":` + attrs + `}]}`
	}
	e.MustRequest(http.StatusCreated, "POST", "/-/", kind("compute", occi.InfraScheme, "/compute/",
		`{"occi":{"compute":{"cores":{"type":"string","pattern":"x"},"rack":{"type":"string"}}}}`))
	k := e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"term":"compute","scheme":"`+occi.InfraScheme+`"}]}`)
	if get(k.Body, "kinds.0.attributes.occi.compute.cores.type") != "integer" || get(k.Body, "kinds.0.attributes.occi.compute.cores.pattern") != nil ||
		get(k.Body, "kinds.0.attributes.occi.compute.rack.type") != "string" {
		t.Errorf("built-in compute after a POST: %s", k.Raw)
	}

	const scheme = "http://example.org/occi#"
	e.MustRequest(http.StatusCreated, "POST", "/-/", kind("thing", scheme, "/thing/", `{"org":{"size":{"type":"string"}}}`))
	e.MustRequest(http.StatusCreated, "POST", "/-/", kind("thing", scheme, "/thing/", `{"org":{"size":{"type":"number"}}}`))
	k = e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"term":"thing","scheme":"`+scheme+`"}]}`)
	if get(k.Body, "kinds.0.attributes.org.size.type") != "number" {
		t.Errorf("a client's kind posted again: %s", k.Raw)
	}
}
