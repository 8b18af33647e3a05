package occi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Request bodies in every rendering are read into the same documents:
// categoriesJSON for the query interface, entitiesInput for entities and
// locations, an attribute map for actions. The text renderings and the OCCI
// 1.2 single-entity object leave open whether an entity is a resource or a
// link; typeUntyped settles it from the kind.

// readBody returns the request body, refusing one over the size limit.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge(tooBig.Limit)
		}
		return nil, BadRequest("", "reading request body: %v", err)
	}
	return data, nil
}

// readText parses a request in text/plain, text/occi or text/uri-list.
// A text/occi request is read from its headers; its body is not looked at.
func readText(r *http.Request, x *exchange) (*textDoc, error) {
	if x.in == renderHeaders {
		return parseTextHeaders(r.Header)
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if x.in == renderURIList {
		return parseURIList(string(body))
	}
	return parseTextBody(string(body))
}

// onlyCategories refuses the lines a query interface request cannot hold.
func (d *textDoc) onlyCategories() error {
	switch {
	case len(d.attrs) > 0:
		return BadRequest(d.attrs[0].where, "the query interface takes Category lines, not X-OCCI-Attribute")
	case len(d.links) > 0:
		return BadRequest(d.links[0].where, "the query interface takes Category lines, not Link")
	case len(d.locations) > 0:
		return BadRequest(d.locations[0].where, "the query interface takes Category lines, not X-OCCI-Location")
	}
	return nil
}

// categoriesDoc turns Category lines into a query interface document. rel
// names a kind's parent or the mixins a mixin depends on.
func (d *textDoc) categoriesDoc() (*categoriesJSON, error) {
	if err := d.onlyCategories(); err != nil {
		return nil, err
	}
	out := &categoriesJSON{}
	for _, c := range d.categories {
		cj := categoryJSON{Term: c.term, Scheme: c.scheme, Title: c.title, Location: c.location}
		if c.hasActions {
			cj.Actions = c.actions
		}
		if c.hasRel {
			cj.Related = c.rel
		}
		if c.hasAttrs {
			cj.Attributes = map[string]any{}
			for _, a := range c.attrs {
				setPath(cj.Attributes, splitName(a.name), map[string]any{"mutable": !a.immutable, "required": a.required})
			}
		}
		switch c.class {
		case ClassKind:
			out.Kinds = append(out.Kinds, cj)
		case ClassMixin:
			out.Mixins = append(out.Mixins, cj)
		case ClassAction:
			out.Actions = append(out.Actions, cj)
		}
	}
	return out, nil
}

// categoryFilter turns Category lines into a query interface filter: each
// line selects the category with its term and scheme.
func (d *textDoc) categoryFilter() (map[string][]map[string]any, error) {
	if err := d.onlyCategories(); err != nil {
		return nil, err
	}
	out := map[string][]map[string]any{}
	for _, c := range d.categories {
		out[c.class+"s"] = append(out[c.class+"s"], map[string]any{"term": c.term, "scheme": c.scheme})
	}
	return out, nil
}

// flatAttrs collects text attributes by dotted name.
func flatAttrs(attrs []textAttr) map[string]any {
	out := make(map[string]any, len(attrs))
	for _, a := range attrs {
		out[a.name] = a.value
	}
	return out
}

// entitiesDoc turns text lines into an entity document: the Category lines
// give the kind (at most one) and mixins, X-OCCI-Attribute lines the
// attributes, Link lines without self the links to create with a resource,
// and X-OCCI-Location lines the locations a mixin is associated with.
func (d *textDoc) entitiesDoc() (*entitiesInput, error) {
	in := &entitiesInput{}
	for _, l := range d.locations {
		in.Locations = append(in.Locations, l.url)
	}
	if len(d.categories) == 0 && len(d.attrs) == 0 && len(d.links) == 0 {
		return in, nil
	}
	var ei entityInput
	var mixins []string
	for _, c := range d.categories {
		id := c.id()
		switch c.class {
		case ClassKind:
			if ei.Kind != nil {
				return nil, BadRequest(c.where, "a second kind, %s: an entity has one kind (%s)", id, *ei.Kind)
			}
			ei.Kind = &id
		case ClassMixin:
			mixins = append(mixins, id)
		case ClassAction:
			return nil, BadRequest(c.where, "Category %s is an action; trigger it with POST on the entity or collection and ?action=%s", id, c.term)
		}
	}
	if mixins != nil {
		ei.Mixins = &mixins
	}
	ei.Attributes = flatAttrs(d.attrs)
	if err := liftCore(&ei, "X-OCCI-Attribute"); err != nil {
		return nil, err
	}
	for _, l := range d.links {
		if l.self != "" || strings.Contains(l.target, "?action=") {
			// A link that exists already, or an action: what a GET
			// rendered, sent back.
			continue
		}
		target := l.target
		link := entityInput{Target: &target, Attributes: flatAttrs(l.attrs)}
		kind := LinkKind
		if len(l.categories) > 0 {
			kind = l.categories[0]
			if len(l.categories) > 1 {
				ms := append([]string{}, l.categories[1:]...)
				link.Mixins = &ms
			}
		}
		link.Kind = &kind
		if err := liftCore(&link, l.where); err != nil {
			return nil, err
		}
		ei.inline = append(ei.inline, link)
	}
	in.Untyped = []untypedInput{{in: ei}}
	return in, nil
}

// coreAttrs are the OCCI Core attributes an Entity keeps in its own
// fields rather than among its attributes.
var coreAttrs = []string{"id", "title", "summary", "source", "target"}

// liftCore moves occi.core.* attributes, flat or nested, into the entity's
// own members; a member given as such wins over the attribute.
func liftCore(in *entityInput, field string) error {
	if len(in.Attributes) == 0 {
		return nil
	}
	for _, name := range coreAttrs {
		flat := "occi.core." + name
		v, ok := in.Attributes[flat]
		if ok {
			delete(in.Attributes, flat)
		} else if v, ok = lookupPath(in.Attributes, []string{"occi", "core", name}); ok {
			deletePath(in.Attributes, []string{"occi", "core", name})
		}
		if !ok || v == nil {
			continue
		}
		s, isString := v.(string)
		if !isString {
			return BadRequest(flat, "%s (%s) must be a string", flat, field)
		}
		dst := map[string]**string{"id": &in.ID, "title": &in.Title, "summary": &in.Summary, "source": &in.Source, "target": &in.Target}[name]
		if *dst == nil {
			*dst = &s
		}
	}
	if core, ok := lookupPath(in.Attributes, []string{"occi", "core"}); ok {
		if m, _ := core.(map[string]any); m != nil && len(m) == 0 {
			deletePath(in.Attributes, []string{"occi", "core"})
		}
	}
	if occi, ok := in.Attributes["occi"].(map[string]any); ok && len(occi) == 0 {
		delete(in.Attributes, "occi")
	}
	return nil
}

// UnmarshalJSON reads an entity in either JSON shape: a link's source and
// target are a location string (pyOCNI) or {"location":…,"kind":…} (OCCI
// 1.2).
func (in *entityInput) UnmarshalJSON(data []byte) error {
	type plain entityInput
	aux := struct {
		*plain
		Source json.RawMessage `json:"source"`
		Target json.RawMessage `json:"target"`
	}{plain: (*plain)(in)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	var err error
	if in.Source, err = endRef("source", aux.Source); err != nil {
		return err
	}
	in.Target, err = endRef("target", aux.Target)
	return err
}

func endRef(name string, raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &s, nil
	}
	var obj struct {
		Location *string `json:"location"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil && obj.Location != nil {
		return obj.Location, nil
	}
	return nil, BadRequest(name, "%s must be a location, or an object with a location (OCCI 1.2)", name)
}

// inlineLinks reads the links of an OCCI 1.2 resource given as objects:
// links to create with it. The pyOCNI rendering's list of link URLs, sent
// back, is ignored as it always was.
func inlineLinks(raw json.RawMessage, field string) ([]entityInput, error) {
	var items []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &items) != nil {
		return nil, nil
	}
	var out []entityInput
	for i, item := range items {
		if trimmed := strings.TrimSpace(string(item)); !strings.HasPrefix(trimmed, "{") {
			continue
		}
		var l entityInput
		if err := decodeJSON(item, &l); err != nil {
			return nil, BadRequest(fmt.Sprintf("%s.links[%d]", field, i), "%v", err)
		}
		if err := liftCore(&l, fmt.Sprintf("%s.links[%d]", field, i)); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

var single12Keys = map[string]bool{"kind": true, "mixins": true, "attributes": true, "actions": true, "id": true,
	"title": true, "summary": true, "links": true, "source": true, "target": true}

// readEntities reads a body at a kind, mixin or entity location, in any
// rendering.
func readEntities(r *http.Request) (*entitiesInput, bool, error) {
	x := exchangeOf(r)
	if x.in != renderPyOCNI {
		doc, err := readText(r, x)
		if err != nil {
			return nil, true, err
		}
		if doc.empty() {
			return &entitiesInput{}, false, nil
		}
		in, err := doc.entitiesDoc()
		return in, true, err
	}
	var raw map[string]json.RawMessage
	present, err := readJSON(r, &raw)
	if err != nil || !present {
		return &entitiesInput{}, present, err
	}
	if _, ok := raw["kind"]; ok {
		return readSingle12(x, raw)
	}
	for k := range raw {
		if !entityKeys[k] {
			return nil, true, BadRequest(k, "unknown member %q; expected resources, links, X-OCCI-Location, locations or attributes (or an OCCI 1.2 entity with kind)", k)
		}
	}
	if err := checkEntityLists(raw); err != nil {
		return nil, true, err
	}
	var in entitiesInput
	if err := decodeMembers(raw, &in); err != nil {
		return nil, true, err
	}
	if in.Locations12 != nil {
		x.want12 = true
		in.Locations = append(in.Locations, in.Locations12...)
	}
	for _, list := range []struct {
		name  string
		items []entityInput
	}{{"resources", in.Resources}, {"links", in.Links}} {
		for i := range list.items {
			field := fmt.Sprintf("%s[%d]", list.name, i)
			if err := liftCore(&list.items[i], field); err != nil {
				return nil, true, err
			}
			if list.name == "resources" {
				if list.items[i].inline, err = inlineLinks(list.items[i].Links, field); err != nil {
					return nil, true, err
				}
			}
		}
	}
	return &in, true, nil
}

// readSingle12 reads an OCCI 1.2 JSON entity: one object with its kind.
func readSingle12(x *exchange, raw map[string]json.RawMessage) (*entitiesInput, bool, error) {
	for k := range raw {
		if !single12Keys[k] {
			return nil, true, BadRequest(k, "unknown member %q of an OCCI 1.2 entity; expected kind, mixins, attributes, actions, id, title, summary, links, source and target", k)
		}
	}
	x.want12 = true
	var ei entityInput
	if err := decodeMembers(raw, &ei); err != nil {
		return nil, true, err
	}
	if err := liftCore(&ei, "attributes"); err != nil {
		return nil, true, err
	}
	var err error
	if ei.inline, err = inlineLinks(ei.Links, "entity"); err != nil {
		return nil, true, err
	}
	return &entitiesInput{Untyped: []untypedInput{{in: ei}}}, true, nil
}

// typeUntyped decides whether each entity whose rendering does not say is
// a resource or a link: by its kind when the kind descends from OCCI Core's
// resource or link, by a source or target when it has one, and otherwise
// as fallback.
func (s *Server) typeUntyped(ctx context.Context, in *entitiesInput, fallback string) {
	for i := range in.Untyped {
		u := &in.Untyped[i]
		u.typ = fallback
		if u.in.Kind != nil {
			if c, _, err := s.getCategory(ctx, strings.TrimSpace(*u.in.Kind)); err == nil {
				if t := s.kindType(ctx, c); t != "" {
					u.typ = t
					continue
				}
			}
		}
		if u.in.Source != nil || u.in.Target != nil {
			u.typ = TypeLink
		}
	}
}

// kindType follows a kind's parents to OCCI Core's resource or link; ""
// when the chain reaches neither.
func (s *Server) kindType(ctx context.Context, c *Category) string {
	for depth := 0; c != nil && depth < 8; depth++ {
		switch c.ID() {
		case LinkKind:
			return TypeLink
		case ResourceKind:
			return TypeResource
		}
		if len(c.Related) == 0 {
			return ""
		}
		next, _, err := s.getCategory(ctx, c.Related[0])
		if err != nil {
			return ""
		}
		c = next
	}
	return ""
}

// readAction reads an action's parameters and the action the body names,
// if it names one: {"attributes":{…}} or the members themselves (pyOCNI
// sends "{}"), {"action":…,"attributes":{…}} (OCCI 1.2), or an action
// Category line with X-OCCI-Attribute lines.
func (s *Server) readAction(r *http.Request) (map[string]any, string, error) {
	x := exchangeOf(r)
	if x.in != renderPyOCNI {
		doc, err := readText(r, x)
		if err != nil {
			return nil, "", err
		}
		switch {
		case len(doc.links) > 0:
			return nil, "", BadRequest(doc.links[0].where, "an action takes a Category and X-OCCI-Attribute lines, not Link")
		case len(doc.locations) > 0:
			return nil, "", BadRequest(doc.locations[0].where, "an action takes a Category and X-OCCI-Attribute lines, not X-OCCI-Location")
		case len(doc.categories) > 1:
			return nil, "", BadRequest(doc.categories[1].where, "an action request names one action")
		}
		named := ""
		if len(doc.categories) == 1 {
			c := doc.categories[0]
			if c.class != ClassAction {
				return nil, "", BadRequest(c.where, "Category %s is a %s; an action request names an action", c.id(), c.class)
			}
			named = c.id()
		}
		return s.normalizeAttrs(flatAttrs(doc.attrs)), named, nil
	}
	var body map[string]any
	if _, err := readJSON(r, &body); err != nil {
		return nil, "", err
	}
	if named, ok := body["action"].(string); ok {
		x.want12 = true
		attrs, _ := body["attributes"].(map[string]any)
		return s.normalizeAttrs(attrs), named, nil
	}
	if a, ok := body["attributes"].(map[string]any); ok {
		return a, "", nil
	}
	if body == nil {
		body = map[string]any{}
	}
	return body, "", nil
}

// checkNamedAction refuses a body that names another action than the URL.
func checkNamedAction(named string, inv ActionInvocation) error {
	if named == "" || named == inv.ID || named == inv.Term {
		return nil
	}
	return BadRequest("action", "the body names action %s but the URL triggers %s", named, inv.ID)
}
