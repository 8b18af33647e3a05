package occi_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

const (
	compute1 = "/compute/996ad860-2a9a-504f-8861-aeafd0b2ae29"
	compute2 = "/compute/996ad860-2a9a-504f-8861-aeafd0b2ae30"
	nic      = "/networkinterface/22fe83ae-a20f-54fc-b436-cec85c94c5e8"
	medium   = "http://example.com/template/resource#medium"
	computeK = "http://schemas.ogf.org/occi/infrastructure#compute"
)

// TestPyOCNIExamples sends every pyOCNI request file, in a sensible order,
// as curl would, and checks what each one leaves behind.
func TestPyOCNIExamples(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{})
		for _, f := range []string{"post_actions.json", "post_kinds.json", "post_mixins.json", "post_categories.json"} {
			e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, f))
		}
		all := e.MustRequest(http.StatusOK, "GET", "/-/", "")
		if n := len(all.Body["kinds"].([]any)); n != 5 {
			t.Fatalf("kinds after registration: %d, want 5 (3 core + compute + networkinterface)\n%s", n, all.Raw)
		}

		// Filters: each file names what it selects.
		for _, tc := range []struct {
			file                   string
			kinds, mixins, actions []string
		}{
			{"filter_categories.json", []string{"compute"}, []string{"medium"}, []string{"start", "stop"}},
			{"get_kinds.json", []string{"compute"}, nil, nil},
			{"get_mixins.json", nil, []string{"medium"}, nil},
			{"get_actions.json", nil, nil, []string{"start", "stop"}},
		} {
			res := e.MustRequest(http.StatusOK, "GET", "/-/", example(t, tc.file))
			for class, want := range map[string][]string{"kinds": tc.kinds, "mixins": tc.mixins, "actions": tc.actions} {
				var got []string
				for _, c := range res.Body[class].([]any) {
					got = append(got, c.(map[string]any)["term"].(string))
				}
				sort.Strings(got)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %s = %v, want %v", tc.file, class, got, want)
				}
			}
		}

		for _, f := range []string{"put_actions.json", "put_kinds.json", "put_mixins.json", "put_categories.json", "put_providers.json"} {
			e.MustRequest(http.StatusOK, "PUT", "/-/", example(t, f))
		}
		kinds := e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"term":"compute"}]}`)
		if got := get(kinds.Body, "kinds.0.providers.remote.0"); got != "Bilel" {
			t.Errorf("compute providers after put_providers.json: %v", get(kinds.Body, "kinds.0.providers"))
		}

		res := e.MustRequest(http.StatusCreated, "POST", "/compute/", example(t, "post_resources.json"))
		if got := res.Header.Values("Location"); len(got) != 2 || !strings.HasSuffix(got[0], compute1) {
			t.Fatalf("Location headers %v", got)
		}
		if got := res.Body["Location"].([]any); len(got) != 2 {
			t.Fatalf("Location body %v", got)
		}
		e.MustRequest(http.StatusCreated, "POST", "/networkinterface/", example(t, "post_links.json"))
		e.MustRequest(http.StatusOK, "PUT", nic, example(t, "post_custom_link.json"))
		e.MustRequest(http.StatusOK, "PUT", compute1, example(t, "post_custom_resource.json"))

		got := e.MustRequest(http.StatusOK, "GET", compute1, "")
		if get(got.Body, "resources.0.attributes.occi.compute.speed") != 2.0 {
			t.Errorf("speed: %v", get(got.Body, "resources.0.attributes"))
		}
		if get(got.Body, "resources.0.attributes.occi.compute.state") != "inactive" {
			t.Errorf("state default not filled: %v", get(got.Body, "resources.0.attributes"))
		}
		if links := get(got.Body, "resources.0.links").([]any); len(links) != 1 || !strings.HasSuffix(links[0].(string), nic) {
			t.Errorf("links of %s: %v", compute1, links)
		}
		if get(got.Body, "resources.0.actions.0.href") != compute1+"?action=start" {
			t.Errorf("actions: %v", get(got.Body, "resources.0.actions"))
		}

		e.MustRequest(http.StatusOK, "PUT", compute1, example(t, "full_update_resource.json"))
		e.MustRequest(http.StatusOK, "POST", compute1, example(t, "partial_update_resource.json"))
		e.MustRequest(http.StatusOK, "PUT", nic, example(t, "full_update_link.json"))
		e.MustRequest(http.StatusOK, "POST", nic, example(t, "partial_update_link.json"))
		link := e.MustRequest(http.StatusOK, "GET", nic, "")
		if get(link.Body, "links.0.title") != "Mynetworkinterface" || !strings.HasSuffix(get(link.Body, "links.0.source").(string), compute1) {
			t.Errorf("link: %s", link.Raw)
		}

		below := e.MustRequest(http.StatusOK, "GET", "/", example(t, "get_res_link_b_path.json"))
		if want := []string{e.URL + compute1, e.URL + compute2, e.URL + nic}; !reflect.DeepEqual(below.Locations(), want) {
			t.Errorf("get_res_link_b_path: %v, want %v", below.Locations(), want)
		}

		// Categories in use cannot go; the answer names the reason.
		e.MustRequest(http.StatusConflict, "DELETE", "/-/", example(t, "delete_categories.json"))
		e.MustRequest(http.StatusConflict, "DELETE", "/-/", example(t, "delete_kinds.json"))
		del := e.MustRequest(http.StatusOK, "DELETE", compute2, "")
		if want := []string{e.URL + compute2, e.URL + nic}; !reflect.DeepEqual(del.Locations(), want) {
			t.Errorf("deleting a resource deletes its links: %v", del.Locations())
		}
		e.MustRequest(http.StatusNotFound, "GET", nic, "")
		e.MustRequest(http.StatusOK, "DELETE", "/compute/", "")
		e.MustRequest(http.StatusOK, "DELETE", "/-/", example(t, "delete_mixins.json"))
		e.MustRequest(http.StatusOK, "DELETE", "/-/", example(t, "delete_actions.json"))
		e.MustRequest(http.StatusOK, "DELETE", "/-/", example(t, "delete_kinds.json"))
		e.MustRequest(http.StatusNotFound, "DELETE", "/-/", example(t, "delete_categories.json"))
		left := e.MustRequest(http.StatusOK, "GET", "/-/", "")
		if n := len(left.Body["kinds"].([]any)) + len(left.Body["mixins"].([]any)) + len(left.Body["actions"].([]any)); n != 4 {
			t.Errorf("after deleting everything: %s", left.Raw)
		}
	})
}

// TestOriginalBrokenFiles checks the two pyOCNI files whose kind reads
// "http: //…" are refused with a 400 naming that kind.
func TestOriginalBrokenFiles(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusCreated, "POST", "/compute/", example(t, "post_resources.json"))
		for _, tc := range []struct{ file, method, path string }{
			{"post_custom_resource.json", "PUT", "/compute/custom-1"},
			{"full_update_resource.json", "PUT", compute1},
		} {
			data, err := os.ReadFile(filepath.Join("testdata", "original", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			body := string(data[strings.Index(string(data), "*/")+2:])
			res := e.MustRequest(http.StatusBadRequest, tc.method, tc.path, body)
			if !strings.Contains(res.Body["detail"].(string), `"http: //schemas.ogf.org/occi/infrastructure#compute"`) {
				t.Errorf("%s: detail does not name the kind: %s", tc.file, res.Raw)
			}
			if res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: content type %q", tc.file, res.Header.Get("Content-Type"))
			}
		}
		e.MustRequest(http.StatusNotFound, "GET", "/compute/custom-1", "")
	})
}

// TestPyCMBSFlow is the README's first session: the member kind and its
// provider, a member created with the original's file, listed back.
func TestPyCMBSFlow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{})
		for _, f := range []string{"post_category_cmbs_member.json", "post_category_cmbs_message.json"} {
			e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, f))
			e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, f)) // again: still one copy
		}
		e.MustRequest(http.StatusOK, "PUT", "/-/", example(t, "put_provider_cmbs_member.json"))
		e.MustRequest(http.StatusOK, "PUT", "/-/", example(t, "put_provider_cmbs_message.json"))
		res := e.MustRequest(http.StatusCreated, "POST", "/cmbs/member/", example(t, "post_member.json"))
		want := e.URL + "/cmbs/member/016ad860-2a9a-504f-8861-aeafd0b2ae29"
		if res.Header.Get("Location") != want {
			t.Errorf("Location %q, want %q", res.Header.Get("Location"), want)
		}
		list := e.MustRequest(http.StatusOK, "GET", "/cmbs/member/", "")
		if !reflect.DeepEqual(list.Locations(), []string{want}) {
			t.Errorf("members: %v", list.Locations())
		}
		for _, f := range []string{"post_message_l1.json", "post_message_l2.json", "post_message_l31.json", "post_message_l32.json", "post_message_l4.json"} {
			e.MustRequest(http.StatusCreated, "POST", "/cmbs/message/", example(t, f))
		}
		msgs := e.MustRequest(http.StatusOK, "GET", "/cmbs/message/", "")
		if len(msgs.Locations()) != 5 {
			t.Errorf("messages: %v", msgs.Locations())
		}
		l2 := e.MustRequest(http.StatusOK, "GET", "/cmbs/message/l2/", "")
		if len(l2.Locations()) != 1 {
			t.Errorf("l2 mixin collection: %v", l2.Locations())
		}
		cats := e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"term":"member"}]}`)
		if n := len(cats.Body["kinds"].([]any)); n != 1 {
			t.Errorf("member kinds: %d", n)
		}
		// The same request through the alternative query interface path.
		e.MustRequest(http.StatusOK, "GET", "/.well-known/org/ogf/occi/-/", "")
	})
}

// TestErrors covers each refusal: status, a problem body naming the field,
// and nothing changed.
func TestErrors(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusCreated, "POST", "/compute/", example(t, "post_resources.json"))
		e.MustRequest(http.StatusCreated, "POST", "/-/", `{"kinds":[{"term":"vm","scheme":"http://example.com/t#","location":"/vm/",
			"attributes":{"t":{"name":{"type":"string","required":true},"size":{"type":"number","mutable":false,"default":1}}}}]}`)
		before := e.MustRequest(http.StatusOK, "GET", "/", "")
		for _, tc := range []struct {
			name, method, path, body string
			hdr                      []string
			status                   int
			field                    string
		}{
			{"unknown kind", "POST", "/compute/", `{"resources":[{"kind":"http://nowhere#x"}]}`, nil, 400, "resources[0].kind"},
			{"kind of another location", "POST", "/compute/", `{"resources":[{"kind":"http://example.com/t#vm","attributes":{"t":{"name":"a"}}}]}`, nil, 400, "resources[0].kind"},
			{"unknown mixin", "POST", "/compute/", `{"resources":[{"mixins":["http://nowhere#m"]}]}`, nil, 400, "resources[0].mixins[0]"},
			{"missing required", "POST", "/vm/", `{"resources":[{"id":"v1"}]}`, nil, 400, "t.name"},
			{"duplicate id", "POST", "/compute/", `{"resources":[{"id":"996ad860-2a9a-504f-8861-aeafd0b2ae29"}]}`, nil, 409, "resources[0].id"},
			{"duplicate in request", "POST", "/vm/", `{"resources":[{"id":"v2","attributes":{"t":{"name":"a"}}},{"id":"v2","attributes":{"t":{"name":"b"}}}]}`, nil, 400, "resources[1].id"},
			{"bad id", "POST", "/vm/", `{"resources":[{"id":"a/b","attributes":{"t":{"name":"a"}}}]}`, nil, 400, "resources[0].id"},
			{"malformed json", "POST", "/compute/", `{"resources":[`, nil, 400, ""},
			{"wrong member type", "POST", "/compute/", `{"resources":{"kind":1}}`, nil, 400, "resources"},
			{"unknown member", "POST", "/compute/", `{"resource":[]}`, nil, 400, "resource"},
			{"empty create", "POST", "/compute/", `{"resources":[]}`, nil, 400, "resources"},
			{"link without target", "POST", "/networkinterface/", `{"links":[{"source":"` + compute1 + `"}]}`, nil, 400, "links[0].target"},
			{"link to nothing", "POST", "/networkinterface/", `{"links":[{"source":"` + compute1 + `","target":"/compute/none"}]}`, nil, 400, "links[0].target"},
			{"unknown path", "GET", "/nothing/here", "", nil, 404, ""},
			{"unknown entity update", "POST", "/compute/none", `{"resources":[{}]}`, nil, 404, ""},
			{"wrong method on query interface", "PATCH", "/-/", "", nil, 405, ""},
			{"wrong method on kind", "PUT", "/compute/", `{}`, nil, 405, ""},
			{"wrong method on path", "POST", "/template/", `{}`, nil, 405, ""},
			{"unsupported content type", "POST", "/compute/", `a=b`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "Content-Type"},
			{"unacceptable accept", "GET", "/compute/", "", []string{"Accept", "text/html"}, 406, "Accept"},
			{"unknown action", "POST", compute1 + "?action=explode", `{}`, nil, 400, "action"},
			{"unknown collection action", "POST", "/compute/?action=explode", `{}`, nil, 400, "action"},
			{"kind cannot change", "PUT", compute1, `{"resources":[{"kind":"http://example.com/t#vm"}]}`, nil, 400, "resources[0].kind"},
			{"id cannot change", "POST", compute1, `{"resources":[{"id":"other"}]}`, nil, 400, "resources[0].id"},
			{"two entities in a PUT", "PUT", compute1, `{"resources":[{},{}]}`, nil, 400, "resources"},
			{"category without scheme", "POST", "/-/", `{"kinds":[{"term":"x"}]}`, nil, 400, "kinds[0]"},
			{"category at reserved location", "POST", "/-/", `{"kinds":[{"term":"x","scheme":"http://e#","location":"/-/"}]}`, nil, 400, "kinds[0].location"},
			{"category location taken", "POST", "/-/", `{"kinds":[{"term":"x","scheme":"http://e#","location":"/compute/"}]}`, nil, 409, "kinds[0].location"},
			{"category class change", "POST", "/-/", `{"mixins":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#"}]}`, nil, 409, "mixins[0]"},
			{"update unknown category", "PUT", "/-/", `{"kinds":[{"term":"x","scheme":"http://e#"}]}`, nil, 404, "kinds[0]"},
			{"location cannot change", "PUT", "/-/", `{"kinds":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#","location":"/elsewhere/"}]}`, nil, 400, "kinds[0].location"},
			{"providers for unknown kind", "PUT", "/-/", `{"providers":[{"Provider":{"local":["dummy"]},"OCCI_ID":"http://nowhere#x"}]}`, nil, 404, "providers[0].OCCI_ID"},
			{"delete core kind", "DELETE", "/-/", `{"kinds":[{"term":"resource","scheme":"http://schemas.ogf.org/occi/core#"}]}`, nil, 400, "kinds[0]"},
			{"delete kind in use", "DELETE", "/-/", `{"kinds":[{"term":"compute","scheme":"http://schemas.ogf.org/occi/infrastructure#"}]}`, nil, 409, "kinds[0]"},
			{"unknown query member", "POST", "/-/", `{"kind":[]}`, nil, 400, "kind"},
			{"associate unknown entity", "POST", "/template/resource/medium/", `{"X-OCCI-Location":["/compute/none"]}`, nil, 400, "X-OCCI-Location[0]"},
			{"associate without list", "POST", "/template/resource/medium/", `{}`, nil, 400, "X-OCCI-Location"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := e.Request(tc.method, tc.path, tc.body, tc.hdr...)
				if res.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Raw)
				}
				if res.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("content type %q", res.Header.Get("Content-Type"))
				}
				if res.Body["status"] != float64(tc.status) || res.Body["detail"] == "" || res.Body["title"] == "" {
					t.Errorf("problem body %s", res.Raw)
				}
				if field, _ := res.Body["field"].(string); field != tc.field {
					t.Errorf("field %q, want %q (%s)", field, tc.field, res.Raw)
				}
				if tc.status == 405 && res.Header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
			})
		}
		after := e.MustRequest(http.StatusOK, "GET", "/", "")
		if !reflect.DeepEqual(before.Body, after.Body) {
			t.Errorf("refused requests changed the store: %v -> %v", before.Body, after.Body)
		}
		// Immutable attributes: set at create, refused on update.
		e.MustRequest(http.StatusCreated, "POST", "/vm/", `{"resources":[{"id":"v1","attributes":{"t":{"name":"a"}}}]}`)
		res := e.MustRequest(http.StatusBadRequest, "POST", "/vm/v1", `{"resources":[{"attributes":{"t":{"size":2}}}]}`)
		if res.Body["field"] != "t.size" {
			t.Errorf("immutable: %s", res.Raw)
		}
		e.MustRequest(http.StatusOK, "POST", "/vm/v1", `{"resources":[{"attributes":{"t":{"size":1,"name":"b"}}}]}`)
	})
}

// TestStrictMode checks the original's files pass by default and strict
// mode refuses their type and pattern violations, naming the attribute.
func TestStrictMode(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{Strict: true})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_category_cmbs_member.json"))
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_category_cmbs_message.json"))
		res := e.MustRequest(http.StatusBadRequest, "POST", "/cmbs/member/", example(t, "post_member.json"))
		if !strings.HasPrefix(res.Body["field"].(string), "cmbs.member.") || !strings.Contains(res.Body["detail"].(string), "pattern") {
			t.Errorf("member: %s", res.Raw)
		}
		res = e.MustRequest(http.StatusBadRequest, "POST", "/cmbs/message/", example(t, "post_message_l2.json"))
		if !strings.HasPrefix(res.Body["field"].(string), "cmbs.message.") {
			t.Errorf("message: %s", res.Raw)
		}
		e.MustRequest(http.StatusCreated, "POST", "/cmbs/member/", `{"resources":[{"id":"m1","kind":"http://houssem.org/cmbs#member",
			"attributes":{"cmbs":{"member":{"local":"true","state":"active","neighbors_socket":[],"topics":[]}}}}]}`)
		e.MustRequest(http.StatusBadRequest, "PUT", "/-/", example(t, "put_provider_cmbs_member.json"))
	})
}

// recorder is a provider that records its calls and fails on demand.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  string
}

func (p *recorder) note(op string, e *occi.Entity) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, op+" "+e.ID)
	if op == p.fail {
		return occi.BadRequest("", "provider refuses %s", op)
	}
	if op == "explode" {
		return errors.New("boom")
	}
	return nil
}
func (p *recorder) Create(_ context.Context, e *occi.Entity) error { return p.note("create", e) }
func (p *recorder) Read(_ context.Context, e *occi.Entity) error {
	e.SetAttr("occi.compute.hostname", "from-provider")
	return p.note("read", e)
}
func (p *recorder) Update(_ context.Context, _, e *occi.Entity) error { return p.note("update", e) }
func (p *recorder) Delete(_ context.Context, e *occi.Entity) error    { return p.note("delete", e) }
func (p *recorder) Action(_ context.Context, e *occi.Entity, inv occi.ActionInvocation) (*occi.ActionResult, error) {
	if err := p.note(inv.Term, e); err != nil {
		return nil, err
	}
	return &occi.ActionResult{Status: http.StatusAccepted, Body: map[string]string{"did": inv.Term}}, nil
}

// TestProviders checks the calls around each write and that a provider
// error aborts the write.
func TestProviders(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		rec := &recorder{}
		reg := occi.NewRegistry(occitest.Quiet())
		reg.Register("rec", rec)
		e := newEnv(t, st, occi.Options{Providers: reg})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusOK, "PUT", "/-/", `{"providers":[{"Provider":{"local":["rec","dummy","absent"],"remote":[]},"OCCI_ID":"`+computeK+`"}]}`)
		e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"}]}`)
		got := e.MustRequest(http.StatusOK, "GET", "/compute/a", "")
		if get(got.Body, "resources.0.attributes.occi.compute.hostname") != "from-provider" {
			t.Errorf("Read did not shape the answer: %s", got.Raw)
		}
		e.MustRequest(http.StatusOK, "POST", "/compute/a", `{"resources":[{"title":"x"}]}`)
		res := e.MustRequest(http.StatusAccepted, "POST", "/compute/a?action=start", `{}`)
		if res.Body["did"] != "start" {
			t.Errorf("action answer %s", res.Raw)
		}
		e.MustRequest(http.StatusOK, "POST", "/compute/?action=http://schemas.ogf.org/occi/infrastructure/compute/action%23stop", `{}`)
		rec.fail = "create"
		e.MustRequest(http.StatusBadRequest, "POST", "/compute/", `{"resources":[{"id":"b"}]}`)
		e.MustRequest(http.StatusNotFound, "GET", "/compute/b", "")
		rec.fail = "update"
		e.MustRequest(http.StatusBadRequest, "PUT", "/compute/a", `{"resources":[{"title":"y"}]}`)
		rec.fail = "delete"
		e.MustRequest(http.StatusBadRequest, "DELETE", "/compute/a", "")
		rec.fail = ""
		e.MustRequest(http.StatusOK, "DELETE", "/compute/a", "")
		want := []string{"create a", "read a", "update a", "start a", "stop a", "create b", "update a", "delete a", "delete a"}
		if !reflect.DeepEqual(rec.calls, want) {
			t.Errorf("calls %v\nwant  %v", rec.calls, want)
		}
	})
}

// TestMixinAssociation covers POST, PUT and DELETE on a mixin location and
// the path interface around them.
func TestMixinAssociation(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
		e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"},{"id":"b"},{"id":"c"}]}`)
		mix := "/template/resource/medium/"
		e.MustRequest(http.StatusOK, "POST", mix, `{"X-OCCI-Location":["`+e.URL+`/compute/a","/compute/b"]}`)
		if got := e.MustRequest(http.StatusOK, "GET", mix, "").Locations(); len(got) != 2 {
			t.Fatalf("after POST: %v", got)
		}
		a := e.MustRequest(http.StatusOK, "GET", "/compute/a", "")
		if get(a.Body, "resources.0.attributes.occi.compute.speed") != 2.8 || get(a.Body, "resources.0.mixins.0") != medium {
			t.Errorf("mixin default not applied: %s", a.Raw)
		}
		e.MustRequest(http.StatusOK, "PUT", mix, `{"X-OCCI-Location":["/compute/c"]}`)
		if got := e.MustRequest(http.StatusOK, "GET", mix, "").Locations(); !reflect.DeepEqual(got, []string{e.URL + "/compute/c"}) {
			t.Fatalf("after PUT: %v", got)
		}
		e.MustRequest(http.StatusOK, "DELETE", mix, `{"X-OCCI-Location":["/compute/c"]}`)
		if got := e.MustRequest(http.StatusOK, "GET", mix, "").Locations(); len(got) != 0 {
			t.Fatalf("after DELETE: %v", got)
		}
		// Filters at a kind location.
		e.MustRequest(http.StatusOK, "POST", "/compute/b", `{"resources":[{"attributes":{"occi":{"compute":{"cores":4}}}}]}`)
		f := e.MustRequest(http.StatusOK, "GET", "/compute/", `{"resources":[{"attributes":{"occi":{"compute":{"cores":4}}}}]}`)
		if !reflect.DeepEqual(f.Locations(), []string{e.URL + "/compute/b"}) {
			t.Errorf("filter: %v", f.Locations())
		}
		f = e.MustRequest(http.StatusOK, "GET", "/compute/", `{"attributes":{"occi.compute.cores":4}}`)
		if !reflect.DeepEqual(f.Locations(), []string{e.URL + "/compute/b"}) {
			t.Errorf("dotted filter: %v", f.Locations())
		}
		// Path interface: the root lists sub-paths; DELETE below a path.
		root := e.MustRequest(http.StatusOK, "GET", "/", "")
		if !reflect.DeepEqual(root.Locations(), []string{e.URL + "/compute/"}) {
			t.Errorf("root: %v", root.Locations())
		}
		e.MustRequest(http.StatusOK, "GET", "/compute", "")
		del := e.MustRequest(http.StatusOK, "DELETE", "/compute/", "")
		if len(del.Locations()) != 3 {
			t.Errorf("deleted %v", del.Locations())
		}
		if again := e.MustRequest(http.StatusOK, "DELETE", "/compute/", ""); len(again.Locations()) != 0 {
			t.Errorf("second delete: %v", again.Locations())
		}
		e.MustRequest(http.StatusNotFound, "DELETE", "/nothing/", "")
	})
}

// TestPublicURL checks absolute URLs follow --public-url when set.
func TestPublicURL(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, occi.Options{PublicURL: "https://cmbs.example.org/api/"})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_kinds.json"))
		res := e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"}]}`)
		if got := res.Header.Get("Location"); got != "https://cmbs.example.org/api/compute/a" {
			t.Errorf("Location %q", got)
		}
	})
	if _, err := occi.NewServer(occi.Options{Store: nil}); err == nil {
		t.Error("NewServer without a store")
	}
}

// TestCategoriesSharedStore runs two servers on one store, as two cmbs
// processes on one CouchDB database: what one registers or removes, the
// other serves at once, whatever it had cached.
func TestCategoriesSharedStore(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		a := newEnv(t, st, occi.Options{})
		b := newEnv(t, st, occi.Options{})
		b.MustRequest(http.StatusOK, "GET", "/-/", "") // b caches what there is
		a.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_kinds.json"))
		cmbstest.Eventually(t, "b to serve /compute/", func() bool { return b.Request("GET", "/compute/", "").Status == http.StatusOK })
		b.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"x"}]}`)
		b.MustRequest(http.StatusOK, "DELETE", "/compute/x", "")
		a.MustRequest(http.StatusOK, "DELETE", "/-/", example(t, "delete_kinds.json"))
		cmbstest.Eventually(t, "b to refuse /compute/", func() bool {
			return b.Request("POST", "/compute/", `{"resources":[{"id":"y"}]}`).Status == http.StatusMethodNotAllowed
		})
	})
}

// scribbler is a provider that writes to the entity it is asked to delete,
// as a provider keeping its own state on the entity does.
type scribbler struct {
	occi.Dummy
	st store.Store
}

func (p scribbler) Delete(ctx context.Context, e *occi.Entity) error {
	_, err := occi.UpdateEntity(ctx, p.st, e.Location, func(e *occi.Entity) error {
		e.SetAttr("occi.compute.hostname", "written during delete")
		return nil
	})
	return err
}

// TestDeleteOfAChangingEntity: a DELETE names no revision, so a write made
// meanwhile does not keep the entity alive.
func TestDeleteOfAChangingEntity(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		reg := occi.NewRegistry(occitest.Quiet())
		reg.Register("scribbler", scribbler{Dummy: occi.Dummy{Log: occitest.Quiet()}, st: st})
		e := newEnv(t, st, occi.Options{Providers: reg})
		e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_kinds.json"))
		e.MustRequest(http.StatusOK, "PUT", "/-/", `{"providers":[{"Provider":{"local":["scribbler"],"remote":[]},"OCCI_ID":"`+computeK+`"}]}`)
		e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"a"}]}`)
		e.MustRequest(http.StatusOK, "DELETE", "/compute/a", "")
		e.MustRequest(http.StatusNotFound, "GET", "/compute/a", "")
	})
}
