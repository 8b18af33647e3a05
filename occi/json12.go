package occi

import (
	"encoding/json"
	"net/http"
)

// The OCCI 1.2 JSON rendering (GFD.226): flat dotted attribute names,
// parent/depends/applies on categories, a single entity as one object,
// links with typed source and target, and {"locations":[…]}.

type model12 struct {
	Kinds   []category12 `json:"kinds"`
	Mixins  []category12 `json:"mixins"`
	Actions []category12 `json:"actions"`
}

type category12 struct {
	Term       string               `json:"term"`
	Scheme     string               `json:"scheme"`
	Title      string               `json:"title,omitempty"`
	Attributes map[string]attrDef12 `json:"attributes,omitempty"`
	Actions    []string             `json:"actions,omitempty"`
	Parent     string               `json:"parent,omitempty"`
	Depends    []string             `json:"depends,omitempty"`
	Applies    []string             `json:"applies,omitempty"`
	Location   string               `json:"location,omitempty"`
}

type attrDef12 struct {
	Mutable     bool   `json:"mutable"`
	Required    bool   `json:"required"`
	Type        string `json:"type,omitempty"`
	Default     any    `json:"default,omitempty"`
	Pattern     string `json:"pattern,omitempty"`
	Description string `json:"description,omitempty"`
}

type resource12 struct {
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins,omitempty"`
	Attributes map[string]any `json:"attributes"`
	Actions    []string       `json:"actions,omitempty"`
	ID         string         `json:"id"`
	Title      string         `json:"title,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Links      []link12       `json:"links,omitempty"`
}

type link12 struct {
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins,omitempty"`
	Attributes map[string]any `json:"attributes"`
	Actions    []string       `json:"actions,omitempty"`
	ID         string         `json:"id"`
	Title      string         `json:"title,omitempty"`
	Source     kindedURI      `json:"source"`
	Target     kindedURI      `json:"target"`
}

type kindedURI struct {
	Location string `json:"location"`
	Kind     string `json:"kind,omitempty"`
}

type locations12 struct {
	Locations []string `json:"locations"`
}

// writeJSON12 answers in the OCCI 1.2 JSON rendering.
func writeJSON12(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", mediaJSON12)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func renderCategory12(c *Category) category12 {
	out := category12{Term: c.Term, Scheme: c.Scheme, Title: c.Title, Actions: c.Actions, Location: c.Location}
	switch c.Class {
	case ClassKind:
		if len(c.Related) > 0 {
			out.Parent = c.Related[0]
		}
	case ClassMixin:
		out.Depends = c.Related
		out.Applies = c.Applies
	}
	if defs := Definitions(c.Attributes); len(defs) > 0 {
		out.Attributes = map[string]attrDef12{}
		for _, d := range defs {
			ad := attrDef12{Mutable: d.Mutable, Required: d.Required, Type: normType(d.Type), Pattern: d.Pattern, Description: d.Description}
			if ad.Type == "" {
				ad.Type = d.Type
			}
			if d.HasDefault {
				ad.Default = d.Default
			}
			out.Attributes[d.Name] = ad
		}
	}
	return out
}

func renderModel12(cats []*Category) model12 {
	sortCategories(cats)
	out := model12{Kinds: []category12{}, Mixins: []category12{}, Actions: []category12{}}
	for _, c := range cats {
		switch c.Class {
		case ClassKind:
			out.Kinds = append(out.Kinds, renderCategory12(c))
		case ClassMixin:
			out.Mixins = append(out.Mixins, renderCategory12(c))
		case ClassAction:
			out.Actions = append(out.Actions, renderCategory12(c))
		}
	}
	return out
}

func (v *entityView) resource12() resource12 {
	e := v.e
	out := resource12{Kind: e.Kind, Mixins: e.Mixins, Attributes: v.flat(), Actions: v.actions,
		ID: e.ID, Title: e.Title, Summary: e.Summary}
	for _, l := range v.links {
		out.Links = append(out.Links, l.link12())
	}
	return out
}

func (v *entityView) link12() link12 {
	e := v.e
	return link12{Kind: e.Kind, Mixins: e.Mixins, Attributes: v.flat(), Actions: v.actions, ID: e.ID, Title: e.Title,
		Source: kindedURI{Location: e.Source, Kind: v.sourceKind}, Target: kindedURI{Location: e.Target, Kind: v.targetKind}}
}

// json12 is the entity as a single OCCI 1.2 JSON object.
func (v *entityView) json12() any {
	if v.e.Type == TypeLink {
		return v.link12()
	}
	return v.resource12()
}

// collectionOf12 renders entities as {"resources":[…],"links":[…]},
// leaving out an empty list unless both are, which gives {"resources":[]}.
func collectionOf12(views []*entityView) map[string]any {
	var res []resource12
	var links []link12
	for _, v := range views {
		if v.e.Type == TypeLink {
			links = append(links, v.link12())
		} else {
			res = append(res, v.resource12())
		}
	}
	out := map[string]any{}
	if len(res) > 0 || len(links) == 0 {
		if res == nil {
			res = []resource12{}
		}
		out["resources"] = res
	}
	if len(links) > 0 {
		out["links"] = links
	}
	return out
}
