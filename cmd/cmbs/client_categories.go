package main

import (
	"github.com/houssem/cmbs/broker/api"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

func categoriesVerbs() []verb {
	return []verb{
		{name: "list", aliases: []string{"ls"}, summary: "list the kinds, mixins and actions",
			usage: "[flags]", maxArgs: 0,
			about:   "Lists the kinds, mixins and actions the server has registered, with the\nlocation of each kind and mixin and the providers attached to it.",
			example: "  cmbs categories list",
			setup:   (*app).categoriesList},
		{name: "apply", summary: "register categories, or attach providers",
			usage: "FILE [flags]", minArgs: 1, maxArgs: 1,
			about: "Registers the kinds, mixins and actions of FILE (a query interface document,\n" +
				"as in examples/post_*.json), or attaches the providers it lists with PUT\n" +
				"(examples/put_provider_*.json). FILE - reads standard input.",
			example: "  cmbs categories apply examples/post_mixins.json\n  cmbs categories apply examples/put_provider_cmbs_member.json",
			setup:   (*app).categoriesApply},
		{name: "delete", aliases: []string{"rm"}, summary: "remove categories",
			usage: "FILE|ID... [flags]", minArgs: 1, maxArgs: -1,
			about: "Removes categories: those of FILE (a query interface document, as in\n" +
				"examples/delete_*.json; - reads standard input), or those named by their id\n" +
				"(scheme followed by term). A kind or mixin still in use is refused.",
			example: "  cmbs categories delete 'http://example.com/template/resource#medium'\n  cmbs categories delete examples/delete_mixins.json",
			setup:   (*app).categoriesDelete},
	}
}

// categoriesList prints what the server has registered.
func (a *app) categoriesList(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		cats, res, err := client.Categories(ctx)
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		return writeCategories(a.stdout, cats)
	}
}

// categoriesApply sends a query interface document: POST registers its
// categories; a document attaching providers goes with PUT.
func (a *app) categoriesApply(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		doc, err := a.readInput(c.fs.Arg(0))
		if err != nil {
			return err
		}
		cats, res, err := client.ApplyCategories(ctx, doc)
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		if len(cats.Kinds)+len(cats.Mixins)+len(cats.Actions) > 0 {
			if err := writeCategories(a.stdout, cats); err != nil {
				return err
			}
		}
		if len(cats.Providers) > 0 {
			t := cli.NewTable(a.stdout, "CATEGORY", "LOCAL PROVIDERS", "REMOTE PROVIDERS")
			for _, p := range cats.Providers {
				t.Row(p.OCCIID, strings.Join(p.Provider.Local, ","), strings.Join(p.Provider.Remote, ","))
			}
			return t.Flush()
		}
		return nil
	}
}

// categoriesDelete removes the categories a file lists, or those named
// by id (looked up to know their class).
func (a *app) categoriesDelete(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		doc, err := a.deletionDocument(ctx, client, c.fs.Args())
		if err != nil {
			return err
		}
		res, err := client.DoRaw(ctx, http.MethodDelete, api.QueryInterface, bytes.NewReader(doc))
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		var cats cli.Categories
		if err := json.Unmarshal(doc, &cats); err != nil {
			return fmt.Errorf("the file is not a query interface document: %w", err)
		}
		for _, group := range []struct {
			class string
			list  []cli.Category
		}{{"kind", cats.Kinds}, {"mixin", cats.Mixins}, {"action", cats.Actions}} {
			for _, cat := range group.list {
				fmt.Fprintf(a.stdout, "deleted %s %s\n", group.class, cat.ID())
			}
		}
		return nil
	}
}

// deletionDocument is the query interface document deleting what args
// name: one file, or category ids.
func (a *app) deletionDocument(ctx context.Context, client *cli.Client, args []string) ([]byte, error) {
	if len(args) == 1 && !strings.Contains(args[0], "#") {
		return a.readInput(args[0])
	}
	registered, _, err := client.Categories(ctx)
	if err != nil {
		return nil, err
	}
	doc := cli.Categories{Kinds: []cli.Category{}, Mixins: []cli.Category{}, Actions: []cli.Category{}}
	for _, id := range args {
		found := false
		for _, group := range []struct {
			list []cli.Category
			into *[]cli.Category
		}{{registered.Kinds, &doc.Kinds}, {registered.Mixins, &doc.Mixins}, {registered.Actions, &doc.Actions}} {
			for _, cat := range group.list {
				if cat.ID() == id {
					*group.into = append(*group.into, cli.Category{Term: cat.Term, Scheme: cat.Scheme})
					found = true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("no category %s is registered on %s (an id is the scheme followed by the term)", id, client.Server())
		}
	}
	return json.Marshal(doc)
}

func writeCategories(w io.Writer, cats *cli.Categories) error {
	t := cli.NewTable(w, "CLASS", "CATEGORY", "LOCATION", "PROVIDERS")
	for _, group := range []struct {
		class string
		list  []cli.Category
	}{{"kind", cats.Kinds}, {"mixin", cats.Mixins}, {"action", cats.Actions}} {
		for _, cat := range group.list {
			t.Row(group.class, cat.ID(), cat.Location, providersText(cat.Providers))
		}
	}
	return t.Flush()
}

// providersText lists local providers by name and remote ones marked so.
func providersText(p *cli.Providers) string {
	if p == nil {
		return ""
	}
	parts := append([]string{}, p.Local...)
	for _, r := range p.Remote {
		parts = append(parts, "remote:"+r)
	}
	return strings.Join(parts, ",")
}
