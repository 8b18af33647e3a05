package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// categoriesList prints what the server has registered.
func (a *app) categoriesList(ctx context.Context, args []string) error {
	c := a.newCommand("categories list", "categories list [flags]",
		"Lists the kinds, mixins and actions the server has registered.")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
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

// categoriesApply sends a query interface document: POST registers its
// categories; a document attaching providers goes with PUT.
func (a *app) categoriesApply(ctx context.Context, args []string) error {
	c := a.newCommand("categories apply", "categories apply FILE [flags]",
		"Registers the kinds, mixins and actions of FILE (a query interface document,\n"+
			"as in examples/post_*.json), or attaches the providers it lists with PUT\n"+
			"(examples/put_provider_*.json). FILE - reads standard input.")
	if help, err := c.parse(args, 1, 1); help || err != nil {
		return err
	}
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	doc, err := a.readFile(c.fs.Arg(0))
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

func (a *app) readFile(name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	return data, nil
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
