package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// pollInterval is how often --wait reads the message while its delivery
// runs.
const pollInterval = 100 * time.Millisecond

// messageSend creates a message for one layer and sends it.
func (a *app) messageSend(ctx context.Context, args []string) error {
	c := a.newCommand("message send", "message send --layer LAYER --content CONTENT [flags]",
		"Creates a message and sends it from the server's local member on one layer:\n"+
			"  l1   to one member, the one whose L1 socket --to names\n"+
			"  l2   to every member\n"+
			"  l31  to members offering one of the --provider values\n"+
			"  l32  to members subscribed to one of the --topic values\n"+
			"  l4   to members matching both\n"+
			"CONTENT is sent as JSON when it parses as JSON, otherwise as a string.")
	fs := c.fs
	layer := fs.String("layer", "", "layer: "+strings.Join(cli.Layers(), ", ")+" (required)")
	id := fs.String("id", "", "message id (the server assigns one when empty)")
	title := fs.String("title", "", "title")
	content := fs.String("content", "", "message content (required)")
	topics := fs.StringSlice("topic", nil, "topic the message is about (repeatable)")
	providers := fs.StringSlice("provider", nil, "provider the message is for (repeatable)")
	to := fs.String("to", "", "l1 only: the L1 socket of the member to send to")
	hopLimit := fs.Int("hop-limit", 0, "how many members may forward the message (0: the server's default)")
	expires := fs.String("expires", "", "when the message stops being retried: an RFC 3339 time or a duration such as 10m (the server's default when empty)")
	wait := fs.Bool("wait", false, "wait until the delivery is done and print its outcome per destination")
	waitTimeout := fs.Duration("timeout", 30*time.Second, "with --wait, how long to wait")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
	switch {
	case !cli.IsLayer(*layer):
		return fmt.Errorf("%w: message send: --layer %q: want one of %s", errUsage, *layer, strings.Join(cli.Layers(), ", "))
	case !fs.Changed("content"):
		return fmt.Errorf("%w: message send: --content is required", errUsage)
	case *layer == "l1" && *to == "":
		return fmt.Errorf("%w: message send: an l1 message needs --to, the L1 socket of the member to send to", errUsage)
	case *layer != "l1" && *to != "":
		return fmt.Errorf("%w: message send: --to is for l1 messages; layer %s picks members by its selectors", errUsage, *layer)
	}
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	attrs := map[string]any{
		"cmbs_layer":      *layer,
		"message_content": contentValue(*content),
	}
	if len(*topics) > 0 {
		attrs["topics"] = *topics
	}
	if len(*providers) > 0 {
		attrs["providers"] = *providers
	}
	if *to != "" {
		attrs["l1_socket_receiver_member"] = *to
	}
	if *hopLimit > 0 {
		attrs["hop_limit"] = *hopLimit
	}
	if *expires != "" {
		attrs["expires"] = *expires
	}
	e := &cli.Entity{Kind: cli.MessageKind, Mixins: []string{cli.LayerMixinScheme + *layer}, ID: *id, Title: *title,
		Attributes: map[string]any{"cmbs": map[string]any{"message": attrs}}}
	_, path, err := client.Create(ctx, cli.MessageLocation, e)
	if err != nil {
		return err
	}
	msgID := strings.TrimPrefix(path, cli.MessageLocation)
	res, err := client.Action(ctx, path, "send_"+*layer)
	if err != nil {
		return fmt.Errorf("message %s was created but not sent: %w", msgID, err)
	}
	if !*wait {
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		fmt.Fprintf(a.stdout, "sent message %s on %s: %s\ndelivery pending; see 'cmbs message show %s'\n", msgID, *layer, client.URL(path), msgID)
		return nil
	}
	msg, raw, err := waitDelivered(ctx, client, path, *waitTimeout)
	if err != nil {
		return err
	}
	if c.flags.json() {
		if err := writeResource(a.stdout, raw); err != nil {
			return err
		}
	} else if err := writeDelivery(a.stdout, msg, false); err != nil {
		return err
	}
	d, _ := cli.DeliveryOf(msg)
	if lost := d.Failed + d.Expired; lost > 0 {
		return fmt.Errorf("message %s: %d of %d deliveries failed", msgID, lost, lost+d.Delivered)
	}
	return nil
}

// contentValue sends content that parses as JSON as that value and
// anything else as the string it is.
func contentValue(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return s
}

// waitDelivered reads the message until its delivery is done.
func waitDelivered(ctx context.Context, client *cli.Client, path string, timeout time.Duration) (*cli.Entity, json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		msg, raw, err := client.Get(ctx, path)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("delivery of %s not done after %v", path, timeout)
			}
			return nil, nil, err
		}
		d, err := cli.DeliveryOf(msg)
		if err != nil {
			return nil, nil, err
		}
		if d.Done() {
			return msg, raw, nil
		}
		select {
		case <-ctx.Done():
			state := "not started"
			if d != nil {
				state = d.State
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, nil, fmt.Errorf("delivery of %s still %s after %v", path, state, timeout)
			}
			return nil, nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// writeDelivery prints a message's delivery: a summary line, then one row
// per destination.
func writeDelivery(w io.Writer, msg *cli.Entity, times bool) error {
	d, err := cli.DeliveryOf(msg)
	if err != nil {
		return err
	}
	if d == nil {
		if origin := msg.Text(cli.MsgOrigin); origin != "" {
			fmt.Fprintf(w, "message %s was received from %s; it was not sent from here\n", msg.ID, origin)
		} else {
			fmt.Fprintf(w, "message %s has not been sent\n", msg.ID)
		}
		return nil
	}
	fmt.Fprintf(w, "message %s on %s: %s, %d delivered, %d failed", msg.ID, d.Layer, d.State, d.Delivered, d.Failed)
	if d.Expired > 0 {
		fmt.Fprintf(w, ", %d expired", d.Expired)
	}
	if d.Pending > 0 {
		fmt.Fprintf(w, ", %d pending", d.Pending)
	}
	fmt.Fprintln(w)
	if times {
		fmt.Fprintf(w, "started %s, finished %s\n", d.Started, orDash(d.Finished))
	}
	if d.Note != "" {
		fmt.Fprintf(w, "note: %s\n", d.Note)
	}
	if len(d.Destinations) == 0 {
		return nil
	}
	t := cli.NewTable(w, "DESTINATION", "STATUS", "ENDPOINT", "VIA", "PATH", "REASON")
	for _, dest := range d.SortedDestinations() {
		status := dest.Status
		if dest.Duplicate {
			status += " (duplicate)"
		}
		t.Row(dest.Member, status, dest.Endpoint, dest.Via, strings.Join(dest.Path, " > "), dest.Reason)
	}
	return t.Flush()
}

// messagePath accepts a message id, its path or its URL.
func messagePath(ref string) string {
	if strings.Contains(ref, "/") {
		return cli.Path(ref)
	}
	return cli.MessageLocation + ref
}

// messageShow prints one message: its attributes, delivery and result.
func (a *app) messageShow(ctx context.Context, args []string) error {
	c := a.newCommand("message show", "message show ID [flags]",
		"Shows a message: its attributes, the outcome of its delivery per destination\n"+
			"and, for l1 messages and executed ones, the result.")
	if help, err := c.parse(args, 1, 1); help || err != nil {
		return err
	}
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	msg, raw, err := client.Get(ctx, messagePath(c.fs.Arg(0)))
	if err != nil {
		return err
	}
	if c.flags.json() {
		return writeResource(a.stdout, raw)
	}
	t := cli.NewTable(a.stdout)
	t.Row("ID", msg.ID)
	t.Row("KIND", msg.Kind)
	t.Row("MIXINS", strings.Join(msg.Mixins, ","))
	if msg.Title != "" {
		t.Row("TITLE", msg.Title)
	}
	attrs, _ := msg.Attr("cmbs.message")
	fields, _ := attrs.(map[string]any)
	names := make([]string, 0, len(fields))
	for name := range fields {
		if name != "delivery" && name != "result" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		v := fields[name]
		text := cli.Text(v)
		if name == "message_content" {
			// Content shows as JSON so a string and an object stay apart.
			raw, _ := json.Marshal(v)
			text = string(raw)
		}
		t.Row(name, text)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	if err := writeDelivery(a.stdout, msg, true); err != nil {
		return err
	}
	if result, ok := msg.Attr(cli.MsgResult); ok && !isEmpty(result) {
		fmt.Fprintln(a.stdout, "\nresult:")
		raw, err := json.MarshalIndent(result, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s\n", raw)
	}
	return nil
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeResource writes one entity in the document the server wraps it in.
func writeResource(w io.Writer, raw json.RawMessage) error {
	return cli.WriteValue(w, map[string][]json.RawMessage{"resources": {raw}})
}
