package occi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/houssem/cmbs/store"
)

// dispatch tells apart, for any path but the query interface, a kind or
// mixin location, an entity and a plain path, and hands the request on.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	path := r.URL.Path
	if !strings.HasSuffix(path, "/") {
		e, es, err := s.loadEntity(ctx, path)
		switch {
		case err == nil:
			return s.entityRoute(w, r, member{e, es})
		case statusOf(err) != http.StatusNotFound:
			return err
		}
		if r.Method == http.MethodPut {
			dir := path[:strings.LastIndexByte(path, '/')+1]
			if c, err := s.categoryAt(ctx, dir); err != nil {
				return err
			} else if c != nil && c.Class == ClassKind {
				return s.createAt(w, r, path, c)
			}
		}
		if c, err := s.categoryAt(ctx, path+"/"); err != nil {
			return err
		} else if c != nil {
			return s.collectionRoute(w, r, c)
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			return NotFound("", "no entity at %s", path)
		}
		return s.pathRoute(w, r, path+"/")
	}
	c, err := s.categoryAt(ctx, path)
	if err != nil {
		return err
	}
	if c != nil {
		return s.collectionRoute(w, r, c)
	}
	return s.pathRoute(w, r, path)
}

func methodNotAllowed(r *http.Request, allow string) error {
	return &Error{Status: http.StatusMethodNotAllowed, Allow: allow,
		Detail: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)}
}

// entityRoute serves a stored entity, read once by dispatch.
func (s *Server) entityRoute(w http.ResponseWriter, r *http.Request, m member) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.getEntity(w, r, m)
	case http.MethodPut:
		return s.replaceEntity(w, r, m.e)
	case http.MethodPost:
		if r.URL.Query().Has("action") {
			return s.entityAction(w, r, m)
		}
		return s.postEntity(w, r, m.e)
	case http.MethodDelete:
		return s.deleteEntityHandler(w, r, m)
	}
	return methodNotAllowed(r, "DELETE, GET, HEAD, POST, PUT")
}

func (s *Server) getEntity(w http.ResponseWriter, r *http.Request, m member) error {
	ctx := r.Context()
	rend, err := s.answer(r, true)
	if err != nil {
		return err
	}
	e, es := m.e, m.es
	if err := s.eachProvider(es, func(_ string, p Provider) error { return p.Read(ctx, e) }); err != nil {
		return err
	}
	return s.writeEntity(w, r, rend, http.StatusOK, e, es)
}

// single returns the one entity a PUT or POST on an entity carries.
func single(in *entitiesInput) (typedInput, error) {
	list := in.entities()
	if len(list) != 1 {
		return typedInput{}, BadRequest("resources", "send exactly one resource or link, not %d", len(list))
	}
	return list[0], nil
}

func (s *Server) writeLocation(w http.ResponseWriter, r *http.Request, status int, paths ...string) error {
	for _, p := range paths {
		w.Header().Add("Location", s.absURL(r, p))
	}
	out := s.locations(r, paths)
	return writeJSON(w, status, map[string][]string{"Location": out.Locations})
}

// putBody reads the body of a PUT on an entity.
func putBody(r *http.Request) (*entitiesInput, error) {
	in, present, err := readEntities(r)
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, BadRequest("resources", "the body must hold the entity")
	}
	return in, nil
}

// createAt creates an entity of kind with the id in the URL (PUT).
func (s *Server) createAt(w http.ResponseWriter, r *http.Request, path string, kind *Category) error {
	ctx := r.Context()
	in, err := putBody(r)
	if err != nil {
		return err
	}
	s.typeUntyped(ctx, in, s.typeOf(ctx, kind))
	ti, err := single(in)
	if err != nil {
		return err
	}
	e, es, err := s.build(ctx, ti, kind, path)
	if err != nil {
		return err
	}
	c, err := s.commitCreates(ctx, []plannedCreate{{e, es, ti.field}})
	if err != nil {
		return err
	}
	return s.finishCreate(w, r, c)
}

// finishCreate runs what the providers of created entities asked for once
// they are stored, and answers 201. When that honoured a preference of the
// request (Prefer: wait), the answer shows the entities as they are then,
// in the rendering asked for, with Preference-Applied.
func (s *Server) finishCreate(w http.ResponseWriter, r *http.Request, c *created) error {
	applied := c.afterCommit(r.Context())
	if applied == "" {
		return s.writeCreated(w, r, c.entities)
	}
	w.Header().Set("Preference-Applied", applied)
	now := make([]*Entity, 0, len(c.entities))
	for _, e := range c.entities {
		cur, err := GetEntity(r.Context(), s.store, e.Location)
		if err != nil {
			// Deleted meanwhile: show it as it was created.
			cur = e
		}
		now = append(now, cur)
	}
	return s.writeEntities(w, r, http.StatusCreated, now)
}

// replaceEntity replaces a stored entity with the one in the body (PUT).
func (s *Server) replaceEntity(w http.ResponseWriter, r *http.Request, old *Entity) error {
	ctx := r.Context()
	in, err := putBody(r)
	if err != nil {
		return err
	}
	s.typeUntyped(ctx, in, old.Type)
	ti, err := single(in)
	if err != nil {
		return err
	}
	updated, err := s.fullUpdate(ctx, old, ti)
	if err != nil {
		return err
	}
	return s.writeUpdated(w, r, updated)
}

func (s *Server) postEntity(w http.ResponseWriter, r *http.Request, old *Entity) error {
	ctx := r.Context()
	in, present, err := readEntities(r)
	if err != nil {
		return err
	}
	if !present {
		return BadRequest("resources", "the body must hold the members to update")
	}
	s.typeUntyped(ctx, in, old.Type)
	ti, err := single(in)
	if err != nil {
		return err
	}
	updated, err := s.partialUpdate(ctx, old, ti)
	if err != nil {
		return err
	}
	return s.writeUpdated(w, r, updated)
}

func (s *Server) deleteEntityHandler(w http.ResponseWriter, r *http.Request, m member) error {
	deleted, err := s.deleteMembers(r.Context(), []member{m})
	if err != nil {
		return err
	}
	return s.writeLocations(w, r, http.StatusOK, locationsOf(deleted))
}

// findAction resolves the ?action= name (term or full id) among the actions
// an entity offers.
func (s *Server) findAction(es *entitySchema, name, location string) (ActionInvocation, error) {
	offered := es.actions()
	for _, id := range offered {
		term := id[strings.LastIndexByte(id, '#')+1:]
		if name == id || name == term || s.aliases.action(schemeOf(id)+name) == id {
			return ActionInvocation{ID: id, Term: term}, nil
		}
	}
	terms := make([]string, 0, len(offered))
	for _, id := range offered {
		terms = append(terms, id[strings.LastIndexByte(id, '#')+1:])
	}
	return ActionInvocation{}, BadRequest("action", "action %q is not defined for %s (its kind and mixins offer: %s)", name, location, strings.Join(terms, ", "))
}

func schemeOf(id string) string { return id[:strings.LastIndexByte(id, '#')+1] }

// runAction triggers inv on one entity through its providers.
func (s *Server) runAction(ctx context.Context, e *Entity, es *entitySchema, inv ActionInvocation) (*ActionResult, error) {
	var result *ActionResult
	err := s.eachProvider(es, func(_ string, p Provider) error {
		res, err := p.Action(ctx, e, inv)
		if err == nil && res != nil && result == nil {
			result = res
		}
		return err
	})
	return result, err
}

func (s *Server) entityAction(w http.ResponseWriter, r *http.Request, m member) error {
	ctx := r.Context()
	e, es, path := m.e, m.es, m.e.Location
	inv, err := s.findAction(es, r.URL.Query().Get("action"), path)
	if err != nil {
		return err
	}
	var named string
	if inv.Attributes, named, err = s.readAction(r); err != nil {
		return err
	}
	if err := checkNamedAction(named, inv); err != nil {
		return err
	}
	res, err := s.runAction(ctx, e, es, inv)
	if err != nil {
		return err
	}
	if res != nil {
		return s.writeActionResult(w, r, res)
	}
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	switch rend {
	case renderPyOCNI:
		return writeJSON(w, http.StatusOK, actionDone{Action: inv.ID, Locations: []string{s.absURL(r, path)}})
	case renderURIList:
		return s.writeLocations(w, r, http.StatusOK, []string{path})
	}
	// The other renderings answer with the entity as the action left it.
	after, aes, err := s.loadEntity(ctx, path)
	if err != nil {
		return err
	}
	return s.writeEntity(w, r, rend, http.StatusOK, after, aes)
}

// actionDone is the answer of an action whose providers say nothing more.
type actionDone struct {
	Action    string   `json:"action"`
	Locations []string `json:"X-OCCI-Location"`
	Results   []any    `json:"results,omitempty"`
}

func (s *Server) collectionRoute(w http.ResponseWriter, r *http.Request, c *Category) error {
	walks := r.Method == http.MethodGet || r.Method == http.MethodHead || r.URL.Query().Has("action") ||
		(c.Class == ClassKind && r.Method == http.MethodDelete) || (c.Class == ClassMixin && r.Method == http.MethodPut)
	if walks {
		done, err := s.collectionTurn(r.Context())
		if err != nil {
			return err
		}
		defer done()
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.getCollection(w, r, c)
	case http.MethodPost:
		if r.URL.Query().Has("action") {
			return s.collectionAction(w, r, c)
		}
		if c.Class == ClassMixin {
			return s.associate(w, r, c)
		}
		return s.postCollection(w, r, c)
	case http.MethodPut:
		if c.Class == ClassMixin {
			return s.associate(w, r, c)
		}
	case http.MethodDelete:
		if c.Class == ClassMixin {
			return s.associate(w, r, c)
		}
		return s.deleteCollection(w, r, c)
	}
	if c.Class == ClassMixin {
		return methodNotAllowed(r, "DELETE, GET, HEAD, POST, PUT")
	}
	return methodNotAllowed(r, "DELETE, GET, HEAD, POST")
}

func membersOf(c *Category) store.Cond {
	if c.Class == ClassMixin {
		return store.Cond{Field: []string{"mixins"}, Op: store.Contains, Value: c.ID()}
	}
	return store.Cond{Field: []string{"kind"}, Op: store.Eq, Value: c.ID()}
}

// filterConds turns one filter object (the members of an entity, any of
// them) into store conditions.
func (s *Server) filterConds(f entityInput, field string) []store.Cond {
	var conds []store.Cond
	eq := func(name string, v any) {
		conds = append(conds, store.Cond{Field: []string{name}, Op: store.Eq, Value: v})
	}
	if f.Kind != nil {
		eq("kind", strings.TrimSpace(*f.Kind))
	}
	if f.Mixins != nil {
		for _, m := range *f.Mixins {
			conds = append(conds, store.Cond{Field: []string{"mixins"}, Op: store.Contains, Value: m})
		}
	}
	if f.ID != nil {
		eq("id", *f.ID)
	}
	if f.Title != nil {
		eq("title", *f.Title)
	}
	if f.Summary != nil {
		eq("summary", *f.Summary)
	}
	if f.Source != nil {
		eq("source", pathOf(*f.Source))
	}
	if f.Target != nil {
		eq("target", pathOf(*f.Target))
	}
	for name, v := range FlattenValues(s.normalizeAttrs(f.Attributes), func(string) bool { return false }) {
		if list, ok := v.([]any); ok {
			for _, item := range list {
				conds = append(conds, AttrCond(name, store.Contains, item))
			}
			continue
		}
		conds = append(conds, AttrCond(name, store.Eq, v))
	}
	return conds
}

// isEntity is the condition every entity document meets.
var isEntity = store.Cond{Field: []string{"doc"}, Op: store.Eq, Value: "entity"}

// filterAlternatives reads the filters in the body: each entity it holds,
// and its attributes member, is one set of conditions, and an entity
// matches when it meets any one set. None when the body is empty.
func (s *Server) filterAlternatives(r *http.Request) ([][]store.Cond, error) {
	in, present, err := readEntities(r)
	if err != nil || !present {
		return nil, err
	}
	var alternatives [][]store.Cond
	for _, ti := range in.entities() {
		var conds []store.Cond
		if !ti.untyped {
			conds = append(conds, store.Cond{Field: []string{"type"}, Op: store.Eq, Value: ti.typ})
		}
		alternatives = append(alternatives, append(conds, s.filterConds(ti.in, ti.field)...))
	}
	if in.Attrs != nil {
		alternatives = append(alternatives, s.filterConds(entityInput{Attributes: in.Attrs}, "attributes"))
	}
	return alternatives, nil
}

// idsOf lists the documents' ids.
func idsOf(docs []store.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

// getCollection lists a page of a kind's or mixin's entities, those
// matching the filter in the body when there is one: by location, or in
// full in OCCI 1.2 JSON. A kind's entities all live below its location,
// so only those are read; a mixin's may live anywhere.
func (s *Server) getCollection(w http.ResponseWriter, r *http.Request, c *Category) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	alts, err := s.filterAlternatives(r)
	if err != nil {
		return err
	}
	prefix := entityPrefix
	if c.Class == ClassKind {
		prefix = c.Location
	}
	p, err := s.pageOf(r, scopeOf(c.Class, c.ID(), alts))
	if err != nil {
		return err
	}
	docs, more, err := s.scanPage(r.Context(), prefix, p, []store.Cond{isEntity, membersOf(c)}, alts, rend == renderJSON12)
	if err != nil {
		return err
	}
	if more {
		s.setNext(w, r, p, lastOf(docs))
	}
	if rend == renderJSON12 {
		return s.streamEntities12(w, r, docs)
	}
	return s.streamLocations(w, r, rend, http.StatusOK, idsOf(docs))
}

func (s *Server) postCollection(w http.ResponseWriter, r *http.Request, c *Category) error {
	in, present, err := readEntities(r)
	if err != nil {
		return err
	}
	if !present {
		return BadRequest("resources", "the body must list resources or links to create")
	}
	if len(in.Locations) > 0 {
		return BadRequest("X-OCCI-Location", "%s is a kind location; mixins are associated at a mixin's location", c.Location)
	}
	s.typeUntyped(r.Context(), in, s.typeOf(r.Context(), c))
	created, err := s.createEntities(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.finishCreate(w, r, created)
}

// typeOf is the entity type of a kind's instances: resource unless the
// kind descends from OCCI Core's link.
func (s *Server) typeOf(ctx context.Context, kind *Category) string {
	if t := s.kindType(ctx, kind); t != "" {
		return t
	}
	return TypeResource
}

type member struct {
	e  *Entity
	es *entitySchema
}

func (s *Server) members(ctx context.Context, c *Category) ([]member, error) {
	docs, err := store.Find(ctx, s.store, store.Query{Prefix: entityPrefix, Where: []store.Cond{
		{Field: []string{"doc"}, Op: store.Eq, Value: "entity"}, membersOf(c)}})
	if err != nil {
		return nil, err
	}
	out := make([]member, 0, len(docs))
	for _, d := range docs {
		e, es, err := s.loadEntity(ctx, d.ID)
		if err != nil {
			if statusOf(err) == http.StatusNotFound {
				continue
			}
			return nil, err
		}
		out = append(out, member{e, es})
	}
	return out, nil
}

// collectionAction triggers an action on every entity of a kind or mixin.
// The action must apply to all of them before any runs.
func (s *Server) collectionAction(w http.ResponseWriter, r *http.Request, c *Category) error {
	ctx := r.Context()
	attrs, named, err := s.readAction(r)
	if err != nil {
		return err
	}
	ms, err := s.members(ctx, c)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("action")
	invs, err := s.invocations(ms, name, named, attrs)
	if err != nil {
		return err
	}
	done, paths, err := s.runOnAll(r, ms, invs, name)
	if err != nil {
		return err
	}
	if rend, err := s.answer(r, false); err != nil {
		return err
	} else if rend != renderPyOCNI {
		return s.writeLocations(w, r, http.StatusOK, paths)
	}
	return writeJSON(w, http.StatusOK, done)
}

// invocations finds the action name on each of ms, so that an entity
// without it fails the request before the action runs anywhere.
func (s *Server) invocations(ms []member, name, named string, attrs map[string]any) ([]ActionInvocation, error) {
	invs := make([]ActionInvocation, len(ms))
	for i, m := range ms {
		inv, err := s.findAction(m.es, name, m.e.Location)
		if err != nil {
			return nil, err
		}
		if err := checkNamedAction(named, inv); err != nil {
			return nil, err
		}
		inv.Attributes = attrs
		invs[i] = inv
	}
	return invs, nil
}

// runOnAll runs each invocation on its entity, all of them even when some
// fail, and returns what the answer lists: the entities it ran on, with
// their results. Any failure fails the request, naming every entity that
// failed.
func (s *Server) runOnAll(r *http.Request, ms []member, invs []ActionInvocation, name string) (actionDone, []string, error) {
	done := actionDone{Action: name, Locations: []string{}}
	var paths []string
	var failures []string
	var firstErr error
	for i, m := range ms {
		res, err := s.runAction(r.Context(), m.e, m.es, invs[i])
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", m.e.Location, err))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		done.Action = invs[i].ID
		done.Locations = append(done.Locations, s.absURL(r, m.e.Location))
		paths = append(paths, m.e.Location)
		if res != nil {
			done.Results = append(done.Results, res.Body)
		}
	}
	if firstErr != nil {
		return done, nil, &Error{Status: statusOf(firstErr), Field: "action", Err: firstErr,
			Detail: fmt.Sprintf("action %s failed on %d of %d entities: %s", name, len(failures), len(ms), strings.Join(failures, "; "))}
	}
	return done, paths, nil
}

// deleteCollection deletes every entity of a kind.
func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, c *Category) error {
	ms, err := s.members(r.Context(), c)
	if err != nil {
		return err
	}
	return s.deleteAll(w, r, ms)
}

func (s *Server) deleteAll(w http.ResponseWriter, r *http.Request, ms []member) error {
	deleted, err := s.deleteMembers(r.Context(), ms)
	if err != nil {
		return err
	}
	return s.writeLocations(w, r, http.StatusOK, locationsOf(deleted))
}

// associate adds (POST), sets (PUT) or removes (DELETE) a mixin on the
// entities listed in X-OCCI-Location. Every listed entity is checked before
// any changes.
func (s *Server) associate(w http.ResponseWriter, r *http.Request, mixin *Category) error {
	ctx := r.Context()
	refs, err := associationRefs(r, mixin)
	if err != nil {
		return err
	}
	targets, listed, err := s.loadListed(ctx, refs)
	if err != nil {
		return err
	}
	changes, err := s.mixinChanges(ctx, r.Method, mixin, targets, listed)
	if err != nil {
		return err
	}
	plan, err := s.planMixinChanges(ctx, mixin, changes)
	if err != nil {
		return err
	}
	if err := s.replaceAll(ctx, plan); err != nil {
		return err
	}
	paths := []string{}
	for _, p := range plan {
		paths = append(paths, p.old.Location)
	}
	return s.writeLocations(w, r, http.StatusOK, paths)
}

// associationRefs reads the entity locations an association request lists
// in X-OCCI-Location.
func associationRefs(r *http.Request, mixin *Category) ([]string, error) {
	in, present, err := readEntities(r)
	if err != nil {
		return nil, err
	}
	if !present || in.Locations == nil {
		if r.Method == http.MethodPost && present && len(in.entities()) > 0 {
			return nil, BadRequest("resources", "%s is a mixin location; create entities at their kind's location and list them here in X-OCCI-Location", mixin.Location)
		}
		return nil, BadRequest("X-OCCI-Location", "the body must list entity locations in X-OCCI-Location")
	}
	return in.Locations, nil
}

// loadListed loads the entity at each of refs once, and returns the set of
// their paths too. A location with no entity is the request's mistake.
func (s *Server) loadListed(ctx context.Context, refs []string) ([]member, map[string]bool, error) {
	listed := map[string]bool{}
	var targets []member
	for i, ref := range refs {
		path := pathOf(strings.TrimSpace(ref))
		if listed[path] {
			continue
		}
		listed[path] = true
		e, es, err := s.loadEntity(ctx, path)
		if err != nil {
			if statusOf(err) == http.StatusNotFound {
				return nil, nil, BadRequest(fmt.Sprintf("X-OCCI-Location[%d]", i), "no entity at %s", ref)
			}
			return nil, nil, err
		}
		targets = append(targets, member{e, es})
	}
	return targets, listed, nil
}

// mixinChange is one entity gaining (add) or losing the mixin.
type mixinChange struct {
	m   member
	add bool
}

// mixinChanges is what method asks of the listed targets: POST and PUT add
// the mixin where it is missing, DELETE removes it where it is present, and
// PUT also removes it from the entities that have it but are not listed.
func (s *Server) mixinChanges(ctx context.Context, method string, mixin *Category, targets []member, listed map[string]bool) ([]mixinChange, error) {
	var changes []mixinChange
	for _, m := range targets {
		has := m.e.HasMixin(mixin.ID())
		switch {
		case method == http.MethodDelete && has:
			changes = append(changes, mixinChange{m, false})
		case method != http.MethodDelete && !has:
			changes = append(changes, mixinChange{m, true})
		}
	}
	if method != http.MethodPut {
		return changes, nil
	}
	current, err := s.members(ctx, mixin)
	if err != nil {
		return nil, err
	}
	for _, m := range current {
		if !listed[m.e.Location] {
			changes = append(changes, mixinChange{m, false})
		}
	}
	return changes, nil
}

// planMixinChanges builds and checks every updated entity before any is
// stored, so a change the schema refuses leaves all of them as they were.
func (s *Server) planMixinChanges(ctx context.Context, mixin *Category, changes []mixinChange) ([]replacement, error) {
	var plan []replacement
	for _, c := range changes {
		updated := *c.m.e
		updated.Attributes, _ = deepCopy(c.m.e.Attributes).(map[string]any)
		if c.add {
			updated.Mixins = append(append([]string{}, c.m.e.Mixins...), mixin.ID())
		} else {
			updated.Mixins = withoutMixin(c.m.e.Mixins, mixin.ID())
		}
		es, err := s.resolveSchema(ctx, updated.Kind, updated.Mixins, "X-OCCI-Location")
		if err != nil {
			return nil, err
		}
		if err := s.complete(es, &updated); err != nil {
			return nil, err
		}
		plan = append(plan, replacement{c.m.e, &updated, es})
	}
	return plan, nil
}

// withoutMixin is mixins less id, in a new slice (nil when none is left).
func withoutMixin(mixins []string, id string) []string {
	var out []string
	for _, m := range mixins {
		if m != id {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) pathRoute(w http.ResponseWriter, r *http.Request, path string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		done, err := s.collectionTurn(r.Context())
		if err != nil {
			return err
		}
		defer done()
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.getPath(w, r, path)
	case http.MethodDelete:
		return s.deletePath(w, r, path)
	}
	return methodNotAllowed(r, "DELETE, GET, HEAD")
}

// getPath lists a page of what lies below a path: the entities directly
// in it and the sub-paths that hold more, as a file system listing would.
// With a filter body it lists every matching entity below the path
// instead.
func (s *Server) getPath(w http.ResponseWriter, r *http.Request, path string) error {
	rend, err := s.answer(r, false)
	if err != nil {
		return err
	}
	if hasBody(r) || (exchangeOf(r).in == renderHeaders && hasOCCIHeaders(r.Header)) {
		alts, err := s.filterAlternatives(r)
		if err != nil {
			return err
		}
		p, err := s.pageOf(r, scopeOf("filter", path, alts))
		if err != nil {
			return err
		}
		docs, more, err := s.scanPage(r.Context(), path, p, []store.Cond{isEntity}, alts, false)
		if err != nil {
			return err
		}
		if more {
			s.setNext(w, r, p, lastOf(docs))
		}
		return s.streamLocations(w, r, rend, http.StatusOK, idsOf(docs))
	}
	p, err := s.pageOf(r, scopeOf("path", path, nil))
	if err != nil {
		return err
	}
	paths, more, err := s.pathPage(r.Context(), path, p)
	if err != nil {
		return err
	}
	if len(paths) == 0 && p.after == "" && path != "/" {
		return NotFound("", "nothing is stored below %s", path)
	}
	if more {
		s.setNext(w, r, p, paths[len(paths)-1])
	}
	return s.streamLocations(w, r, rend, http.StatusOK, paths)
}

// deletePath deletes every entity below a path.
func (s *Server) deletePath(w http.ResponseWriter, r *http.Request, path string) error {
	ctx := r.Context()
	docs, err := s.store.List(ctx, path)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return NotFound("", "nothing is stored below %s", path)
	}
	var ms []member
	for _, d := range docs {
		e, es, err := s.loadEntity(ctx, d.ID)
		if err != nil {
			if statusOf(err) == http.StatusNotFound {
				continue
			}
			return err
		}
		ms = append(ms, member{e, es})
	}
	return s.deleteAll(w, r, ms)
}
