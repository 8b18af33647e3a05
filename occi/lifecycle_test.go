package occi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
	// categories, attributes and locations read answers: the ids of the
	// categories listed, an entity's kind and attributes by dotted name,
	// and the ids of the entities in a collection.
	categories func(r occitest.Response) []string
	attributes func(r occitest.Response) (kind string, attrs map[string]any)
	locations  func(r occitest.Response) []string
	// location reads the location of category id from the query
	// interface's answer, as the rendering gives it.
	location func(r occitest.Response, id string) string
}

// lastSegment is the id at the end of an entity's location.
func lastSegment(loc string) string { return loc[strings.LastIndexByte(loc, '/')+1:] }

// categoryParam reads a parameter (location="/compute/") of a text
// rendering's Category value.
var categoryParam = regexp.MustCompile(`;\s*([a-z]+)="([^"]*)"`)

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
		locations: func(r occitest.Response) []string {
			var ids []string
			for _, l := range lines(r, "X-OCCI-Location") {
				ids = append(ids, lastSegment(l))
			}
			return ids
		},
		location: func(r occitest.Response, id string) string {
			for _, l := range lines(r, "Category") {
				if m := categoryLine.FindStringSubmatch(l); len(m) < 3 || m[2]+m[1] != id {
					continue
				}
				for _, p := range categoryParam.FindAllStringSubmatch(l, -1) {
					if p[1] == "location" {
						return p[2]
					}
				}
			}
			t.Fatalf("no location for %s in the query interface", id)
			return ""
		},
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
					out = append(out, lastSegment(u.(string)))
				}
				return out
			}
			// A collection holds its entities.
			for _, key := range []string{"resources", "links"} {
				list, _ := m[key].([]any)
				for _, e := range list {
					out = append(out, e.(map[string]any)["id"].(string))
				}
			}
			sort.Strings(out)
			return out
		},
		location: func(r occitest.Response, id string) string { return jsonCategoryLocation(t, r, id) },
	}
}

// jsonCategoryLocation reads the location of category id from a query
// interface answer in either JSON rendering: both list kinds, mixins and
// actions as objects with term, scheme and location.
func jsonCategoryLocation(t *testing.T, r occitest.Response, id string) string {
	t.Helper()
	var doc map[string][]struct{ Term, Scheme, Location string }
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		t.Fatalf("query interface answer: %v\n%s", err, r.Raw)
	}
	for _, class := range []string{"kinds", "mixins"} {
		for _, c := range doc[class] {
			if c.Scheme+c.Term == id {
				return c.Location
			}
		}
	}
	t.Fatalf("no location for %s in the query interface", id)
	return ""
}

// pyOCNIDialect is pyOCNI's JSON: entities in {"resources":[…]} or
// {"links":[…]} with nested attributes, occi.core.* as the entity's own
// members, and actions triggered with an empty object.
func pyOCNIDialect(t *testing.T) dialect {
	const media = "application/occi+json"
	hdr := []string{"Content-Type", media}
	marshal := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	decode := func(r occitest.Response) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(r.Raw, &m); err != nil {
			t.Fatalf("answer is not JSON: %v\n%s", err, r.Raw)
		}
		return m
	}
	core := map[string]string{"occi.core.id": "id", "occi.core.title": "title", "occi.core.summary": "summary",
		"occi.core.source": "source", "occi.core.target": "target"}
	return dialect{
		name:   "pyOCNI JSON",
		accept: media,
		entity: func(kind string, mixins []string, attrs map[string]any) (string, []string) {
			e := map[string]any{}
			nested := map[string]any{}
			for name, v := range attrs {
				if member, ok := core[name]; ok {
					e[member] = v
					continue
				}
				setNested(nested, name, v)
			}
			e["attributes"] = nested
			if kind != "" {
				e["kind"] = kind
			}
			if mixins != nil {
				e["mixins"] = mixins
			}
			class := "resources"
			if _, ok := e["source"]; ok {
				class = "links"
			}
			return marshal(map[string]any{class: []any{e}}), hdr
		},
		category: func(term, scheme, class string) (string, []string) {
			return marshal(map[string]any{class + "s": []any{map[string]any{"term": term, "scheme": scheme}}}), hdr
		},
		action: func(string) (string, []string) { return "{}", hdr },
		categories: func(r occitest.Response) []string {
			var out []string
			for _, class := range []string{"kinds", "mixins", "actions"} {
				list, _ := decode(r)[class].([]any)
				for _, c := range list {
					c := c.(map[string]any)
					out = append(out, c["scheme"].(string)+c["term"].(string))
				}
			}
			return out
		},
		attributes: func(r occitest.Response) (string, map[string]any) {
			m := decode(r)
			for _, class := range []string{"resources", "links"} {
				list, _ := m[class].([]any)
				if len(list) != 1 {
					continue
				}
				e := list[0].(map[string]any)
				attrs := map[string]any{}
				flatten(attrs, "", e["attributes"])
				for name, member := range core {
					if v, ok := e[member]; ok {
						attrs[name] = v
					}
				}
				kind, _ := e["kind"].(string)
				return kind, attrs
			}
			t.Fatalf("no single entity in %s", r.Raw)
			return "", nil
		},
		locations: func(r occitest.Response) []string {
			var ids []string
			list, _ := decode(r)["X-OCCI-Location"].([]any)
			for _, u := range list {
				ids = append(ids, lastSegment(u.(string)))
			}
			return ids
		},
		location: func(r occitest.Response, id string) string { return jsonCategoryLocation(t, r, id) },
	}
}

// setNested stores v under a dotted name in nested objects.
func setNested(m map[string]any, name string, v any) {
	parts := strings.Split(name, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// flatten stores nested objects' leaves under dotted names.
func flatten(out map[string]any, prefix string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		if prefix != "" {
			out[prefix] = v
		}
		return
	}
	for k, child := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		flatten(out, name, child)
	}
}

// pathOf is the path of a location, absolute URL or path.
func pathOf(t *testing.T, loc any) string {
	t.Helper()
	s, _ := loc.(string)
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("location %q: %v", s, err)
	}
	return u.Path
}

// TestComplianceClient acts as an OCCI compliance client does, in each
// rendering: it reads the query interface, builds each kind's URL as the
// endpoint joined with the category's location, and there creates, lists,
// reads, updates, triggers an action on and deletes a compute, a storage
// and a network of the infrastructure model, linked by a network
// interface and a storage link. Every later request goes to a URL the
// server gave, so a category location that is not a path fails here.
func TestComplianceClient(t *testing.T) {
	t.Parallel()
	for _, mk := range []func(*testing.T) dialect{
		func(t *testing.T) dialect { return textDialect(t, "text/plain") },
		func(t *testing.T) dialect { return textDialect(t, "text/occi") },
		json12Dialect,
		pyOCNIDialect,
	} {
		t.Run(mk(t).name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				complianceClient(t, newEnv(t, st, occi.Options{WithInfrastructure: true}), mk(t))
			})
		})
	}
}

func complianceClient(t *testing.T, e *env, d dialect) {
	const (
		small = "http://schemas.cmbs.local/occi/infrastructure/resource_tpl#small"
		start = "http://schemas.ogf.org/occi/infrastructure/compute/action#start"
	)
	endpoint := e.URL
	// The client sends every request to the absolute URL it built.
	abs := *e.Client
	abs.URL = ""
	send := func(want int, method, u, body string, hdr []string) occitest.Response {
		t.Helper()
		return abs.MustRequest(want, method, u, body, append(append([]string{"Content-Type", ""}, hdr...), "Accept", d.accept)...)
	}

	// Discovery: the model is in the query interface, each kind with a
	// location the client joins to the endpoint.
	query := send(http.StatusOK, "GET", endpoint+"/-/", "", nil)
	all := d.categories(query)
	for _, id := range []string{occi.ComputeKind, occi.StorageKind, occi.NetworkKind, occi.NetworkInterfaceKind,
		occi.StorageLinkKind, occi.IPNetworkMixin, occi.ResourceKind, occi.LinkKind, small, start} {
		if !containsStr(all, id) {
			t.Errorf("discovery: %s missing from %v", id, all)
		}
	}
	kindURL := map[string]string{}
	for _, id := range []string{occi.ComputeKind, occi.StorageKind, occi.NetworkKind, occi.NetworkInterfaceKind, occi.StorageLinkKind} {
		loc := d.location(query, id)
		if !strings.HasPrefix(loc, "/") || strings.Contains(loc, "://") {
			t.Fatalf("%s: location %q is not a path; a client joining it to %s would ask %s", id, loc, endpoint, endpoint+loc)
		}
		kindURL[id] = endpoint + loc
	}
	body, hdr := d.category("compute", occi.InfraScheme, "kind")
	if got := d.categories(send(http.StatusOK, "GET", endpoint+"/-/", body, hdr)); len(got) != 1 || got[0] != occi.ComputeKind {
		t.Errorf("filter by compute: %v", got)
	}

	// Creates at the kinds' URLs, each answered 201 with the entity's
	// absolute URL, which the client uses from then on.
	create := func(kind string, mixins []string, attrs map[string]any) string {
		t.Helper()
		body, hdr := d.entity(kind, mixins, attrs)
		res := send(http.StatusCreated, "POST", kindURL[kind], body, hdr)
		loc := res.Header.Get("Location")
		if want := kindURL[kind] + attrs["occi.core.id"].(string); loc != want {
			t.Fatalf("create at %s: Location %q, want %q", kindURL[kind], loc, want)
		}
		return loc
	}
	compute := create(occi.ComputeKind, []string{small}, map[string]any{"occi.core.id": "vm1", "occi.core.title": "web", "occi.compute.hostname": "web.example.org"})
	storage := create(occi.StorageKind, nil, map[string]any{"occi.core.id": "disk1", "occi.storage.size": 10})
	network := create(occi.NetworkKind, []string{occi.IPNetworkMixin}, map[string]any{"occi.core.id": "net1", "occi.network.address": "10.1.0.0/16"})
	nic := create(occi.NetworkInterfaceKind, nil, map[string]any{"occi.core.id": "nic1",
		"occi.core.source": compute, "occi.core.target": network, "occi.networkinterface.interface": "eth0"})
	disk := create(occi.StorageLinkKind, nil, map[string]any{"occi.core.id": "sl1",
		"occi.core.source": compute, "occi.core.target": storage, "occi.storagelink.deviceid": "vdb"})

	// Lists: each kind's collection holds what was created there.
	for kind, id := range map[string]string{occi.ComputeKind: "vm1", occi.StorageKind: "disk1", occi.NetworkKind: "net1",
		occi.NetworkInterfaceKind: "nic1", occi.StorageLinkKind: "sl1"} {
		if got := d.locations(send(http.StatusOK, "GET", kindURL[kind], "", nil)); len(got) != 1 || got[0] != id {
			t.Errorf("collection %s: %v, want [%s]", kindURL[kind], got, id)
		}
	}

	// Reads: the resources and the links between them.
	kind, attrs := d.attributes(send(http.StatusOK, "GET", compute, "", nil))
	if kind != occi.ComputeKind || attrs["occi.compute.hostname"] != "web.example.org" || attrs["occi.core.title"] != "web" ||
		attrs["occi.compute.cores"] != 1.0 || attrs["occi.compute.state"] != "inactive" {
		t.Errorf("compute read back: %s %v", kind, attrs)
	}
	if kind, attrs = d.attributes(send(http.StatusOK, "GET", storage, "", nil)); kind != occi.StorageKind || attrs["occi.storage.size"] != 10.0 {
		t.Errorf("storage read back: %s %v", kind, attrs)
	}
	if kind, attrs = d.attributes(send(http.StatusOK, "GET", network, "", nil)); kind != occi.NetworkKind || attrs["occi.network.address"] != "10.1.0.0/16" {
		t.Errorf("network read back: %s %v", kind, attrs)
	}
	for _, l := range []struct{ url, kind, source, target string }{
		{nic, occi.NetworkInterfaceKind, compute, network},
		{disk, occi.StorageLinkKind, compute, storage},
	} {
		kind, attrs := d.attributes(send(http.StatusOK, "GET", l.url, "", nil))
		if kind != l.kind || pathOf(t, attrs["occi.core.source"]) != pathOf(t, l.source) || pathOf(t, attrs["occi.core.target"]) != pathOf(t, l.target) {
			t.Errorf("link %s read back: %s %v", l.url, kind, attrs)
		}
	}

	// A partial update, then action start.
	body, hdr = d.entity("", nil, map[string]any{"occi.compute.cores": 4})
	send(http.StatusOK, "POST", compute, body, hdr)
	if _, attrs = d.attributes(send(http.StatusOK, "GET", compute, "", nil)); attrs["occi.compute.cores"] != 4.0 || attrs["occi.compute.hostname"] != "web.example.org" {
		t.Errorf("after the partial update: %v", attrs)
	}
	body, hdr = d.action(start)
	send(http.StatusOK, "POST", compute+"?action=start", body, hdr)

	// Deletes: the compute takes its links along; then the others go.
	send(http.StatusOK, "DELETE", compute, "", nil)
	for _, gone := range []string{compute, nic, disk} {
		send(http.StatusNotFound, "GET", gone, "", nil)
	}
	send(http.StatusOK, "DELETE", storage, "", nil)
	send(http.StatusOK, "DELETE", network, "", nil)
	for _, gone := range []string{storage, network} {
		send(http.StatusNotFound, "GET", gone, "", nil)
	}
	if got := d.locations(send(http.StatusOK, "GET", kindURL[occi.ComputeKind], "", nil)); len(got) != 0 {
		t.Errorf("compute collection after the deletes: %v", got)
	}
}

func containsStr(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
