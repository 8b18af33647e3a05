package occi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/houssem/cmbs/store"
)

// Aliases maps other spellings to canonical names: actions by full id and
// attributes by the keys they nest under. Registrations, entity attributes
// and triggered actions are rewritten to the canonical name, so two
// spellings of the same thing leave one copy.
type Aliases struct {
	Actions    map[string]string
	Attributes []AttrAlias
}

// AttrAlias renames the attribute at From to To. Paths are key lists, since
// an alias such as "l3.1_socket" holds a dot within one key.
type AttrAlias struct {
	From, To []string
}

func (a Aliases) action(id string) string {
	if c, ok := a.Actions[id]; ok {
		return c
	}
	return id
}

// canonicalAttrs renames aliased attributes in a nested attribute object.
func (a Aliases) canonicalAttrs(attrs map[string]any) {
	for _, al := range a.Attributes {
		v, ok := lookupPath(attrs, al.From)
		if !ok {
			continue
		}
		deletePath(attrs, al.From)
		if _, taken := lookupPath(attrs, al.To); !taken {
			setPath(attrs, al.To, v)
		}
	}
}

var termPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)

func (s *Server) getCategory(ctx context.Context, id string) (*Category, string, error) {
	byID, _, cached, err := s.categories.snapshot(ctx, s.store)
	if err != nil {
		return nil, "", err
	}
	if cached {
		cc, ok := byID[id]
		if !ok {
			return nil, "", fmt.Errorf("category %s: %w", id, store.ErrNotFound)
		}
		c, rev := copyCategory(cc)
		return c, rev, nil
	}
	d, err := s.store.Get(ctx, categoryDocID(id))
	if err != nil {
		return nil, "", fmt.Errorf("category %s: %w", id, err)
	}
	c, err := decodeCategory(d)
	return c, d.Rev, err
}

// Category returns the registered category with OCCI id (scheme+term).
func (s *Server) Category(ctx context.Context, id string) (*Category, error) {
	c, _, err := s.getCategory(ctx, id)
	return c, err
}

func (s *Server) listCategories(ctx context.Context) ([]*Category, error) {
	byID, _, cached, err := s.categories.snapshot(ctx, s.store)
	if err != nil {
		return nil, err
	}
	if cached {
		out := make([]*Category, 0, len(byID))
		for _, cc := range byID {
			c, _ := copyCategory(cc)
			out = append(out, c)
		}
		sortCategories(out)
		return out, nil
	}
	docs, err := s.store.List(ctx, categoryPrefix)
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	out := make([]*Category, 0, len(docs))
	for _, d := range docs {
		c, err := decodeCategory(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// categoryAt returns the kind or mixin whose location is path, or nil.
func (s *Server) categoryAt(ctx context.Context, path string) (*Category, error) {
	byID, byLoc, cached, err := s.categories.snapshot(ctx, s.store)
	if err != nil {
		return nil, err
	}
	if cached {
		id, ok := byLoc[path]
		if !ok {
			return nil, nil
		}
		c, _ := copyCategory(byID[id])
		return c, nil
	}
	docs, err := store.Find(ctx, s.store, store.Query{Prefix: categoryPrefix, Where: []store.Cond{
		{Field: []string{"doc"}, Op: store.Eq, Value: "category"},
		{Field: []string{"location"}, Op: store.Eq, Value: path},
	}})
	if err != nil {
		return nil, fmt.Errorf("find category at %s: %w", path, err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	return decodeCategory(docs[0])
}

// normalizeLocation turns a category's location (a path or an absolute URL)
// into a path with leading and trailing slashes.
func normalizeLocation(loc string) string {
	loc = pathOf(strings.TrimSpace(loc))
	if !strings.HasPrefix(loc, "/") {
		loc = "/" + loc
	}
	if !strings.HasSuffix(loc, "/") {
		loc += "/"
	}
	return loc
}

// prepareCategory checks one category of a registration and normalises it.
// known resolves ids registered earlier or in the same request.
func (s *Server) prepareCategory(c *Category, field string, known func(string) bool) ([]string, error) {
	if err := checkCategoryID(c, field); err != nil {
		return nil, err
	}
	warnings, err := s.checkPatterns(c, field)
	if err != nil {
		return nil, err
	}
	s.canonicalCategory(c)
	if err := placeCategory(c, field); err != nil {
		return nil, err
	}
	refWarnings, err := s.checkReferences(c, field, known)
	if err != nil {
		return nil, err
	}
	return append(warnings, refWarnings...), nil
}

// checkCategoryID checks the term and scheme that make a category's id.
func checkCategoryID(c *Category, field string) error {
	if c.Term == "" || c.Scheme == "" {
		return BadRequest(field, "%s needs both term and scheme", field)
	}
	if !termPattern.MatchString(c.Term) {
		return BadRequest(field+".term", "term %q may hold only letters, digits, '_', '.' and '-'", c.Term)
	}
	if !strings.Contains(c.Scheme, ":") || strings.ContainsAny(c.Scheme, " \t\n") {
		return BadRequest(field+".scheme", "scheme %q is not a URI", c.Scheme)
	}
	return nil
}

// checkPatterns compiles the patterns of c's attribute definitions. One
// that does not compile is refused when validation is strict and left
// unenforced, with a warning, when it is lenient.
func (s *Server) checkPatterns(c *Category, field string) ([]string, error) {
	var warnings []string
	for _, d := range Definitions(c.Attributes) {
		if d.Pattern == "" {
			continue
		}
		if _, err := compilePattern(d.Pattern); err != nil {
			if s.valid.strict {
				return nil, BadRequest(field+".attributes."+d.Name, "%v", err)
			}
			warnings = append(warnings, fmt.Sprintf("%s: %v; the pattern is not enforced", d.Name, err))
		}
	}
	return warnings, nil
}

// canonicalCategory spells the action names and attribute names of c the
// way the server stores them, whichever alias the request used.
func (s *Server) canonicalCategory(c *Category) {
	if c.Class == ClassAction {
		c.Term = strings.TrimPrefix(s.aliases.action(c.ID()), c.Scheme)
	}
	for i, a := range c.Actions {
		c.Actions[i] = s.aliases.action(a)
	}
	if c.Attributes != nil {
		s.aliases.canonicalAttrs(c.Attributes)
	}
	c.Actions = dedupe(c.Actions)
}

// placeCategory gives a kind or mixin its location (by default /term/) and
// refuses one for an action, the root or a reserved location.
func placeCategory(c *Category, field string) error {
	if c.Class == ClassAction {
		if c.Location != "" || len(c.Actions) > 0 {
			return BadRequest(field, "action %s cannot have a location or actions", c.ID())
		}
		return nil
	}
	if c.Location == "" {
		c.Location = "/" + c.Term + "/"
	}
	c.Location = normalizeLocation(c.Location)
	if c.Location == "/" {
		return BadRequest(field+".location", "location / is the root of the path interface, not a %s location", c.Class)
	}
	if err := checkLocation(c.Location); err != nil {
		return BadRequest(field+".location", "%v", err)
	}
	return nil
}

// checkReferences checks that the actions and related categories c names
// are known: an unknown one is refused when validation is strict and a
// warning when it is lenient.
func (s *Server) checkReferences(c *Category, field string, known func(string) bool) ([]string, error) {
	var warnings []string
	for _, a := range c.Actions {
		if known(a) {
			continue
		}
		if s.valid.strict {
			return nil, BadRequest(field+".actions", "unknown action %s; register it first", a)
		}
		warnings = append(warnings, fmt.Sprintf("%s refers to action %s, which is not registered", c.ID(), a))
	}
	for _, r := range c.Related {
		if known(r) {
			continue
		}
		if s.valid.strict {
			return nil, BadRequest(field+".related", "unknown related category %s", r)
		}
		warnings = append(warnings, fmt.Sprintf("%s is related to %s, which is not registered", c.ID(), r))
	}
	return warnings, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// mergeCategory folds a re-registration into the stored category: new
// attribute definitions and actions are added, nothing is removed, so
// posting the same file twice (or two spellings of it) leaves one copy.
//
// With keepDefs the stored definitions of attributes win over the posted
// ones, which only add attributes: a client posting the original's
// category files again (whose patterns their own values break) must not
// undo the definitions of a built-in kind.
func mergeCategory(stored, posted *Category, field string, keepDefs bool) (*Category, error) {
	if stored.Class != posted.Class {
		return nil, Conflict(field, "%s is registered as a %s, not a %s", posted.ID(), stored.Class, posted.Class)
	}
	if stored.Location != posted.Location && posted.Location != "" {
		return nil, Conflict(field+".location", "%s is registered at %s; its location cannot change to %s", posted.ID(), stored.Location, posted.Location)
	}
	merged := *stored
	if posted.Title != "" {
		merged.Title = posted.Title
	}
	merged.Attributes, _ = deepCopy(stored.Attributes).(map[string]any)
	if merged.Attributes == nil {
		merged.Attributes = map[string]any{}
	}
	added := posted.Attributes
	if keepDefs {
		stored := newSchema(stored)
		added, _ = deepCopy(posted.Attributes).(map[string]any)
		for _, d := range Definitions(posted.Attributes) {
			if _, ok := stored[d.Name]; ok {
				deletePath(added, d.Path)
			}
		}
	}
	deepMerge(merged.Attributes, added, "", newSchema(posted).isLeaf)
	merged.Actions = dedupe(append(append([]string{}, stored.Actions...), posted.Actions...))
	merged.Related = dedupe(append(append([]string{}, stored.Related...), posted.Related...))
	if len(posted.Applies) > 0 {
		merged.Applies = dedupe(append(append([]string{}, stored.Applies...), posted.Applies...))
	}
	return &merged, nil
}

// categoryWrite is one pending write of a registration: the category
// and the revision it replaces ("" to create it).
type categoryWrite struct {
	cat *Category
	rev string
}

// EnsureCategories registers cats the way a POST on the query interface
// does: absent ones are created, present ones merged, their attribute
// definitions over the stored ones. They become built-in: a client's POST
// may add attributes to them but keeps these definitions.
func (s *Server) EnsureCategories(ctx context.Context, cats []*Category) error {
	if _, _, err := s.registerCategories(ctx, cats, true); err != nil {
		return err
	}
	for _, c := range cats {
		s.builtin.Store(c.ID(), struct{}{})
	}
	return nil
}

// registerCategories validates every category first and writes them all in
// one transaction. own is true for the server's own categories
// (EnsureCategories), whose definitions replace the stored ones; a client's
// keep those of built-in categories.
func (s *Server) registerCategories(ctx context.Context, cats []*Category, own bool) (written []*Category, warnings []string, err error) {
	fields, err := categoryFields(cats)
	if err != nil {
		return nil, nil, err
	}
	inRequest := map[string]bool{}
	for _, c := range cats {
		inRequest[c.ID()] = true
	}
	known := func(id string) bool {
		if inRequest[id] {
			return true
		}
		_, _, err := s.getCategory(ctx, id)
		return err == nil
	}
	locations := map[string]string{}
	var plan []categoryWrite
	for i, c := range cats {
		field := fields[i]
		w, err := s.prepareCategory(c, field, known)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
		stored, rev, err := s.getCategory(ctx, c.ID())
		switch {
		case errors.Is(err, store.ErrNotFound):
			plan = append(plan, categoryWrite{cat: c})
		case err != nil:
			return nil, nil, err
		default:
			_, builtin := s.builtin.Load(c.ID())
			merged, err := mergeCategory(stored, c, field, builtin && !own)
			if err != nil {
				return nil, nil, err
			}
			if reflect.DeepEqual(merged, stored) {
				written = append(written, stored)
				continue
			}
			plan = append(plan, categoryWrite{cat: merged, rev: rev})
		}
		if c.Location == "" {
			continue
		}
		if other, dup := locations[c.Location]; dup && other != c.ID() {
			return nil, nil, Conflict(field+".location", "%s and %s cannot share location %s", other, c.ID(), c.Location)
		}
		locations[c.Location] = c.ID()
		holder, err := s.categoryAt(ctx, c.Location)
		if err != nil {
			return nil, nil, err
		}
		if holder != nil && holder.ID() != c.ID() {
			return nil, nil, Conflict(field+".location", "location %s already belongs to %s", c.Location, holder.ID())
		}
	}
	writes := make([]store.Write, len(plan))
	for i, w := range plan {
		doc, err := encodeCategory(w.cat, w.rev)
		if err != nil {
			return nil, nil, err
		}
		writes[i] = store.Put(doc)
		written = append(written, w.cat)
	}
	if err := s.writeCategoryDocs(ctx, writes); err != nil {
		return nil, nil, err
	}
	for _, w := range warnings {
		s.log.WithField("warning", w).Warn("category registered with a lenient check")
	}
	return written, warnings, nil
}

// updateCategories replaces the given members of existing categories (PUT).
// Term, scheme and location cannot change.
func (s *Server) updateCategories(ctx context.Context, cats []*Category) ([]*Category, error) {
	fields, err := categoryFields(cats)
	if err != nil {
		return nil, err
	}
	type update struct {
		cat, stored *Category
		rev         string
	}
	var plan []update
	for i, c := range cats {
		field := fields[i]
		stored, rev, err := s.getCategory(ctx, c.ID())
		if errors.Is(err, store.ErrNotFound) {
			return nil, NotFound(field, "%s %s is not registered; POST it to the query interface first", c.Class, c.ID())
		}
		if err != nil {
			return nil, err
		}
		if stored.Class != c.Class {
			return nil, Conflict(field, "%s is registered as a %s, not a %s", c.ID(), stored.Class, c.Class)
		}
		loc := c.Location
		if loc == "" {
			loc = stored.Location
		}
		c.Location = loc
		if _, err := s.prepareCategory(c, field, func(id string) bool {
			_, _, err := s.getCategory(ctx, id)
			return err == nil || id == c.ID()
		}); err != nil {
			return nil, err
		}
		if c.Location != stored.Location {
			return nil, BadRequest(field+".location", "the location of %s cannot change (%s)", c.ID(), stored.Location)
		}
		updated := *stored
		if c.Title != "" {
			updated.Title = c.Title
		}
		if c.Attributes != nil {
			updated.Attributes = c.Attributes
		}
		if c.Actions != nil {
			updated.Actions = c.Actions
		}
		if c.Related != nil {
			updated.Related = c.Related
		}
		if c.Applies != nil {
			updated.Applies = c.Applies
		}
		plan = append(plan, update{&updated, stored, rev})
	}
	out := make([]*Category, 0, len(plan))
	writes := make([]store.Write, len(plan))
	for i, u := range plan {
		doc, err := encodeCategory(u.cat, u.rev)
		if err != nil {
			return nil, err
		}
		writes[i] = store.Put(doc)
		out = append(out, u.cat)
	}
	if err := s.writeCategoryDocs(ctx, writes); err != nil {
		return nil, err
	}
	return out, nil
}

// AttachProviders sets the providers of a kind or mixin (PUT with
// "providers"). Unregistered local names are kept and skipped when called,
// so a provider can be registered after it is attached; strict mode refuses
// them instead.
func (s *Server) AttachProviders(ctx context.Context, id string, p Providers) (*Category, error) {
	if p.Local == nil {
		p.Local = []string{}
	}
	if p.Remote == nil {
		p.Remote = []string{}
	}
	if err := s.checkProviders(id, p); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c, rev, err := s.getCategory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, NotFound("OCCI_ID", "no kind or mixin %s is registered", id)
		}
		if err != nil {
			return nil, err
		}
		if c.Class == ClassAction {
			return nil, BadRequest("OCCI_ID", "%s is an action; providers attach to kinds and mixins", id)
		}
		if c.Providers != nil && reflect.DeepEqual(*c.Providers, p) {
			return c, nil
		}
		c.Providers = &p
		doc, err := encodeCategory(c, rev)
		if err != nil {
			return nil, err
		}
		_, err = s.putCategory(ctx, doc)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store providers of %s: %w", id, err)
		}
		return c, nil
	}
}

// checkProviders refuses, in strict mode, local provider names nobody
// registered, and logs them otherwise.
func (s *Server) checkProviders(id string, p Providers) error {
	for _, name := range p.Local {
		if _, ok := s.providers.Lookup(name); !ok {
			if s.valid.strict {
				return BadRequest("providers", "no local provider is called %q; known: %s", name, strings.Join(s.providers.Names(), ", "))
			}
			s.log.WithFields(map[string]any{"provider": name, "category": id}).Warn("attached provider is not registered; calls to it are skipped")
		}
	}
	return nil
}

// deleteCategories removes categories. Kinds and mixins in use, and the
// OCCI Core kinds, are refused; nothing is removed unless all can be.
func (s *Server) deleteCategories(ctx context.Context, cats []*Category) ([]*Category, error) {
	fields, err := categoryFields(cats)
	if err != nil {
		return nil, err
	}
	type del struct {
		cat *Category
		rev string
	}
	var plan []del
	for i, c := range cats {
		field := fields[i]
		stored, rev, err := s.getCategory(ctx, c.ID())
		if errors.Is(err, store.ErrNotFound) {
			return nil, NotFound(field, "%s %s is not registered", c.Class, c.ID())
		}
		if err != nil {
			return nil, err
		}
		if stored.Scheme == CoreScheme {
			return nil, BadRequest(field, "%s is part of OCCI Core and cannot be removed", c.ID())
		}
		var where store.Cond
		switch stored.Class {
		case ClassKind:
			where = store.Cond{Field: []string{"kind"}, Op: store.Eq, Value: stored.ID()}
		case ClassMixin:
			where = store.Cond{Field: []string{"mixins"}, Op: store.Contains, Value: stored.ID()}
		}
		if stored.Class != ClassAction {
			users, err := store.Find(ctx, s.store, store.Query{Prefix: entityPrefix, Where: []store.Cond{where}})
			if err != nil {
				return nil, err
			}
			if len(users) > 0 {
				return nil, Conflict(field, "%s %s is used by %d entities (first %s); delete them first", stored.Class, stored.ID(), len(users), users[0].ID)
			}
		}
		plan = append(plan, del{stored, rev})
	}
	out := make([]*Category, 0, len(plan))
	writes := make([]store.Write, len(plan))
	for i, d := range plan {
		writes[i] = store.Remove(categoryDocID(d.cat.ID()), d.rev)
		out = append(out, d.cat)
	}
	if err := s.writeCategoryDocs(ctx, writes); err != nil {
		return nil, err
	}
	return out, nil
}

// categoryFields names each category of a request as the request does,
// kinds[0], mixins[1]…, and refuses a category listed twice: its two
// entries could only be merged in some order the client did not choose.
func categoryFields(cats []*Category) ([]string, error) {
	fields := make([]string, len(cats))
	counts := map[string]int{}
	first := map[string]string{}
	for i, c := range cats {
		fields[i] = fmt.Sprintf("%ss[%d]", c.Class, counts[c.Class])
		counts[c.Class]++
		if f, dup := first[c.ID()]; dup {
			return nil, BadRequest(fields[i], "%s appears twice in the request (first as %s); list each category once", c.ID(), f)
		}
		first[c.ID()] = fields[i]
	}
	return fields, nil
}

func sortCategories(cats []*Category) {
	sort.Slice(cats, func(i, j int) bool { return cats[i].ID() < cats[j].ID() })
}
