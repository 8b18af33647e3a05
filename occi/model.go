package occi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/houssem/cmbs/store"
)

// Category classes.
const (
	ClassKind   = "kind"
	ClassMixin  = "mixin"
	ClassAction = "action"
)

// Entity types: resources and the links between them.
const (
	TypeResource = "resource"
	TypeLink     = "link"
)

// Core category identifiers (OCCI Core).
const (
	CoreScheme   = "http://schemas.ogf.org/occi/core#"
	EntityKindID = CoreScheme + "entity"
	ResourceKind = CoreScheme + "resource"
	LinkKind     = CoreScheme + "link"
)

// Document id prefixes. Entities are stored under their location path, which
// always starts with "/", so the two never collide and the path interface can
// list entities with a plain prefix scan.
const (
	categoryPrefix = "category:"
	entityPrefix   = "/"
)

// Providers names the backends attached to a kind: local ones are looked up
// in the server's Registry; remote ones are recorded for clients to see.
type Providers struct {
	Local  []string `json:"local"`
	Remote []string `json:"remote"`
}

// Category is a kind, mixin or action. Attributes holds attribute
// definitions nested by the dots of their names, as pyOCNI renders them:
// {"occi":{"compute":{"cores":{"type":"number"}}}}.
type Category struct {
	Class      string         `json:"class"`
	Term       string         `json:"term"`
	Scheme     string         `json:"scheme"`
	Title      string         `json:"title,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	Actions    []string       `json:"actions,omitempty"`
	// Related is a kind's parent, or the mixins a mixin depends on.
	Related []string `json:"related,omitempty"`
	// Applies lists the kinds a mixin applies to (OCCI 1.2).
	Applies   []string   `json:"applies,omitempty"`
	Location  string     `json:"location,omitempty"`
	Providers *Providers `json:"providers,omitempty"`
}

// ID is the category's OCCI identifier, scheme followed by term.
func (c *Category) ID() string { return c.Scheme + c.Term }

// Entity is a resource or a link. Its location is the kind's location
// followed by its id, and is also its document id in the store.
type Entity struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Location   string         `json:"location"`
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Attributes map[string]any `json:"attributes"`
	// Source and Target are the locations (paths) a link joins.
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	// Rev is the store revision the entity was read at.
	Rev string `json:"-"`
}

// HasMixin reports whether the entity carries mixin id.
func (e *Entity) HasMixin(id string) bool { return slices.Contains(e.Mixins, id) }

// Attr returns the attribute at a dotted name such as "cmbs.member.local".
func (e *Entity) Attr(name string) (any, bool) {
	return lookupPath(e.Attributes, strings.Split(name, "."))
}

// SetAttr sets the attribute at a dotted name, creating the nesting objects.
func (e *Entity) SetAttr(name string, v any) {
	if e.Attributes == nil {
		e.Attributes = map[string]any{}
	}
	setPath(e.Attributes, strings.Split(name, "."), v)
}

// categoryDoc and entityDoc are the stored shapes. The "doc" discriminator
// keeps both kinds of document apart in queries over the whole database.
type categoryDoc struct {
	Doc string `json:"doc"`
	Category
}

type entityDoc struct {
	Doc string `json:"doc"`
	Entity
}

func categoryDocID(id string) string { return categoryPrefix + id }

// EncodeEntity turns an entity into a store document.
func EncodeEntity(e *Entity) (store.Doc, error) {
	if e.Attributes == nil {
		e.Attributes = map[string]any{}
	}
	if e.Mixins == nil {
		e.Mixins = []string{}
	}
	body, err := json.Marshal(entityDoc{Doc: "entity", Entity: *e})
	if err != nil {
		return store.Doc{}, fmt.Errorf("encode entity %s: %w", e.Location, err)
	}
	return store.Doc{ID: e.Location, Rev: e.Rev, Body: body}, nil
}

// DecodeEntity reads an entity from a store document.
func DecodeEntity(d store.Doc) (*Entity, error) {
	var ed entityDoc
	if err := json.Unmarshal(d.Body, &ed); err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", d.ID, err)
	}
	if ed.Doc != "entity" {
		return nil, fmt.Errorf("decode entity %s: document is a %q", d.ID, ed.Doc)
	}
	e := ed.Entity
	e.Rev = d.Rev
	if e.Attributes == nil {
		e.Attributes = map[string]any{}
	}
	if e.Mixins == nil {
		e.Mixins = []string{}
	}
	return &e, nil
}

func encodeCategory(c *Category, rev string) (store.Doc, error) {
	body, err := json.Marshal(categoryDoc{Doc: "category", Category: *c})
	if err != nil {
		return store.Doc{}, fmt.Errorf("encode category %s: %w", c.ID(), err)
	}
	return store.Doc{ID: categoryDocID(c.ID()), Rev: rev, Body: body}, nil
}

func decodeCategory(d store.Doc) (*Category, error) {
	var cd categoryDoc
	if err := json.Unmarshal(d.Body, &cd); err != nil {
		return nil, fmt.Errorf("decode category %s: %w", d.ID, err)
	}
	c := cd.Category
	return &c, nil
}
