package main

import (
	"github.com/houssem/cmbs/broker/api"

	"context"
	"fmt"
	"strings"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

func subscriptionVerbs() []verb {
	return []verb{
		{name: "create", summary: "have the server POST matching events to a URL",
			usage: "--callback URL [flags]", maxArgs: 0,
			about: "Creates a subscription: each event matching its filters (all optional; those\n" +
				"given must all match) is POSTed as JSON to the callback, signed with\n" +
				"X-CMBS-Signature (HMAC-SHA256 of the body) when a secret is given. Failed\n" +
				"callbacks are retried 5 times with backoff, then counted as failed.\n" +
				"Events: created, updated, deleted, message_received, delivery_failed.",
			example: "  cmbs subscription create --id weather-hook --callback http://127.0.0.1:9090/hook \\\n" +
				"      --event message_received --topic 'weather.>' --secret s3cret",
			setup: (*app).subscriptionCreate},
		{name: "list", aliases: []string{"ls"}, summary: "list the subscriptions and their counters",
			usage: "[flags]", maxArgs: 0,
			about:   "Lists the subscriptions with their state and counters: delivered (accepted by\nthe callback), failed (given up on after every retry), dropped (queue full).",
			example: "  cmbs subscription list",
			setup:   (*app).subscriptionList},
		{name: "show", summary: "a subscription's filters, state and counters",
			usage: "ID [flags]", minArgs: 1, maxArgs: 1,
			about:   "Shows a subscription: its callback, filters, state, counters and last error.",
			example: "  cmbs subscription show weather-hook",
			setup:   (*app).subscriptionShow},
		{name: "delete", aliases: []string{"rm"}, summary: "delete subscriptions",
			usage: "ID... [flags]", minArgs: 1, maxArgs: -1,
			about:   "Deletes subscriptions; their callbacks get no more events.",
			example: "  cmbs subscription delete weather-hook",
			setup:   (*app).subscriptionDelete},
	}
}

func subscriptionPath(ref string) string {
	if strings.Contains(ref, "/") {
		return cli.Path(ref)
	}
	return api.SubscriptionLocation + ref
}

// subscriptionCreate creates a subscription from flags.
func (a *app) subscriptionCreate(c *command) func(context.Context) error {
	fs := c.fs
	id := fs.String("id", "", "subscription id (the server assigns one when empty)")
	callback := fs.String("callback", "", "http(s) URL the events are POSTed to (required)")
	secret := fs.String("secret", "", "key of the X-CMBS-Signature HMAC of each body")
	events := fs.StringSlice("event", nil, "only these events (repeatable)")
	kind := fs.String("kind", "", "only entities of this kind (e.g. http://houssem.org/cmbs#message)")
	location := fs.String("location", "", "only entities whose location starts with this path")
	topics := fs.StringSlice("topic", nil, "only entities about one of these topics (repeatable)")
	providers := fs.StringSlice("provider", nil, "only entities for one of these providers (repeatable)")
	expires := fs.String("expires", "", "when the subscription stops: RFC 3339 time, or a duration from now (24h)")
	return func(ctx context.Context) error {
		if *callback == "" {
			return fmt.Errorf("%w: subscription create: --callback is required", errUsage)
		}
		attrs := map[string]any{"callback": *callback}
		set := func(name string, v any, given bool) {
			if given {
				attrs[name] = v
			}
		}
		set("secret", *secret, *secret != "")
		set("events", *events, len(*events) > 0)
		set("kind", *kind, *kind != "")
		set("location", *location, *location != "")
		set("topics", *topics, len(*topics) > 0)
		set("providers", *providers, len(*providers) > 0)
		if *expires != "" {
			at, err := expiry(*expires, time.Now())
			if err != nil {
				return fmt.Errorf("%w: subscription create: --expires: %w", errUsage, err)
			}
			attrs["expires"] = at
		}
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		e := &cli.Entity{Kind: api.SubscriptionKind, Mixins: []string{}, ID: *id,
			Attributes: map[string]any{"cmbs": map[string]any{"subscription": attrs}}}
		res, path, err := client.Create(ctx, api.SubscriptionLocation, e)
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		fmt.Fprintf(a.stdout, "created subscription %s at %s\n", lastSegment(path), client.URL(path))
		return nil
	}
}

// expiry reads an RFC 3339 time, or a duration from now.
func expiry(s string, now time.Time) (string, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(d).UTC().Format(time.RFC3339), nil
}

// subscriptionList prints the subscriptions, one row each.
func (a *app) subscriptionList(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		subs, err := client.Entities(ctx, api.SubscriptionLocation)
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteValue(a.stdout, map[string][]*cli.Entity{"resources": subs})
		}
		t := cli.NewTable(a.stdout, "ID", "STATE", "CALLBACK", "EVENTS", "DELIVERED", "FAILED", "DROPPED", "LAST ERROR")
		for _, s := range subs {
			text := func(name string) string { return s.Text("cmbs.subscription." + name) }
			t.Row(s.ID, text("state"), text("callback"), text("events"), text("delivered"), text("failed"), text("dropped"), clip(text("last_error"), 60))
		}
		return t.Flush()
	}
}

// subscriptionShow prints one subscription's attributes.
func (a *app) subscriptionShow(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		s, raw, err := client.Get(ctx, subscriptionPath(c.fs.Arg(0)))
		if err != nil {
			return err
		}
		if c.flags.json() {
			return writeResource(a.stdout, raw)
		}
		return writeAttributes(a.stdout, s, "cmbs.subscription")
	}
}

// subscriptionDelete deletes subscriptions by id, path or URL.
func (a *app) subscriptionDelete(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		return a.deleteEntities(ctx, c, "subscription", subscriptionPath)
	}
}
