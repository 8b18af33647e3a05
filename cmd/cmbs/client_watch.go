package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// watch prints the server's event stream, one line per event, until
// interrupted, the server ends the stream, or --count events arrived.
func (a *app) watch(ctx context.Context, args []string) error {
	c := a.newCommand("watch", "watch [flags]",
		"Prints the server's events (created, updated, deleted, message_received,\n"+
			"delivery_failed) as they happen, one line each; with -o json, each event's\n"+
			"JSON on one line. Stops on Ctrl-C or when the server closes the stream.")
	fs := c.fs
	var f cli.WatchFilter
	fs.StringVar(&f.Kind, "kind", "", "only entities of this kind (e.g. http://houssem.org/cmbs#message)")
	fs.StringVar(&f.Location, "location", "", "only entities whose location starts with this (e.g. /cmbs/member/)")
	fs.StringSliceVar(&f.Topics, "topic", nil, "only entities about one of these topics (repeatable)")
	fs.StringSliceVar(&f.Providers, "provider", nil, "only entities for one of these providers (repeatable)")
	fs.StringSliceVar(&f.Events, "event", nil, "only these events (repeatable)")
	count := fs.Int("count", 0, "stop after this many events (0: never)")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
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
		if c.flags.json() {
			var line bytes.Buffer
			if err := json.Compact(&line, raw); err != nil {
				return fmt.Errorf("event stream: %w", err)
			}
			line.WriteByte('\n')
			if _, err := a.stdout.Write(line.Bytes()); err != nil {
				return err
			}
		} else if _, err := fmt.Fprintln(a.stdout, cli.FormatEvent(ev)); err != nil {
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
