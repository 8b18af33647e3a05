package occi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

// dialect is how a client of one rendering writes requests and reads
// answers, written from the spec and independent of the server's code.
type dialect struct {
	name   string
	accept string
	// entity renders a create or update body: kind and mixins (either may
	// be empty) and attributes by dotted name, occi.core.* included.
	entity func(kind string, mixins []string, attrs map[string]any) (body string, hdr []string)
	// category renders a query interface filter naming one category.
	category func(term, scheme, class string) (body string, hdr []string)
	// action renders an action invocation.
	action func(id string) (body string, hdr []string)
	// categories, attributes and locations read answers.
	categories func(r occitest.Response) []string
	attributes func(r occitest.Response) (kind string, attrs map[string]any)
	locations  func(r occitest.Response) []string
}

var categoryLine = regexp.MustCompile(`^\s*([^;\s]+)\s*;\s*scheme="([^"]+)"`)

// textValue reads an attribute value of the text renderings: quoted
// strings are JSON-compatible, as are numbers and booleans.
func textValue(t *testing.T, raw string) any {
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("attribute value %s: %v", raw, err)
	}
	return v
}

func textLine(name string, v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%s=%q", name, s)
	}
	return fmt.Sprintf("%s=%v", name, v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func splitID(id string) (term, scheme string) {
	i := strings.LastIndexByte(id, '#')
	return id[i+1:], id[:i+1]
}

// textDialect is text/plain (lines in the body) or text/occi (the same
// lines as headers).
func textDialect(t *testing.T, media string) dialect {
	inHeaders := media == "text/occi"
	// pack returns lines as a body or as header pairs.
	pack := func(lines [][2]string) (string, []string) {
		var body strings.Builder
		var hdr []string
		for _, l := range lines {
			if inHeaders {
				hdr = append(hdr, l[0], l[1])
			} else {
				body.WriteString(l[0] + ": " + l[1] + "\n")
			}
		}
		return body.String(), append([]string{"Content-Type", media}, headerPairs(hdr)...)
	}
	catValue := func(id, class string) string {
		term, scheme := splitID(id)
		return fmt.Sprintf(`%s; scheme="%s"; class="%s"`, term, scheme, class)
	}
	// lines reads an answer: body lines, or the OCCI headers.
	lines := func(r occitest.Response, name string) []string {
		if inHeaders {
			return r.Header.Values(name)
		}
		var out []string
		for _, l := range strings.Split(string(r.Raw), "\n") {
			if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, name) {
				out = append(out, strings.TrimSpace(v))
			}
		}
		return out
	}
	return dialect{
		name:   media,
		accept: media,
		entity: func(kind string, mixins []string, attrs map[string]any) (string, []string) {
			var ls [][2]string
			if kind != "" {
				ls = append(ls, [2]string{"Category", catValue(kind, "kind")})
			}
			for _, m := range mixins {
				ls = append(ls, [2]string{"Category", catValue(m, "mixin")})
			}
			for _, k := range sortedKeys(attrs) {
				ls = append(ls, [2]string{"X-OCCI-Attribute", textLine(k, attrs[k])})
			}
			return pack(ls)
		},
		category: func(term, scheme, class string) (string, []string) {
			return pack([][2]string{{"Category", catValue(scheme+term, class)}})
		},
		action: func(id string) (string, []string) {
			return pack([][2]string{{"Category", catValue(id, "action")}})
		},
		categories: func(r occitest.Response) []string {
			var out []string
			for _, l := range lines(r, "Category") {
				m := categoryLine.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("Category %q", l)
				}
				out = append(out, m[2]+m[1])
			}
			return out
		},
		attributes: func(r occitest.Response) (string, map[string]any) {
			attrs := map[string]any{}
			for _, l := range lines(r, "X-OCCI-Attribute") {
				name, raw, _ := strings.Cut(l, "=")
				attrs[name] = textValue(t, raw)
			}
			kind := ""
			for _, l := range lines(r, "Category") {
				if strings.Contains(l, `class="kind"`) {
					m := categoryLine.FindStringSubmatch(l)
					kind = m[2] + m[1]
				}
			}
			return kind, attrs
		},
		locations: func(r occitest.Response) []string { return lines(r, "X-OCCI-Location") },
	}
}

// headerPairs keeps the header pairs; text/occi sends repeated headers,
// which env.do sets one by one, so equal names are joined with commas.
func headerPairs(pairs []string) []string {
	joined := map[string][]string{}
	var order []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, seen := joined[pairs[i]]; !seen {
			order = append(order, pairs[i])
		}
		joined[pairs[i]] = append(joined[pairs[i]], pairs[i+1])
	}
	var out []string
	for _, name := range order {
		out = append(out, name, strings.Join(joined[name], ", "))
	}
	return out
}

// json12Dialect is the OCCI 1.2 JSON rendering, asked for by version=1.2.
func json12Dialect(t *testing.T) dialect {
	const media = "application/occi+json; version=1.2"
	hdr := []string{"Content-Type", media}
	decode := func(r occitest.Response) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(r.Raw, &m); err != nil {
			t.Fatalf("answer is not OCCI 1.2 JSON: %v\n%s", err, r.Raw)
		}
		return m
	}
	marshal := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	return dialect{
		name:   "OCCI 1.2 JSON",
		accept: media,
		entity: func(kind string, mixins []string, attrs map[string]any) (string, []string) {
			doc := map[string]any{"attributes": attrs}
			if kind != "" {
				doc["kind"] = kind
			}
			if mixins != nil {
				doc["mixins"] = mixins
			}
			if kind == "" {
				// An update without a kind goes in a collection.
				return marshal(map[string]any{"resources": []any{doc}}), hdr
			}
			return marshal(doc), hdr
		},
		category: func(term, scheme, class string) (string, []string) {
			return marshal(map[string]any{class + "s": []any{map[string]any{"term": term, "scheme": scheme}}}), hdr
		},
		action: func(id string) (string, []string) {
			return marshal(map[string]any{"action": id}), hdr
		},
		categories: func(r occitest.Response) []string {
			m := decode(r)
			var out []string
			for _, class := range []string{"kinds", "mixins", "actions"} {
				list, ok := m[class].([]any)
				if !ok {
					t.Fatalf("no %s in %s", class, r.Raw)
				}
				for _, c := range list {
					c := c.(map[string]any)
					out = append(out, c["scheme"].(string)+c["term"].(string))
				}
			}
			return out
		},
		attributes: func(r occitest.Response) (string, map[string]any) {
			m := decode(r)
			kind, _ := m["kind"].(string)
			attrs, _ := m["attributes"].(map[string]any)
			return kind, attrs
		},
		locations: func(r occitest.Response) []string {
			m := decode(r)
			var out []string
			if list, ok := m["locations"].([]any); ok {
				for _, u := range list {
					out = append(out, u.(string))
				}
				return out
			}
			// A collection: its entities, by id, at their kind's location.
			for _, key := range []string{"resources", "links"} {
				list, _ := m[key].([]any)
				for _, e := range list {
					e := e.(map[string]any)
					term, _ := splitID(e["kind"].(string))
					out = append(out, goldenURL+"/"+term+"/"+e["id"].(string))
				}
			}
			sort.Strings(out)
			return out
		},
	}
}

// TestInfrastructureLifecycle drives the whole OCCI life cycle with the
// infrastructure kinds in text/plain, text/occi and OCCI 1.2 JSON:
// discovery, filtering, creates with 201 and Location, a network
// interface, reads of entities and collections, a partial update, action
// start, deletes and 404 after them.
func TestInfrastructureLifecycle(t *testing.T) {
	t.Parallel()
	for _, mk := range []func(*testing.T) dialect{
		func(t *testing.T) dialect { return textDialect(t, "text/plain") },
		func(t *testing.T) dialect { return textDialect(t, "text/occi") },
		json12Dialect,
	} {
		t.Run(mk(t).name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				lifecycle(t, newEnv(t, st, occi.Options{WithInfrastructure: true, PublicURL: goldenURL}), mk(t))
			})
		})
	}
}

func lifecycle(t *testing.T, e *env, d dialect) {
	const (
		small = "http://schemas.cmbs.local/occi/infrastructure/resource_tpl#small"
		start = "http://schemas.ogf.org/occi/infrastructure/compute/action#start"
	)
	accept := []string{"Accept", d.accept}
	send := func(want int, method, path, body string, hdr []string) occitest.Response {
		t.Helper()
		return e.MustRequest(want, method, path, body, append(append([]string{"Content-Type", ""}, hdr...), accept...)...)
	}

	// Discovery: the infrastructure model is in the query interface.
	all := d.categories(send(http.StatusOK, "GET", "/-/", "", nil))
	for _, id := range []string{occi.ComputeKind, occi.StorageKind, occi.NetworkKind, occi.NetworkInterfaceKind,
		occi.StorageLinkKind, occi.IPNetworkMixin, occi.IPNetworkIfaceMixin, occi.OSTemplateMixin, occi.ResourceTemplate,
		occi.ResourceKind, occi.LinkKind, occi.EntityKindID, small, start,
		"http://schemas.ogf.org/occi/infrastructure/storage/action#resize",
		"http://schemas.ogf.org/occi/infrastructure/network/action#down"} {
		if !containsStr(all, id) {
			t.Errorf("discovery: %s missing from %v", id, all)
		}
	}
	// Filtering: one Category selects one category.
	body, hdr := d.category("compute", occi.InfraScheme, "kind")
	if got := d.categories(send(http.StatusOK, "GET", "/-/", body, hdr)); len(got) != 1 || got[0] != occi.ComputeKind {
		t.Errorf("filter by compute: %v", got)
	}

	// Creates, each answered 201 with its Location.
	create := func(path, kind string, mixins []string, attrs map[string]any, want string) {
		t.Helper()
		body, hdr := d.entity(kind, mixins, attrs)
		res := send(http.StatusCreated, "POST", path, body, hdr)
		if got := res.Header.Get("Location"); got != goldenURL+want {
			t.Errorf("create at %s: Location %q, want %q", path, got, goldenURL+want)
		}
	}
	create("/compute/", occi.ComputeKind, []string{small}, map[string]any{"occi.core.id": "vm1", "occi.core.title": "web", "occi.compute.hostname": "web.example.org"}, "/compute/vm1")
	create("/storage/", occi.StorageKind, nil, map[string]any{"occi.core.id": "disk1", "occi.storage.size": 10}, "/storage/disk1")
	create("/network/", occi.NetworkKind, []string{occi.IPNetworkMixin}, map[string]any{"occi.core.id": "net1", "occi.network.address": "10.1.0.0/16"}, "/network/net1")
	create("/networkinterface/", occi.NetworkInterfaceKind, nil, map[string]any{"occi.core.id": "nic1",
		"occi.core.source": "/compute/vm1", "occi.core.target": goldenURL + "/network/net1", "occi.networkinterface.interface": "eth0"}, "/networkinterface/nic1")

	// Read back: the entity, the link and the collection.
	kind, attrs := d.attributes(send(http.StatusOK, "GET", "/compute/vm1", "", nil))
	if kind != occi.ComputeKind || attrs["occi.compute.hostname"] != "web.example.org" || attrs["occi.core.title"] != "web" ||
		attrs["occi.compute.cores"] != 1.0 || attrs["occi.compute.state"] != "inactive" {
		t.Errorf("compute read back: %s %v", kind, attrs)
	}
	kind, attrs = d.attributes(send(http.StatusOK, "GET", "/networkinterface/nic1", "", nil))
	if kind != occi.NetworkInterfaceKind || attrs["occi.core.source"] != "/compute/vm1" || attrs["occi.core.target"] != "/network/net1" {
		t.Errorf("network interface read back: %s %v", kind, attrs)
	}
	if got := d.locations(send(http.StatusOK, "GET", "/compute/", "", nil)); len(got) != 1 || got[0] != goldenURL+"/compute/vm1" {
		t.Errorf("compute collection: %v", got)
	}

	// Partial update, then action start.
	body, hdr = d.entity("", nil, map[string]any{"occi.compute.cores": 4})
	send(http.StatusOK, "POST", "/compute/vm1", body, hdr)
	if _, attrs = d.attributes(send(http.StatusOK, "GET", "/compute/vm1", "", nil)); attrs["occi.compute.cores"] != 4.0 || attrs["occi.compute.hostname"] != "web.example.org" {
		t.Errorf("after the partial update: %v", attrs)
	}
	body, hdr = d.action(start)
	send(http.StatusOK, "POST", "/compute/vm1?action=start", body, hdr)

	// Deletes: the compute takes its network interface along.
	send(http.StatusOK, "DELETE", "/compute/vm1", "", nil)
	for _, gone := range []string{"/compute/vm1", "/networkinterface/nic1"} {
		send(http.StatusNotFound, "GET", gone, "", nil)
	}
	send(http.StatusOK, "DELETE", "/storage/disk1", "", nil)
	send(http.StatusOK, "DELETE", "/network/net1", "", nil)
	send(http.StatusNotFound, "GET", "/network/net1", "", nil)
}

func containsStr(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
