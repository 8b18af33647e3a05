package occi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// entityInput is a resource or link as clients send it. Pointers tell an
// absent member from an empty one, which partial updates need.
type entityInput struct {
	Kind       *string         `json:"kind"`
	Mixins     *[]string       `json:"mixins"`
	Attributes map[string]any  `json:"attributes"`
	Actions    json.RawMessage `json:"actions"`
	ID         *string         `json:"id"`
	Title      *string         `json:"title"`
	Summary    *string         `json:"summary"`
	Links      json.RawMessage `json:"links"`
	Source     *string         `json:"source"`
	Target     *string         `json:"target"`
	// inline are links to create together with this resource, starting at
	// it: Link lines of the text renderings, link objects of OCCI 1.2.
	inline []entityInput
}

// entitiesInput is a body at a kind, mixin or entity location.
type entitiesInput struct {
	Resources []entityInput  `json:"resources"`
	Links     []entityInput  `json:"links"`
	Locations []string       `json:"X-OCCI-Location"`
	Attrs     map[string]any `json:"attributes"`
	// Locations12 is the OCCI 1.2 spelling of Locations.
	Locations12 []string `json:"locations"`
	// Untyped are entities whose rendering does not say whether they are
	// resources or links; typeUntyped decides.
	Untyped []untypedInput `json:"-"`
}

// untypedInput is an entity of the text renderings or an OCCI 1.2 object.
type untypedInput struct {
	in  entityInput
	typ string
}

var entityKeys = map[string]bool{"resources": true, "links": true, "X-OCCI-Location": true, "locations": true, "attributes": true}

// typed pairs each input with the entity type its list names.
type typedInput struct {
	typ   string
	field string
	in    entityInput
	// untyped inputs filter without a condition on the type.
	untyped bool
	// inline links start at a resource created by the same request, so
	// their source is not looked up.
	inline bool
}

func (in *entitiesInput) entities() []typedInput {
	var out []typedInput
	for i, e := range in.Resources {
		out = append(out, typedInput{typ: TypeResource, field: fmt.Sprintf("resources[%d]", i), in: e})
	}
	for i, e := range in.Links {
		out = append(out, typedInput{typ: TypeLink, field: fmt.Sprintf("links[%d]", i), in: e})
	}
	for i, u := range in.Untyped {
		field := "entity"
		if len(in.Untyped) > 1 {
			field = fmt.Sprintf("entity[%d]", i)
		}
		typ := u.typ
		if typ == "" {
			typ = TypeResource
		}
		out = append(out, typedInput{typ: typ, field: field, in: u.in, untyped: true})
	}
	return out
}

// entityJSON is an entity in the pyOCNI rendering.
type entityJSON struct {
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
	Actions    []actionJSON   `json:"actions"`
	ID         string         `json:"id"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Links      []string       `json:"links,omitempty"`
	Source     string         `json:"source,omitempty"`
	Target     string         `json:"target,omitempty"`
}

type actionJSON struct {
	Title    string `json:"title,omitempty"`
	Href     string `json:"href"`
	Category string `json:"category"`
}

// locationsJSON lists entities and paths by absolute URL.
type locationsJSON struct {
	Locations []string `json:"X-OCCI-Location"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:~@-]{0,254}$`)

// entitySchema is what applies to one entity: its categories and the
// attribute definitions they declare.
type entitySchema struct {
	kind   *Category
	mixins []*Category
	attrs  schema
}

// resolveSchema loads an entity's kind (with its parents) and mixins,
// refusing unknown ones with 400 naming the field.
//
// Schemas are kept with the cached categories, so that a request creating
// many entities of one kind resolves it once; they are shared, and read
// only.
func (s *Server) resolveSchema(ctx context.Context, kind string, mixins []string, field string) (*entitySchema, error) {
	key := kind + "\x00" + strings.Join(mixins, "\x00")
	es, gen, ok := s.categories.schema(key)
	if ok {
		return es, nil
	}
	es, err := s.loadSchema(ctx, kind, mixins, field)
	if err != nil {
		return nil, err
	}
	s.categories.keepSchema(key, gen, es)
	return es, nil
}

// loadSchema resolves a schema from the categories.
func (s *Server) loadSchema(ctx context.Context, kind string, mixins []string, field string) (*entitySchema, error) {
	k, _, err := s.getCategory(ctx, kind)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.Class != ClassKind) {
		return nil, BadRequest(field+".kind", "unknown kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	es := &entitySchema{kind: k}
	cats := []*Category{k}
	parent := k
	for depth := 0; depth < 8 && len(parent.Related) > 0; depth++ {
		p, _, err := s.getCategory(ctx, parent.Related[0])
		if err != nil {
			break
		}
		cats = append(cats, p)
		parent = p
	}
	for i, m := range mixins {
		c, _, err := s.getCategory(ctx, m)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.Class != ClassMixin) {
			return nil, BadRequest(fmt.Sprintf("%s.mixins[%d]", field, i), "unknown mixin %q", m)
		}
		if err != nil {
			return nil, err
		}
		es.mixins = append(es.mixins, c)
		cats = append(cats, c)
	}
	es.attrs = newSchema(cats...)
	return es, nil
}

// actions lists the action ids the entity's kind, parents and mixins offer.
func (es *entitySchema) actions() []string {
	out := append([]string{}, es.kind.Actions...)
	for _, m := range es.mixins {
		out = append(out, m.Actions...)
	}
	return dedupe(out)
}

// providerNames lists the local providers attached to the kind and mixins.
func (es *entitySchema) providerNames() []string {
	var out []string
	for _, c := range append([]*Category{es.kind}, es.mixins...) {
		if c.Providers != nil {
			out = append(out, c.Providers.Local...)
		}
	}
	return dedupe(out)
}

// lockKinds takes the locks of every kind among schemas that has an
// Exclusive provider, in the order of their ids so that requests locking
// several cannot deadlock; the returned function unlocks them.
func (s *Server) lockKinds(schemas ...*entitySchema) func() {
	var ids []string
	for _, es := range schemas {
		if s.exclusive(es) && !slices.Contains(ids, es.kind.ID()) {
			ids = append(ids, es.kind.ID())
		}
	}
	sort.Strings(ids)
	unlocks := make([]func(), 0, len(ids))
	for _, id := range ids {
		v, _ := s.kindLocks.LoadOrStore(id, &sync.Mutex{})
		mu := v.(*sync.Mutex)
		mu.Lock()
		unlocks = append(unlocks, mu.Unlock)
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

// exclusive reports whether one of es's providers is Exclusive.
func (s *Server) exclusive(es *entitySchema) bool {
	for _, name := range es.providerNames() {
		p, ok := s.providers.Lookup(name)
		if _, exclusive := p.(Exclusive); ok && exclusive {
			return true
		}
	}
	return false
}

// eachProvider calls fn for every registered provider of es, stopping at the
// first error.
func (s *Server) eachProvider(es *entitySchema, fn func(name string, p Provider) error) error {
	for _, name := range es.providerNames() {
		p, ok := s.providers.Lookup(name)
		if !ok {
			s.log.WithFields(logrus.Fields{"provider": name, "kind": es.kind.ID()}).Warn("skipping unregistered provider")
			continue
		}
		if err := fn(name, p); err != nil {
			return providerError(name, err)
		}
	}
	return nil
}

// normalizeAttrs expands dotted top-level names into the nested form and
// applies aliases, so both renderings and both spellings store alike.
func (s *Server) normalizeAttrs(attrs map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range attrs {
		if strings.Contains(k, ".") {
			continue
		}
		out[k] = deepCopy(v)
	}
	for k, v := range attrs {
		if strings.Contains(k, ".") {
			setPath(out, splitName(k), deepCopy(v))
		}
	}
	s.aliases.canonicalAttrs(out)
	return out
}

// build turns a create or full-replace input into a validated entity.
// defaultKind applies when the input names none; location, when set, is
// where a PUT put it.
func (s *Server) build(ctx context.Context, ti typedInput, defaultKind *Category, location string) (*Entity, *entitySchema, error) {
	in := ti.in
	kind, err := inputKind(ti, defaultKind)
	if err != nil {
		return nil, nil, err
	}
	var mixins []string
	if in.Mixins != nil {
		if err := checkMixinList(ti.field, *in.Mixins); err != nil {
			return nil, nil, err
		}
		mixins = append([]string{}, *in.Mixins...)
	}
	es, err := s.resolveSchema(ctx, kind, mixins, ti.field)
	if err != nil {
		return nil, nil, err
	}
	if defaultKind != nil && es.kind.ID() != defaultKind.ID() {
		return nil, nil, BadRequest(ti.field+".kind", "kind %s does not live at %s, the location of %s", kind, defaultKind.Location, defaultKind.ID())
	}
	e := s.entityOf(ti, es, mixins)
	if err := assignID(e, ti.field, location); err != nil {
		return nil, nil, err
	}
	if err := place(e, es, kind, ti.field, location); err != nil {
		return nil, nil, err
	}
	if ti.typ == TypeLink {
		if err := s.resolveEnds(ctx, e, in, ti.field, ti.inline); err != nil {
			return nil, nil, err
		}
	} else if in.Source != nil || in.Target != nil {
		return nil, nil, BadRequest(ti.field+".source", "only links have a source and a target; send them in \"links\"")
	}
	if err := s.complete(es, e); err != nil {
		return nil, nil, err
	}
	return e, es, nil
}

// inputKind is the kind an input names, or defaultKind's when it names none.
func inputKind(ti typedInput, defaultKind *Category) (string, error) {
	kind := ""
	if ti.in.Kind != nil {
		if kind = strings.TrimSpace(*ti.in.Kind); kind == "" {
			return "", BadRequest(ti.field+".kind", "kind is empty; name the entity's kind, or leave kind out for the kind of the location it is posted to")
		}
	}
	if kind == "" && defaultKind != nil {
		kind = defaultKind.ID()
	}
	if kind == "" {
		return "", BadRequest(ti.field+".kind", "kind is required")
	}
	return kind, nil
}

// entityOf is the entity an input describes, of the kind es resolved, with
// the id the input gives (if any) and without a location yet.
func (s *Server) entityOf(ti typedInput, es *entitySchema, mixins []string) *Entity {
	in := ti.in
	e := &Entity{Type: ti.typ, Kind: es.kind.ID(), Mixins: mixins, Attributes: s.normalizeAttrs(in.Attributes)}
	if e.Mixins == nil {
		e.Mixins = []string{}
	}
	if in.Title != nil {
		e.Title = *in.Title
	}
	if in.Summary != nil {
		e.Summary = *in.Summary
	}
	if in.ID != nil {
		e.ID = strings.TrimSpace(*in.ID)
	}
	return e
}

// assignID settles e's id: the last segment of location for a PUT (which
// an id in the body must match), the body's, or a new UUID.
func assignID(e *Entity, field, location string) error {
	switch {
	case location != "":
		id := location[strings.LastIndexByte(location, '/')+1:]
		if e.ID != "" && e.ID != id {
			return BadRequest(field+".id", "id %q differs from the id in the URL, %q", e.ID, id)
		}
		e.ID = id
	case e.ID == "":
		e.ID = uuid.NewString()
	}
	return checkID(field+".id", e.ID)
}

// place sets e's location under its kind's, which a PUT's location must be.
func place(e *Entity, es *entitySchema, kind, field, location string) error {
	if es.kind.Location == "" {
		return BadRequest(field+".kind", "kind %s has no location, so it has no instances", kind)
	}
	e.Location = es.kind.Location + e.ID
	if location != "" && location != e.Location {
		return BadRequest(field+".kind", "an entity of kind %s lives at %s, not %s", kind, e.Location, location)
	}
	return nil
}

// complete fills e's attribute defaults and checks it against es, logging
// what lenient validation let through.
func (s *Server) complete(es *entitySchema, e *Entity) error {
	es.attrs.fillDefaults(e)
	warnings, err := s.valid.check(es.attrs, e)
	if err != nil {
		return err
	}
	s.warn(e, warnings)
	return nil
}

func (s *Server) warn(e *Entity, warnings []string) {
	for _, w := range warnings {
		s.log.WithFields(logrus.Fields{"entity": e.Location, "warning": w}).Warn("attribute accepted by lenient validation")
	}
}

// resolveEnds checks a link's source and target name stored resources.
// pendingSource skips the source, a resource the same request creates.
func (s *Server) resolveEnds(ctx context.Context, e *Entity, in entityInput, field string, pendingSource bool) error {
	for _, end := range []struct {
		name string
		ref  *string
		dst  *string
	}{{"source", in.Source, &e.Source}, {"target", in.Target, &e.Target}} {
		if end.ref == nil || strings.TrimSpace(*end.ref) == "" {
			return BadRequest(field+"."+end.name, "a link needs a %s", end.name)
		}
		path := pathOf(strings.TrimSpace(*end.ref))
		if pendingSource && end.name == "source" {
			*end.dst = path
			continue
		}
		other, err := GetEntity(ctx, s.store, path)
		if errors.Is(err, store.ErrNotFound) {
			return BadRequest(field+"."+end.name, "%s %s does not exist; create it before the link", end.name, *end.ref)
		}
		if err != nil {
			return err
		}
		if other.Type != TypeResource {
			return BadRequest(field+"."+end.name, "%s %s is a link; links join resources", end.name, *end.ref)
		}
		*end.dst = path
	}
	return nil
}

// createEntities stores new entities posted to a kind's location. All are
// validated and passed to their providers before any is written, and all
// are written in one store transaction, with what Stager providers add, so
// a request creates every entity it lists or none.
func (s *Server) createEntities(ctx context.Context, kind *Category, in *entitiesInput) (*created, error) {
	inputs := in.entities()
	if len(inputs) == 0 {
		return nil, BadRequest("resources", "the body must list resources or links to create")
	}
	var plan []plannedCreate
	seen := map[string]bool{}
	for i := 0; i < len(inputs); i++ {
		ti := inputs[i]
		home := kind
		if ti.inline {
			home = nil
		}
		e, es, err := s.build(ctx, ti, home, "")
		if err != nil {
			return nil, err
		}
		for j, l := range ti.in.inline {
			source := e.Location
			l.Source = &source
			inputs = append(inputs, typedInput{typ: TypeLink, field: fmt.Sprintf("%s.links[%d]", ti.field, j), in: l, inline: true})
		}
		if seen[e.Location] {
			return nil, BadRequest(ti.field+".id", "id %s appears twice in the request", e.ID)
		}
		seen[e.Location] = true
		plan = append(plan, plannedCreate{e, es, ti.field})
	}
	// One read for the whole request, so a large batch costs one round
	// trip to the store, not one per entity.
	locations := make([]string, len(plan))
	for i, p := range plan {
		locations[i] = p.e.Location
	}
	existing, err := store.GetMany(ctx, s.store, locations)
	if err != nil {
		return nil, err
	}
	for _, p := range plan {
		if _, ok := existing[p.e.Location]; ok {
			return nil, Conflict(p.field+".id", "%s already exists", p.e.Location)
		}
	}
	return s.commitCreates(ctx, plan)
}

// plannedCreate is an entity built and checked, to be created; field
// names it in the request.
type plannedCreate struct {
	e     *Entity
	es    *entitySchema
	field string
}

// created is the outcome of a create: the entities and what their
// providers want done once they are committed.
type created struct {
	entities  []*Entity
	committed []committedStage
}

// committedStage is a Stage's Committed function with the revisions of its
// writes.
type committedStage struct {
	fn   func(context.Context, []string) string
	revs []string
}

// commitCreates runs the providers' Create (or StageCreate) of every
// planned entity and writes them all, with the providers' own writes, in
// one store transaction, under the locks of their kinds that have an
// Exclusive provider.
func (s *Server) commitCreates(ctx context.Context, plan []plannedCreate) (*created, error) {
	schemas := make([]*entitySchema, len(plan))
	for i, p := range plan {
		schemas[i] = p.es
	}
	defer s.lockKinds(schemas...)()
	out := &created{}
	ents := make([]*Entity, len(plan))
	for i, p := range plan {
		ents[i] = p.e
	}
	bctx := withBatch(ctx, ents)
	var writes []store.Write
	type span struct {
		stage      *Stage
		start, end int
	}
	var spans []span
	for _, p := range plan {
		var staged []*Stage
		err := s.eachProvider(p.es, func(_ string, pr Provider) error {
			if st, ok := pr.(Stager); ok {
				stage, err := st.StageCreate(bctx, p.e)
				if stage != nil {
					staged = append(staged, stage)
				}
				return err
			}
			return pr.Create(bctx, p.e)
		})
		if err != nil {
			return nil, err
		}
		d, err := EncodeEntity(p.e)
		if err != nil {
			return nil, err
		}
		writes = append(writes, store.Put(d))
		for _, stage := range staged {
			spans = append(spans, span{stage, len(writes), len(writes) + len(stage.Writes)})
			writes = append(writes, stage.Writes...)
		}
		out.entities = append(out.entities, p.e)
	}
	revs, err := s.store.Write(ctx, writes)
	if err != nil {
		var we *store.WriteError
		if errors.As(err, &we) && errors.Is(err, store.ErrConflict) {
			field := "id"
			for _, p := range plan {
				if p.e.Location == we.ID {
					field = p.field + ".id"
				}
			}
			return nil, Conflict(field, "%s already exists", we.ID)
		}
		return nil, err
	}
	// The entities come first in each entity's group of writes.
	i := 0
	for _, e := range out.entities {
		for ; writes[i].Doc.ID != e.Location; i++ {
		}
		e.Rev = revs[i]
	}
	for _, sp := range spans {
		if sp.stage.Committed != nil {
			out.committed = append(out.committed, committedStage{sp.stage.Committed, revs[sp.start:sp.end]})
		}
	}
	return out, nil
}

// afterCommit runs what providers asked to run once the entities are
// stored, and returns the Preference-Applied value, if any honoured one.
func (c *created) afterCommit(ctx context.Context) string {
	applied := ""
	for _, c := range c.committed {
		if a := c.fn(ctx, c.revs); a != "" {
			applied = a
		}
	}
	return applied
}

// loadEntity reads a stored entity and the schema that applies to it.
func (s *Server) loadEntity(ctx context.Context, location string) (*Entity, *entitySchema, error) {
	e, err := GetEntity(ctx, s.store, location)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, NotFound("", "no entity at %s", location)
	}
	if err != nil {
		return nil, nil, err
	}
	es, err := s.resolveSchema(ctx, e.Kind, e.Mixins, "entity")
	if err != nil {
		return nil, nil, fmt.Errorf("entity %s refers to categories that are gone: %w", location, err)
	}
	return e, es, nil
}

// replace validates updated against old's schema rules, calls the
// providers and writes it at old's revision.
func (s *Server) replace(ctx context.Context, old, updated *Entity, es *entitySchema) error {
	return s.replaceAll(ctx, []replacement{{old, updated, es}})
}

// fullUpdate replaces an entity with the one in the body (PUT).
func (s *Server) fullUpdate(ctx context.Context, old *Entity, ti typedInput) (*Entity, error) {
	if ti.typ != old.Type {
		return nil, BadRequest(ti.field, "%s is a %s; send it in %q", old.Location, old.Type, old.Type+"s")
	}
	if ti.in.Kind != nil && strings.TrimSpace(*ti.in.Kind) != old.Kind {
		return nil, BadRequest(ti.field+".kind", "the kind of %s is %s and cannot change to %q", old.Location, old.Kind, *ti.in.Kind)
	}
	kind, _, err := s.getCategory(ctx, old.Kind)
	if err != nil {
		return nil, err
	}
	updated, es, err := s.build(ctx, ti, kind, old.Location)
	if err != nil {
		return nil, err
	}
	if err := s.replace(ctx, old, updated, es); err != nil {
		return nil, err
	}
	return updated, nil
}

// partialUpdate merges the body into an entity (POST without action):
// attributes deep-merge, mixins are added, title and summary replace.
func (s *Server) partialUpdate(ctx context.Context, old *Entity, ti typedInput) (*Entity, error) {
	in := ti.in
	if ti.typ != old.Type {
		return nil, BadRequest(ti.field, "%s is a %s; send it in %q", old.Location, old.Type, old.Type+"s")
	}
	if in.Kind != nil && strings.TrimSpace(*in.Kind) != old.Kind {
		return nil, BadRequest(ti.field+".kind", "the kind of %s is %s and cannot change to %q", old.Location, old.Kind, *in.Kind)
	}
	if in.ID != nil && strings.TrimSpace(*in.ID) != old.ID {
		return nil, BadRequest(ti.field+".id", "the id of %s cannot change", old.Location)
	}
	updated := *old
	updated.Attributes, _ = deepCopy(old.Attributes).(map[string]any)
	updated.Mixins = append([]string{}, old.Mixins...)
	if in.Mixins != nil {
		if err := checkMixinList(ti.field, *in.Mixins); err != nil {
			return nil, err
		}
		updated.Mixins = dedupe(append(updated.Mixins, *in.Mixins...))
	}
	if in.Title != nil {
		updated.Title = *in.Title
	}
	if in.Summary != nil {
		updated.Summary = *in.Summary
	}
	es, err := s.resolveSchema(ctx, updated.Kind, updated.Mixins, ti.field)
	if err != nil {
		return nil, err
	}
	if updated.Type == TypeLink && (in.Source != nil || in.Target != nil) {
		ends := entityInput{Source: in.Source, Target: in.Target}
		if ends.Source == nil {
			ends.Source = &old.Source
		}
		if ends.Target == nil {
			ends.Target = &old.Target
		}
		if err := s.resolveEnds(ctx, &updated, ends, ti.field, false); err != nil {
			return nil, err
		}
	}
	deepMerge(updated.Attributes, s.normalizeAttrs(in.Attributes), "", es.attrs.isLeaf)
	if err := s.complete(es, &updated); err != nil {
		return nil, err
	}
	if err := s.replace(ctx, old, &updated, es); err != nil {
		return nil, err
	}
	return &updated, nil
}

// locationsOf lists the entities' locations.
func locationsOf(ents []*Entity) []string {
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Location
	}
	return out
}

// linksOf lists links whose source (and, with both, target) is location.
func (s *Server) linksOf(ctx context.Context, location string, both bool) ([]*Entity, error) {
	out, err := FindEntities(ctx, s.store, "", store.Cond{Field: []string{"source"}, Op: store.Eq, Value: location})
	if err != nil || !both {
		return out, err
	}
	in, err := FindEntities(ctx, s.store, "", store.Cond{Field: []string{"target"}, Op: store.Eq, Value: location})
	if err != nil {
		return nil, err
	}
	for _, l := range in {
		if l.Source != location {
			out = append(out, l)
		}
	}
	return out, nil
}

// render gives an entity's representation: its attributes as stored, the
// actions its categories offer and, for a resource, its links.
func (s *Server) render(ctx context.Context, r *http.Request, e *Entity, es *entitySchema) (entityJSON, error) {
	out := entityJSON{Kind: e.Kind, Mixins: e.Mixins, Attributes: e.Attributes, ID: e.ID, Title: e.Title,
		Summary: e.Summary, Actions: []actionJSON{}}
	for _, a := range es.actions() {
		term := a[strings.LastIndexByte(a, '#')+1:]
		aj := actionJSON{Href: e.Location + "?action=" + term, Category: a}
		if c, _, err := s.getCategory(ctx, a); err == nil {
			aj.Title = c.Title
		}
		out.Actions = append(out.Actions, aj)
	}
	if e.Type == TypeLink {
		out.Source, out.Target = s.absURL(r, e.Source), s.absURL(r, e.Target)
		return out, nil
	}
	links, err := s.linksOf(ctx, e.Location, false)
	if err != nil {
		return out, err
	}
	out.Links = []string{}
	for _, l := range links {
		out.Links = append(out.Links, s.absURL(r, l.Location))
	}
	return out, nil
}

// entityDoc wraps rendered entities in the list their type names.
func entityDocument(typ string, list []entityJSON) map[string][]entityJSON {
	return map[string][]entityJSON{typ + "s": list}
}

func (s *Server) locations(r *http.Request, paths []string) locationsJSON {
	sort.Strings(paths)
	out := locationsJSON{Locations: make([]string, 0, len(paths))}
	for _, p := range paths {
		out.Locations = append(out.Locations, s.absURL(r, p))
	}
	return out
}
