package occi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// categoryJSON is a kind, mixin or action in the pyOCNI JSON rendering.
type categoryJSON struct {
	Term       string         `json:"term"`
	Scheme     string         `json:"scheme"`
	Title      string         `json:"title,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	Actions    []string       `json:"actions,omitempty"`
	Related    []string       `json:"related,omitempty"`
	Location   string         `json:"location,omitempty"`
	Providers  *Providers     `json:"providers,omitempty"`
	// Parent, Depends and Applies are how OCCI 1.2 JSON spells a kind's
	// parent, the mixins a mixin depends on and the kinds it applies to.
	// They are read, never written in the pyOCNI rendering.
	Parent  string   `json:"parent,omitempty"`
	Depends []string `json:"depends,omitempty"`
	Applies []string `json:"applies,omitempty"`
}

type providerJSON struct {
	Provider Providers `json:"Provider"`
	OCCIID   string    `json:"OCCI_ID"`
}

// categoriesJSON is the query interface's document, in requests and
// responses alike.
type categoriesJSON struct {
	Kinds     []categoryJSON `json:"kinds"`
	Mixins    []categoryJSON `json:"mixins"`
	Actions   []categoryJSON `json:"actions"`
	Providers []providerJSON `json:"providers,omitempty"`
}

var categoryKeys = map[string]bool{"kinds": true, "mixins": true, "actions": true, "providers": true}

// readCategories decodes a query interface body, in any rendering,
// refusing unknown members so a typo does not pass as an empty request.
func readCategories(r *http.Request) (*categoriesJSON, bool, error) {
	x := exchangeOf(r)
	if x.in != renderPyOCNI {
		doc, err := readText(r, x)
		if err != nil || doc.empty() {
			return &categoriesJSON{}, false, err
		}
		out, err := doc.categoriesDoc()
		return out, true, err
	}
	var raw map[string]json.RawMessage
	present, err := readJSON(r, &raw)
	if err != nil || !present {
		return &categoriesJSON{}, present, err
	}
	for k := range raw {
		if !categoryKeys[k] {
			return nil, true, BadRequest(k, "unknown member %q; the query interface takes kinds, mixins, actions and providers", k)
		}
	}
	var doc categoriesJSON
	if err := decodeMembers(raw, &doc); err != nil {
		return nil, true, err
	}
	if doc.speaks12() {
		x.want12 = true
	}
	return &doc, true, nil
}

// speaks12 reports whether the document uses what only OCCI 1.2 JSON
// has: parent, depends, applies, or flat dotted attribute names.
func (d *categoriesJSON) speaks12() bool {
	for _, list := range [][]categoryJSON{d.Kinds, d.Mixins, d.Actions} {
		for _, c := range list {
			if c.Parent != "" || c.Depends != nil || c.Applies != nil {
				return true
			}
			for k := range c.Attributes {
				if strings.Contains(k, ".") {
					return true
				}
			}
		}
	}
	return false
}

// category reads one category of a query interface document. Both JSON
// shapes land in the same model: parent and depends join related, and
// dotted attribute names (OCCI 1.2) nest like pyOCNI's.
func (c categoryJSON) category(class string) *Category {
	related := c.Related
	if c.Parent != "" {
		related = append([]string{c.Parent}, related...)
	}
	related = append(related, c.Depends...)
	return &Category{Class: class, Term: strings.TrimSpace(c.Term), Scheme: strings.TrimSpace(c.Scheme), Title: c.Title,
		Attributes: nestDefinitions(c.Attributes), Actions: c.Actions, Related: related, Applies: c.Applies, Location: c.Location}
}

// nestDefinitions nests attribute definitions given under dotted names.
func nestDefinitions(attrs map[string]any) map[string]any {
	dotted := false
	for k := range attrs {
		if strings.Contains(k, ".") {
			dotted = true
			break
		}
	}
	if !dotted {
		return attrs
	}
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if !strings.Contains(k, ".") {
			out[k] = v
		}
	}
	for k, v := range attrs {
		if strings.Contains(k, ".") {
			setPath(out, splitName(k), v)
		}
	}
	return out
}

func renderCategory(c *Category) categoryJSON {
	return categoryJSON{Term: c.Term, Scheme: c.Scheme, Title: c.Title, Attributes: c.Attributes,
		Actions: c.Actions, Related: c.Related, Location: c.Location, Providers: c.Providers}
}

func renderCategories(cats []*Category) categoriesJSON {
	sortCategories(cats)
	out := categoriesJSON{Kinds: []categoryJSON{}, Mixins: []categoryJSON{}, Actions: []categoryJSON{}}
	for _, c := range cats {
		switch c.Class {
		case ClassKind:
			out.Kinds = append(out.Kinds, renderCategory(c))
		case ClassMixin:
			out.Mixins = append(out.Mixins, renderCategory(c))
		case ClassAction:
			out.Actions = append(out.Actions, renderCategory(c))
		}
	}
	return out
}

// all lists the request's categories, actions first so kinds and mixins may
// refer to actions registered by the same request.
func (d *categoriesJSON) all() []*Category {
	var out []*Category
	for _, c := range d.Actions {
		out = append(out, c.category(ClassAction))
	}
	for _, c := range d.Kinds {
		out = append(out, c.category(ClassKind))
	}
	for _, c := range d.Mixins {
		out = append(out, c.category(ClassMixin))
	}
	return out
}

// getCategories lists a page of the categories, ordered by id, or of
// those matching a filter body.
func (s *Server) getCategories(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.answer(r, true); err != nil {
		return err
	}
	filter, present, err := readCategoryFilter(r)
	if err != nil {
		return err
	}
	cats, err := s.listCategories(r.Context())
	if err != nil {
		return err
	}
	if present && len(filter) > 0 {
		var kept []*Category
		for class, filters := range filter {
			want := strings.TrimSuffix(class, "s")
			if !categoryKeys[class] || class == "providers" {
				return BadRequest(class, "unknown filter member %q; filter by kinds, mixins or actions", class)
			}
			for _, c := range cats {
				if c.Class != want {
					continue
				}
				for i, f := range filters {
					ok, err := matchCategory(c, f, fmt.Sprintf("%s[%d]", class, i))
					if err != nil {
						return err
					}
					if ok {
						kept = append(kept, c)
						break
					}
				}
			}
		}
		cats = kept
	}
	p, err := s.pageOf(r, scopeOf("categories", "", filter))
	if err != nil {
		return err
	}
	sortCategories(cats)
	first := sort.Search(len(cats), func(i int) bool { return cats[i].ID() > p.after })
	cats = cats[first:]
	if len(cats) > p.limit {
		cats = cats[:p.limit]
		s.setNext(w, r, p, cats[len(cats)-1].ID())
	}
	return s.writeCategories(w, r, http.StatusOK, cats, nil)
}

// readCategoryFilter reads a query interface filter: {"kinds":[{…}],…},
// or Category lines selecting categories by term and scheme.
func readCategoryFilter(r *http.Request) (map[string][]map[string]any, bool, error) {
	x := exchangeOf(r)
	if x.in != renderPyOCNI {
		doc, err := readText(r, x)
		if err != nil || doc.empty() {
			return nil, false, err
		}
		f, err := doc.categoryFilter()
		return f, true, err
	}
	var filter map[string][]map[string]any
	present, err := readJSON(r, &filter)
	return filter, present, err
}

// matchCategory reports whether c has every member filter f gives: equal
// strings, a superset of listed actions and related ids, and attribute
// definitions containing the given ones.
func matchCategory(c *Category, f map[string]any, field string) (bool, error) {
	for k, v := range f {
		switch k {
		case "term", "scheme", "title", "location":
			want, ok := v.(string)
			if !ok {
				return false, BadRequest(field+"."+k, "%s must be a string", k)
			}
			got := map[string]string{"term": c.Term, "scheme": c.Scheme, "title": c.Title, "location": c.Location}[k]
			if k == "location" && want != "" {
				want = normalizeLocation(want)
			}
			if got != want {
				return false, nil
			}
		case "actions", "related":
			list, ok := v.([]any)
			if !ok {
				return false, BadRequest(field+"."+k, "%s must be an array of category ids", k)
			}
			have := c.Actions
			if k == "related" {
				have = c.Related
			}
			for _, item := range list {
				if !slices.Contains(have, fmt.Sprint(item)) {
					return false, nil
				}
			}
		case "attributes":
			want, ok := v.(map[string]any)
			if !ok {
				return false, BadRequest(field+".attributes", "attributes must be an object")
			}
			if !subset(c.Attributes, want) {
				return false, nil
			}
		default:
			return false, BadRequest(field+"."+k, "cannot filter categories by %q", k)
		}
	}
	return true, nil
}

// subset reports whether every member of want is in have, recursively for
// objects. Strings compare case-insensitively so "String" finds "string".
func subset(have, want map[string]any) bool {
	for k, wv := range want {
		hv, ok := have[k]
		if !ok {
			return false
		}
		wm, wObj := wv.(map[string]any)
		hm, hObj := hv.(map[string]any)
		switch {
		case wObj && hObj:
			if !subset(hm, wm) {
				return false
			}
		case wObj != hObj:
			return false
		default:
			ws, wStr := wv.(string)
			hs, hStr := hv.(string)
			if wStr && hStr {
				if !strings.EqualFold(ws, hs) {
					return false
				}
			} else if !reflect.DeepEqual(wv, hv) {
				return false
			}
		}
	}
	return true
}

// postCategories registers kinds, mixins and actions; re-registering merges.
func (s *Server) postCategories(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.answer(r, true); err != nil {
		return err
	}
	doc, present, err := readCategories(r)
	if err != nil {
		return err
	}
	if !present || len(doc.all()) == 0 {
		return BadRequest("", "the body must list kinds, mixins or actions to register")
	}
	if len(doc.Providers) > 0 {
		return BadRequest("providers", "providers are attached with PUT on the query interface")
	}
	cats := doc.all()
	written, _, err := s.registerCategories(r.Context(), cats, false)
	if err != nil {
		return err
	}
	return s.writeCategories(w, r, http.StatusCreated, written, nil)
}

// putCategories updates categories and attaches providers.
func (s *Server) putCategories(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.answer(r, true); err != nil {
		return err
	}
	doc, present, err := readCategories(r)
	if err != nil {
		return err
	}
	if !present || (len(doc.all()) == 0 && len(doc.Providers) == 0) {
		return BadRequest("", "the body must list categories to update or providers to attach")
	}
	ctx := r.Context()
	for i, p := range doc.Providers {
		if p.OCCIID == "" {
			return BadRequest(fmt.Sprintf("providers[%d].OCCI_ID", i), "OCCI_ID names the kind the providers attach to")
		}
		c, _, err := s.getCategory(ctx, p.OCCIID)
		if err != nil {
			return NotFound(fmt.Sprintf("providers[%d].OCCI_ID", i), "no kind or mixin %s is registered", p.OCCIID)
		}
		if c.Class == ClassAction {
			return BadRequest(fmt.Sprintf("providers[%d].OCCI_ID", i), "%s is an action; providers attach to kinds and mixins", p.OCCIID)
		}
		// Checked before any category is written, so a refusal changes nothing.
		if s.valid.strict {
			if err := s.checkProviders(p.OCCIID, p.Provider); err != nil {
				return err
			}
		}
	}
	updated, err := s.updateCategories(ctx, doc.all())
	if err != nil {
		return err
	}
	var attached []providerJSON
	for _, p := range doc.Providers {
		c, err := s.AttachProviders(ctx, p.OCCIID, p.Provider)
		if err != nil {
			return err
		}
		attached = append(attached, providerJSON{Provider: *c.Providers, OCCIID: c.ID()})
	}
	sort.Slice(attached, func(i, j int) bool { return attached[i].OCCIID < attached[j].OCCIID })
	return s.writeCategories(w, r, http.StatusOK, updated, attached)
}

// deleteCategories removes the categories named by term and scheme.
func (s *Server) deleteCategoriesHandler(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.answer(r, true); err != nil {
		return err
	}
	doc, present, err := readCategories(r)
	if err != nil {
		return err
	}
	if !present || len(doc.all()) == 0 {
		return BadRequest("", "the body must list the kinds, mixins or actions to remove")
	}
	deleted, err := s.deleteCategories(r.Context(), doc.all())
	if err != nil {
		return err
	}
	return s.writeCategories(w, r, http.StatusOK, deleted, nil)
}

// ParseCategories reads a query interface document ({"kinds":[…],
// "mixins":[…],"actions":[…]}) into categories, actions first.
func ParseCategories(data []byte) ([]*Category, error) {
	var doc categoriesJSON
	if err := decodeJSON(data, &doc); err != nil {
		return nil, err
	}
	return doc.all(), nil
}
