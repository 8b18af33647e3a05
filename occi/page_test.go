package occi_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

const (
	pageScheme = "http://example.com/paging#"
	pageKind   = pageScheme + "item"
	pageMixin  = pageScheme + "tagged"
)

// renderings are the Accept values a collection is read in.
var renderings = []string{
	"application/occi+json",
	"application/occi+json; version=1.2",
	"text/plain",
	"text/occi",
	"text/uri-list",
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// next returns the path and query of the answer's Link rel="next", or "".
func next(t testing.TB, h http.Header) string {
	t.Helper()
	var out string
	for _, v := range h.Values("Link") {
		m := nextLink.FindStringSubmatch(v)
		if m == nil {
			continue
		}
		if out != "" {
			t.Fatalf("two next links: %q", h.Values("Link"))
		}
		u, err := url.Parse(m[1])
		if err != nil || !u.IsAbs() {
			t.Fatalf("next link %q is not an absolute URL", m[1])
		}
		out = u.RequestURI()
	}
	return out
}

// entries reads the locations (or, for OCCI 1.2 JSON collections of
// entities, the locations of the entities at home) of one answer.
func entries(t testing.TB, accept, home string, res occitest.Response) []string {
	t.Helper()
	var out []string
	strs := func(v any) {
		for _, s := range v.([]any) {
			out = append(out, s.(string))
		}
	}
	switch accept {
	case "application/occi+json":
		strs(res.Body["X-OCCI-Location"])
	case "application/occi+json; version=1.2":
		if l, ok := res.Body["locations"]; ok {
			strs(l)
			break
		}
		for _, key := range []string{"resources", "links"} {
			list, _ := res.Body[key].([]any)
			for _, e := range list {
				out = append(out, home+e.(map[string]any)["id"].(string))
			}
		}
	case "text/occi":
		out = res.Header.Values("X-OCCI-Location")
	default:
		sc := bufio.NewScanner(strings.NewReader(string(res.Raw)))
		for sc.Scan() {
			line := strings.TrimPrefix(sc.Text(), "X-OCCI-Location: ")
			if line != "" {
				out = append(out, line)
			}
		}
	}
	for i, u := range out {
		out[i] = strings.TrimPrefix(u, "http://cmbs.test")
	}
	return out
}

// readPages follows the next links from path, sending body with every
// page, and returns every entry with the number of pages.
func readPages(t testing.TB, e *env, path, accept, home, body string) ([]string, int) {
	t.Helper()
	var all []string
	pages := 0
	for next1 := path; next1 != ""; pages++ {
		res := e.MustRequest(http.StatusOK, "GET", next1, body, "Accept", accept)
		got := entries(t, accept, home, res)
		if n := next(t, res.Header); n != "" && len(got) == 0 {
			t.Fatalf("GET %s (%s): an empty page with a next link", next1, accept)
		}
		all = append(all, got...)
		next1 = next(t, res.Header)
		if pages > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", path)
		}
	}
	return all, pages
}

// pagingEnv registers a kind with a mixin and creates n items, every other
// one tagged with the mixin, and a few entities of a kind living below
// the first kind's location.
func pagingEnv(t *testing.T, st store.Store, n int, opts occi.Options) (*env, []string) {
	opts.PublicURL = "http://cmbs.test"
	e := newEnv(t, st, opts)
	e.MustRequest(http.StatusCreated, "POST", "/-/", fmt.Sprintf(`{"kinds":[
		{"term":"item","scheme":%[1]q,"location":"/item/","related":[%[2]q]},
		{"term":"sub","scheme":%[1]q,"location":"/item/sub/","related":[%[2]q]}],
		"mixins":[{"term":"tagged","scheme":%[1]q,"location":"/tagged/"}]}`, pageScheme, occi.ResourceKind))
	var want []string
	var batch []map[string]any
	for i := range n {
		r := map[string]any{"kind": pageKind, "id": fmt.Sprintf("i%04d", i), "attributes": map[string]any{"n": i % 3}}
		if i%2 == 0 {
			r["mixins"] = []string{pageMixin}
		}
		batch = append(batch, r)
		want = append(want, fmt.Sprintf("/item/i%04d", i))
	}
	for len(batch) > 0 {
		k := min(len(batch), 40)
		e.MustRequest(http.StatusCreated, "POST", "/item/", map[string]any{"resources": batch[:k]})
		batch = batch[k:]
	}
	e.MustRequest(http.StatusCreated, "POST", "/item/sub/", `{"resources":[{"id":"s1"},{"id":"s2"}]}`)
	for i := range 5 {
		e.MustRequest(http.StatusCreated, "POST", "/-/", fmt.Sprintf(`{"kinds":[{"term":"t%d","scheme":%q,"location":"/tree/t%d/","related":[%q]}]}`,
			i, pageScheme, i, occi.ResourceKind))
		e.MustRequest(http.StatusCreated, "POST", fmt.Sprintf("/tree/t%d/", i), `{"resources":[{"id":"a"},{"id":"b"},{"id":"c"}]}`)
	}
	return e, want
}

// TestPaging reads every collection page by page in every rendering: each
// entry once, in order, pages no longer than the limit.
func TestPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		const n = 23
		e, items := pagingEnv(t, st, n, occi.Options{})
		var tagged, nOne []string
		for i, it := range items {
			if i%2 == 0 {
				tagged = append(tagged, it)
			}
			if i%3 == 1 {
				nOne = append(nOne, it)
			}
		}
		for _, accept := range renderings {
			for _, tc := range []struct {
				name, path, home, body string
				want                   []string
			}{
				{"kind", "/item/?limit=4", "/item/", "", items},
				{"mixin", "/tagged/?limit=5", "/item/", "", tagged},
				{"filter", "/item/?limit=3", "/item/", `{"attributes":{"n":1}}`, nOne},
				{"path", "/tree/?limit=2", "", "", []string{"/tree/t0/", "/tree/t1/", "/tree/t2/", "/tree/t3/", "/tree/t4/"}},
				{"root", "/?limit=1", "", "", []string{"/item/", "/tree/"}},
				{"path filter", "/?limit=2", "", `{"resources":[{"attributes":{"n":1}}]}`, nOne},
			} {
				if accept == "text/occi" && tc.body != "" {
					continue // a text/occi filter is in headers; below
				}
				got, pages := readPages(t, e, tc.path, accept, tc.home, tc.body)
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s in %s: read %q, want %q", tc.name, accept, got, tc.want)
				}
				if pages < 2 {
					t.Errorf("%s in %s: %d pages", tc.name, accept, pages)
				}
			}
		}
		// The default page holds everything here; a filter in text/occi
		// headers pages as its JSON twin does.
		res := e.MustRequest(http.StatusOK, "GET", "/item/", "")
		if len(res.Locations()) != n || next(t, res.Header) != "" {
			t.Errorf("GET /item/ without a limit: %d locations, next %q", len(res.Locations()), next(t, res.Header))
		}
		res = e.MustRequest(http.StatusOK, "GET", "/item/?limit=2", "", "Accept", "text/occi", "X-OCCI-Attribute", "n=1")
		if got := entries(t, "text/occi", "", res); !slices.Equal(got, nOne[:2]) || next(t, res.Header) == "" {
			t.Errorf("text/occi filter: %q, next %q", got, next(t, res.Header))
		}
	})
}

// TestPagingQueryInterface pages the categories, filtered or not.
func TestPagingQueryInterface(t *testing.T) {
	e, _ := pagingEnv(t, occitest.OpenBolt(t), 0, occi.Options{})
	all := e.MustRequest(http.StatusOK, "GET", "/-/", "")
	count := func(b map[string]any) int {
		return len(b["kinds"].([]any)) + len(b["mixins"].([]any)) + len(b["actions"].([]any))
	}
	total := count(all.Body)
	var seen []string
	pages := 0
	for path := "/-/?limit=2"; path != ""; pages++ {
		res := e.MustRequest(http.StatusOK, "GET", path, "")
		if c := count(res.Body); c > 2 || c == 0 {
			t.Fatalf("GET %s: %d categories", path, c)
		}
		for _, class := range []string{"kinds", "mixins", "actions"} {
			for _, c := range res.Body[class].([]any) {
				m := c.(map[string]any)
				seen = append(seen, m["scheme"].(string)+m["term"].(string))
			}
		}
		path = next(t, res.Header)
	}
	if len(seen) != total || !sort.StringsAreSorted(seen) || pages != (total+1)/2 {
		t.Errorf("paged categories %q in %d pages, want %d in order", seen, pages, total)
	}
	filter := `{"kinds":[{"scheme":"` + pageScheme + `"}]}`
	var kinds []string
	var n string
	for path := "/-/?limit=3"; path != ""; {
		res := e.MustRequest(http.StatusOK, "GET", path, filter)
		for _, c := range res.Body["kinds"].([]any) {
			kinds = append(kinds, c.(map[string]any)["term"].(string))
		}
		if path = next(t, res.Header); n == "" {
			n = path
		}
	}
	if want := []string{"item", "sub", "t0", "t1", "t2", "t3", "t4"}; !slices.Equal(kinds, want) {
		t.Errorf("filtered pages: %q, want %q", kinds, want)
	}
	// The continuation of the filter does not continue the whole list.
	e.MustRequest(http.StatusBadRequest, "GET", n, "")
}

// TestPagingLimits: bad limits and continuations are refused naming the
// parameter; a limit over the maximum is lowered to it.
func TestPagingLimits(t *testing.T) {
	e, items := pagingEnv(t, occitest.OpenBolt(t), 12, occi.Options{PageLimit: 5, MaxPageLimit: 8})
	res := e.MustRequest(http.StatusOK, "GET", "/item/", "")
	if got := res.Locations(); len(got) != 5 {
		t.Errorf("default page: %d entries, want 5", len(got))
	}
	if n := next(t, res.Header); strings.Contains(n, "limit=") {
		t.Errorf("next link %q repeats a limit the request did not set", n)
	}
	res = e.MustRequest(http.StatusOK, "GET", "/item/?limit=100", "")
	if got := res.Locations(); len(got) != 8 || !strings.Contains(next(t, res.Header), "limit=8") {
		t.Errorf("limit over the maximum: %d entries, next %q; want 8", len(got), next(t, res.Header))
	}
	other := e.MustRequest(http.StatusOK, "GET", "/tagged/?limit=1", "")
	for _, tc := range []struct{ path, field string }{
		{"/item/?limit=0", "limit"},
		{"/item/?limit=-3", "limit"},
		{"/item/?limit=ten", "limit"},
		{"/item/?continue=garbage", "continue"},
		{"/item/?continue=" + strings.Repeat("A", 5000), "continue"},
		{"/item/?" + strings.SplitN(next(t, other.Header), "?", 2)[1], "continue"},
		{"/?limit=0", "limit"},
		{"/-/?limit=x", "limit"},
	} {
		res := e.MustRequest(http.StatusBadRequest, "GET", tc.path, "")
		if res.Body["field"] != tc.field {
			t.Errorf("GET %s: field %v, want %s (%s)", tc.path, res.Body["field"], tc.field, res.Raw)
		}
	}
	// A continuation may outlive the entry it points after.
	res = e.MustRequest(http.StatusOK, "GET", "/item/?limit=3", "")
	e.MustRequest(http.StatusOK, "DELETE", items[2], "")
	res = e.MustRequest(http.StatusOK, "GET", next(t, res.Header), "")
	if got := res.Locations(); len(got) != 3 || got[0] != "http://cmbs.test"+items[3] {
		t.Errorf("page after a deleted entry: %q", got)
	}
}

// TestPagingWhileWriting: entities present throughout a paged read are
// each read once, whatever is created and deleted meanwhile.
func TestPagingWhileWriting(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e, items := pagingEnv(t, st, 30, occi.Options{})
		stay := map[string]bool{}
		for i, it := range items {
			if i%4 != 1 {
				stay["http://cmbs.test"+it] = true
			}
		}
		seen := map[string]int{}
		page := 0
		for path := "/item/?limit=4"; path != ""; page++ {
			res := e.MustRequest(http.StatusOK, "GET", path, "")
			for _, l := range res.Locations() {
				seen[l]++
			}
			path = next(t, res.Header)
			// Between pages: one entity goes, two come, before and after
			// the position reached.
			if gone := items[(page*4+1)%len(items)]; page*4+1 < len(items) {
				e.Request("DELETE", gone, "")
			}
			e.MustRequest(http.StatusCreated, "POST", "/item/", fmt.Sprintf(`{"resources":[{"id":"a%03d"},{"id":"z%03d"}]}`, page, page))
		}
		for l := range stay {
			if seen[l] != 1 {
				t.Errorf("%s read %d times, want once", l, seen[l])
			}
		}
		for l, n := range seen {
			if n > 1 {
				t.Errorf("%s read %d times", l, n)
			}
		}
	})
}
