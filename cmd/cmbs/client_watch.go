package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

func watchVerb() verb {
	return verb{summary: "print the server's events as they happen",
		usage: "[flags]", maxArgs: 0,
		about: "Prints the server's events (created, updated, deleted, message_received,\n" +
			"delivery_failed) as they happen, one line each; with -o json, each event's\n" +
			"JSON on one line. Stops on Ctrl-C, after --count events, or when the server\n" +
			"closes the stream. The same stream is GET /events over WebSocket or, for\n" +
			"curl -N, Server-Sent Events.",
		example: "  cmbs watch --location /cmbs/message/ --event message_received",
		setup:   (*app).watch}
}

// watch prints the server's event stream, one line per event, until
// interrupted, the server ends the stream, or --count events arrived.
func (a *app) watch(c *command) func(context.Context) error {
	fs := c.fs
	var f cli.WatchFilter
	fs.StringVar(&f.Kind, "kind", "", "only entities of this kind (e.g. http://houssem.org/cmbs#message)")
	fs.StringVar(&f.Location, "location", "", "only entities whose location starts with this (e.g. /cmbs/member/)")
	fs.StringSliceVar(&f.Topics, "topic", nil, "only entities about one of these topics (repeatable)")
	fs.StringSliceVar(&f.Providers, "provider", nil, "only entities for one of these providers (repeatable)")
	fs.StringSliceVar(&f.Events, "event", nil, "only these events (repeatable)")
	count := fs.Int("count", 0, "stop after this many events (0: never)")
	return func(ctx context.Context) error {
		if *count < 0 {
			return fmt.Errorf("%w: watch: --count must not be negative", errUsage)
		}
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		seen := 0
		opened := func() {
			// On stderr, so standard output holds only events.
			fmt.Fprintf(a.stderr, "watching %s%s\n", client.Server(), cli.EventsPath)
		}
		err = client.Watch(ctx, f, opened, func(raw []byte, ev cli.Event) error {
			if err := a.printEvent(c.flags.json(), raw, ev); err != nil {
				return err
			}
			seen++
			if *count > 0 && seen >= *count {
				return cli.ErrStop
			}
			return nil
		})
		if errors.Is(err, cli.ErrStop) {
			return nil
		}
		return err
	}
}

// printEvent writes one event: its JSON on one line, or its summary.
func (a *app) printEvent(asJSON bool, raw []byte, ev cli.Event) error {
	if !asJSON {
		_, err := fmt.Fprintln(a.stdout, cli.FormatEvent(ev))
		return err
	}
	var line bytes.Buffer
	if err := json.Compact(&line, raw); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	line.WriteByte('\n')
	_, err := a.stdout.Write(line.Bytes())
	return err
}
