package occi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Every handler answers through the writers below, which render the same
// content in the rendering negotiated for the request. The pyOCNI branches
// keep the answers the original's request files have always had.

// entityView is what the OCCI renderings show of one entity: the entity,
// its categories and the actions they offer, for a resource the links that
// start at it, and for a link the kinds of its ends.
type entityView struct {
	e                      *Entity
	es                     *entitySchema
	actions                []string
	links                  []*entityView
	sourceKind, targetKind string
}

// view gathers what the renderings show of e; withLinks also loads the
// links that start at a resource.
func (s *Server) view(ctx context.Context, e *Entity, es *entitySchema, withLinks bool) (*entityView, error) {
	v := &entityView{e: e, es: es, actions: es.actions()}
	if e.Type == TypeLink {
		v.sourceKind, v.targetKind = s.kindAt(ctx, e.Source), s.kindAt(ctx, e.Target)
		return v, nil
	}
	if !withLinks {
		return v, nil
	}
	links, err := s.linksOf(ctx, e.Location, false)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		les, err := s.resolveSchema(ctx, l.Kind, l.Mixins, "link")
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", l.Location, err)
		}
		lv, err := s.view(ctx, l, les, false)
		if err != nil {
			return nil, err
		}
		v.links = append(v.links, lv)
	}
	return v, nil
}

// viewOf loads the schema of e and gathers its view.
func (s *Server) viewOf(ctx context.Context, e *Entity) (*entityView, error) {
	es, err := s.resolveSchema(ctx, e.Kind, e.Mixins, "entity")
	if err != nil {
		return nil, fmt.Errorf("entity %s refers to categories that are gone: %w", e.Location, err)
	}
	return s.view(ctx, e, es, true)
}

// kindAt is the kind of the entity at path, or "" when there is none.
func (s *Server) kindAt(ctx context.Context, path string) string {
	e, err := GetEntity(ctx, s.store, path)
	if err != nil {
		return ""
	}
	return e.Kind
}

// flat lists the entity's attributes by dotted name, with the OCCI Core
// ones the Entity keeps in its own fields.
func (v *entityView) flat() map[string]any {
	e := v.e
	out := FlattenValues(e.Attributes, v.es.attrs.isLeaf)
	out["occi.core.id"] = e.ID
	if e.Title != "" {
		out["occi.core.title"] = e.Title
	}
	if e.Type == TypeLink {
		out["occi.core.source"], out["occi.core.target"] = e.Source, e.Target
	} else if e.Summary != "" {
		out["occi.core.summary"] = e.Summary
	}
	return out
}

// text renders the entity as OCCI text lines: its categories, a Link for
// each action and each link it starts, and its attributes.
func (s *Server) entityText(r *http.Request, v *entityView) *textOut {
	t := &textOut{}
	t.add(hdrCategory, categoryValue(v.es.kind, false))
	for _, m := range v.es.mixins {
		t.add(hdrCategory, categoryValue(m, false))
	}
	for _, a := range v.actions {
		t.add(hdrLink, fmt.Sprintf("<%s?action=%s>; rel=%s", v.e.Location, a[strings.LastIndexByte(a, '#')+1:], quote(a)))
	}
	for _, l := range v.links {
		t.add(hdrLink, l.linkValue())
	}
	for _, line := range attrLines(v.flat()) {
		t.add(hdrAttribute, line)
	}
	return t
}

// linkValue renders a link as the Link value of the resource it starts at.
func (v *entityView) linkValue() string {
	rel := v.targetKind
	if rel == "" {
		rel = ResourceKind
	}
	cats := append([]string{v.e.Kind}, v.e.Mixins...)
	parts := []string{"<" + v.e.Target + ">", "rel=" + quote(rel), "self=" + quote(v.e.Location), "category=" + quote(strings.Join(cats, " "))}
	return strings.Join(append(parts, attrLines(v.flat())...), "; ")
}

func (s *Server) answer(r *http.Request, full bool) (rendering, error) {
	return exchangeOf(r).answer(full)
}

// writeLocations answers a list of entity and path locations.
func (s *Server) writeLocations(w http.ResponseWriter, r *http.Request, status int, paths []string) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	loc := s.locations(r, paths)
	switch rend {
	case renderPyOCNI:
		return writeJSON(w, status, loc)
	case renderJSON12:
		return writeJSON12(w, status, locations12(loc))
	}
	t := &textOut{}
	for _, u := range loc.Locations {
		t.add(hdrLocation, u)
	}
	return t.write(w, rend, status)
}

// writeEntity answers the representation of one entity.
func (s *Server) writeEntity(w http.ResponseWriter, r *http.Request, rend rendering, status int, e *Entity, es *entitySchema) error {
	ctx := r.Context()
	if es == nil {
		var err error
		if es, err = s.resolveSchema(ctx, e.Kind, e.Mixins, "entity"); err != nil {
			return fmt.Errorf("entity %s refers to categories that are gone: %w", e.Location, err)
		}
	}
	switch rend {
	case renderPyOCNI:
		out, err := s.render(ctx, r, e, es)
		if err != nil {
			return err
		}
		return writeJSON(w, status, entityDocument(e.Type, []entityJSON{out}))
	case renderURIList:
		t := &textOut{}
		t.add(hdrLocation, s.absURL(r, e.Location))
		return t.write(w, rend, status)
	}
	v, err := s.view(ctx, e, es, true)
	if err != nil {
		return err
	}
	if rend == renderJSON12 {
		return writeJSON12(w, status, v.json12())
	}
	return s.entityText(r, v).write(w, rend, status)
}

// writeCreated answers the creation of entities: a Location header each,
// and the locations (pyOCNI, text) or the entities (OCCI 1.2 JSON).
// text/occi carries a single create in Location alone.
func (s *Server) writeCreated(w http.ResponseWriter, r *http.Request, created []*Entity) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(created))
	for _, e := range created {
		paths = append(paths, e.Location)
	}
	if rend == renderPyOCNI {
		return s.writeLocation(w, r, http.StatusCreated, paths...)
	}
	for _, p := range paths {
		w.Header().Add("Location", s.absURL(r, p))
	}
	if rend == renderJSON12 {
		views := make([]*entityView, 0, len(created))
		for _, e := range created {
			v, err := s.viewOf(r.Context(), e)
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		if len(views) == 1 || onlyItsLinks(created) {
			// One entity, or one resource with the links it was created
			// with, which its rendering holds.
			return writeJSON12(w, http.StatusCreated, views[0].json12())
		}
		return writeJSON12(w, http.StatusCreated, collectionOf12(views))
	}
	t := &textOut{}
	if rend != renderHeaders || len(paths) > 1 {
		for _, p := range paths {
			t.add(hdrLocation, s.absURL(r, p))
		}
	}
	return t.write(w, rend, http.StatusCreated)
}

// writeUpdated answers a full or partial update: the location (pyOCNI,
// text/uri-list) or the updated entity, with a Location header.
func (s *Server) writeUpdated(w http.ResponseWriter, r *http.Request, e *Entity) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	if rend == renderPyOCNI {
		return s.writeLocation(w, r, http.StatusOK, e.Location)
	}
	w.Header().Set("Location", s.absURL(r, e.Location))
	return s.writeEntity(w, r, rend, http.StatusOK, e, nil)
}

// writeCategories answers the query interface: categories, and for a PUT
// the providers it attached (pyOCNI only).
func (s *Server) writeCategories(w http.ResponseWriter, r *http.Request, status int, cats []*Category, providers []providerJSON) error {
	rend, err := s.answer(r, true)
	if err != nil {
		return err
	}
	switch rend {
	case renderPyOCNI:
		out := renderCategories(cats)
		out.Providers = providers
		return writeJSON(w, status, out)
	case renderJSON12:
		return writeJSON12(w, status, renderModel12(cats))
	}
	sortCategories(cats)
	t := &textOut{}
	for _, c := range cats {
		t.add(hdrCategory, categoryValue(c, true))
	}
	return t.write(w, rend, status)
}

// writeActionResult answers what a provider's action returned: its body
// as JSON, or in the text renderings as attributes; its Location as a
// header.
func (s *Server) writeActionResult(w http.ResponseWriter, r *http.Request, res *ActionResult) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	status := res.Status
	if status == 0 {
		status = http.StatusOK
	}
	if res.PreferenceApplied != "" {
		w.Header().Set("Preference-Applied", res.PreferenceApplied)
	}
	if rend == renderPyOCNI || rend == renderJSON12 {
		if res.Location == "" {
			return writeJSON(w, status, res.Body)
		}
		if res.Body != nil {
			w.Header().Set("Location", s.absURL(r, res.Location))
			return writeJSON(w, status, res.Body)
		}
		return s.writeLocation(w, r, status, res.Location)
	}
	t := &textOut{}
	if res.Location != "" {
		w.Header().Set("Location", s.absURL(r, res.Location))
		t.add(hdrLocation, s.absURL(r, res.Location))
	}
	if res.Body != nil {
		lines, err := resultLines(res.Body)
		if err != nil {
			return err
		}
		for _, l := range lines {
			t.add(hdrAttribute, l)
		}
	}
	return t.write(w, rend, status)
}

// resultLines renders an action's JSON result as attributes: an object by
// its dotted names, anything else as one attribute called result.
func resultLines(body any) ([]string, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode action result: %w", err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode action result: %w", err)
	}
	if m, ok := v.(map[string]any); ok {
		return attrLines(FlattenValues(m, func(string) bool { return false })), nil
	}
	return attrLines(map[string]any{"result": v}), nil
}

// writeError answers err in the text renderings as a plain text line when
// the client takes one of them, and as a problem document otherwise.
func writeError(w http.ResponseWriter, x *exchange, err error) {
	if x != nil {
		if rend, aerr := x.answer(false); aerr == nil && rend != renderPyOCNI && rend != renderJSON12 {
			p := ProblemOf(err)
			setStatusHeaders(w, err, p.Status)
			w.Header().Set("Content-Type", mediaTextPlain)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(p.Status)
			msg := p.Detail
			if p.Field != "" {
				msg = p.Field + ": " + msg
			}
			_, _ = w.Write([]byte(msg + "\n"))
			return
		}
	}
	WriteProblem(w, err)
}

// onlyItsLinks reports whether every entity after the first is a link
// that starts at the first.
func onlyItsLinks(created []*Entity) bool {
	for _, e := range created[1:] {
		if e.Type != TypeLink || e.Source != created[0].Location {
			return false
		}
	}
	return created[0].Type == TypeResource
}

// writeEntities answers the representation of entities just created: in
// the JSON renderings all of them, in the text renderings the one entity,
// or the locations of several (text carries one entity per answer).
func (s *Server) writeEntities(w http.ResponseWriter, r *http.Request, status int, ents []*Entity) error {
	rend, err := s.answer(r, true)
	if err != nil {
		return err
	}
	for _, e := range ents {
		w.Header().Add("Location", s.absURL(r, e.Location))
	}
	if len(ents) == 1 {
		return s.writeEntity(w, r, rend, status, ents[0], nil)
	}
	ctx := r.Context()
	switch rend {
	case renderPyOCNI:
		byType := map[string][]entityJSON{}
		for _, e := range ents {
			es, err := s.resolveSchema(ctx, e.Kind, e.Mixins, "entity")
			if err != nil {
				return err
			}
			out, err := s.render(ctx, r, e, es)
			if err != nil {
				return err
			}
			byType[e.Type+"s"] = append(byType[e.Type+"s"], out)
		}
		return writeJSON(w, status, byType)
	case renderJSON12:
		views := make([]*entityView, 0, len(ents))
		for _, e := range ents {
			v, err := s.viewOf(ctx, e)
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		return writeJSON12(w, status, collectionOf12(views))
	}
	paths := make([]string, len(ents))
	for i, e := range ents {
		paths[i] = e.Location
	}
	return s.writeLocations(w, r, status, paths)
}
