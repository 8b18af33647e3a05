package occi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
)

// TestInputHygiene: input that would otherwise be stored other than as
// sent, or where it does not belong, is refused with 400 naming the field.
func TestInputHygiene(t *testing.T) {
	e := newEnv(t, occitest.OpenBolt(t), occi.Options{})
	e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
	longID := strings.Repeat("a", 300)
	kind := func(location string) string {
		return `{"kinds":[{"term":"k","scheme":"http://example.com/h#","location":"` + location + `"}]}`
	}
	tests := []struct {
		name, method, path, body string
		header                   []string
		field                    string
		detail                   string // the detail contains it
	}{
		{name: "invalid UTF-8 in a title", method: "POST", path: "/compute/", body: "{\"resources\":[{\"title\":\"ab\xffcd\"}]}", field: "resources[0].title", detail: "UTF-8"},
		{name: "invalid UTF-8 in an attribute", method: "POST", path: "/compute/",
			body: "{\"resources\":[{\"attributes\":{\"occi\":{\"compute\":{\"hostname\":\"h\xc3\"}}}}]}", field: "resources[0].attributes.occi.compute.hostname"},
		{name: "invalid UTF-8 in a list", method: "POST", path: "/compute/", body: "{\"resources\":[{\"id\":\"a\"},{\"mixins\":[\"x\",\"\xfe\"]}]}", field: "resources[1].mixins[1]"},
		{name: "invalid UTF-8 in a member name", method: "POST", path: "/compute/", body: "{\"resources\":[{\"attributes\":{\"k\xff\":1}}]}", field: "resources[0].attributes", detail: "member name"},
		{name: "invalid UTF-8 in a category", method: "POST", path: "/-/", body: "{\"kinds\":[{\"term\":\"t\",\"scheme\":\"http://e/\xff#\"}]}", field: "kinds[0].scheme"},
		{name: "invalid UTF-8 in text/plain", method: "POST", path: "/compute/", body: "Category: compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"\nX-OCCI-Attribute: occi.core.title=\"a\xffb\"\n",
			header: []string{"Content-Type", "text/plain"}, field: "occi.core.title"},
		{name: "location with ..", method: "POST", path: "/-/", body: kind("/../etc/"), field: "kinds[0].location", detail: `".." segment`},
		{name: "location with ?", method: "POST", path: "/-/", body: kind("/a?b/"), field: "kinds[0].location"},
		{name: "location with #", method: "POST", path: "/-/", body: kind("/a#b/"), field: "kinds[0].location"},
		{name: "location with %", method: "POST", path: "/-/", body: kind("/a%2e%2e/"), field: "kinds[0].location"},
		{name: "location with .", method: "POST", path: "/-/", body: kind("/a/./b/"), field: "kinds[0].location"},
		{name: "location with //", method: "POST", path: "/-/", body: kind("/a//b/"), field: "kinds[0].location"},
		{name: "location with a space", method: "POST", path: "/-/", body: kind("/a b/"), field: "kinds[0].location"},
		{name: "location under /-/", method: "POST", path: "/-/", body: kind("/-/k/"), field: "kinds[0].location", detail: "reserved"},
		{name: "location under /.well-known/", method: "POST", path: "/-/", body: kind("/.well-known/k/"), field: "kinds[0].location"},
		{name: "location under /health/", method: "POST", path: "/-/", body: kind("/health/k/"), field: "kinds[0].location"},
		{name: "location /metrics", method: "POST", path: "/-/", body: kind("/metrics"), field: "kinds[0].location"},
		{name: "location /events", method: "POST", path: "/-/", body: kind("/events/"), field: "kinds[0].location"},
		{name: "location under /ui/", method: "POST", path: "/-/", body: kind("/ui/k/"), field: "kinds[0].location"},
		{name: "mixin location with ..", method: "POST", path: "/-/", body: `{"mixins":[{"term":"m","scheme":"http://example.com/h#","location":"/x/../y/"}]}`, field: "mixins[0].location"},
		{name: "location in text/plain", method: "POST", path: "/-/", body: "Category: k; scheme=\"http://example.com/h#\"; class=\"kind\"; location=\"/../k/\"\n",
			header: []string{"Content-Type", "text/plain"}, field: "kinds[0].location"},
		{name: "a kind twice", method: "POST", path: "/-/", body: `{"kinds":[{"term":"k","scheme":"http://example.com/h#"},{"term":"k","scheme":"http://example.com/h#"}]}`,
			field: "kinds[1]", detail: "http://example.com/h#k appears twice"},
		{name: "a kind and a mixin of one id", method: "POST", path: "/-/", body: `{"kinds":[{"term":"k","scheme":"http://example.com/h#"}],"mixins":[{"term":"k","scheme":"http://example.com/h#"}]}`,
			field: "mixins[0]"},
		{name: "a mixin twice in an entity", method: "POST", path: "/compute/", body: `{"resources":[{"mixins":["` + medium + `","` + medium + `"]}]}`,
			field: "resources[0].mixins[1]", detail: "appears twice"},
		{name: "a long id", method: "POST", path: "/compute/", body: `{"resources":[{"id":"` + longID + `"}]}`, field: "resources[0].id", detail: "at most 255 bytes"},
		{name: "a long id in the URL", method: "PUT", path: "/compute/" + longID, body: `{"resources":[{}]}`, field: "resources[0].id", detail: "at most 255 bytes"},
		{name: "a null resource", method: "POST", path: "/compute/", body: `{"resources":[null]}`, field: "resources[0]"},
		{name: "a null after a resource", method: "POST", path: "/compute/", body: `{"resources":[{"id":"n1"},null]}`, field: "resources[1]"},
		{name: "a number as a link", method: "POST", path: "/networkinterface/", body: `{"links":[7]}`, field: "links[0]"},
		{name: "an empty kind", method: "POST", path: "/compute/", body: `{"resources":[{"kind":""}]}`, field: "resources[0].kind"},
		{name: "a blank kind", method: "POST", path: "/compute/", body: `{"resources":[{"kind":"  "}]}`, field: "resources[0].kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.MustRequest(http.StatusBadRequest, tc.method, tc.path, tc.body, tc.header...)
			if !strings.Contains(res.Header.Get("Content-Type"), "json") {
				// Text clients get a line "field: detail".
				if !strings.HasPrefix(string(res.Raw), tc.field+": ") {
					t.Errorf("answer %q does not start with the field %s", res.Raw, tc.field)
				}
				return
			}
			if res.Body["field"] != tc.field {
				t.Errorf("field %v, want %s: %s", res.Body["field"], tc.field, res.Raw)
			}
			if detail, _ := res.Body["detail"].(string); !strings.Contains(detail, tc.detail) || strings.Contains(detail, longID) {
				t.Errorf("detail %q, want it to say %q (and not to quote a long id)", detail, tc.detail)
			}
		})
	}
	// Nothing of it was stored.
	if got := e.MustRequest(http.StatusOK, "GET", "/compute/", "").Locations(); len(got) != 0 {
		t.Errorf("refused requests stored %q", got)
	}
	if res := e.MustRequest(http.StatusOK, "GET", "/-/", `{"kinds":[{"scheme":"http://example.com/h#"}]}`); len(res.Body["kinds"].([]any)) != 0 {
		t.Errorf("refused registrations stored %s", res.Raw)
	}
	// A mixin added again by a partial update is no repeat.
	e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"u1","mixins":["`+medium+`"]}]}`)
	e.MustRequest(http.StatusOK, "POST", "/compute/u1", `{"resources":[{"mixins":["`+medium+`"]}]}`)
	res := e.MustRequest(http.StatusBadRequest, "POST", "/compute/u1", `{"resources":[{"mixins":["`+medium+`","`+medium+`"]}]}`)
	if res.Body["field"] != "resources[0].mixins[1]" {
		t.Errorf("repeated mixin in a partial update: %s", res.Raw)
	}
}

// TestInvalidUTF8Headers: a text/occi request whose attribute header is
// not UTF-8 is refused naming the attribute.
func TestInvalidUTF8Headers(t *testing.T) {
	e := newEnv(t, occitest.OpenBolt(t), occi.Options{})
	e.MustRequest(http.StatusCreated, "POST", "/-/", example(t, "post_categories.json"))
	req, err := http.NewRequest("POST", e.URL+"/compute/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Content-Type"] = []string{"text/occi"}
	req.Header["Category"] = []string{`compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"`}
	req.Header["X-OCCI-Attribute"] = []string{"occi.core.title=\"a\xffb\""}
	req.Header["Accept"] = []string{"application/occi+json"}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cmbstest.NoError(t, res.Body.Close)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", res.StatusCode)
	}
}
