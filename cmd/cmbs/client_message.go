package main

import (
	"github.com/houssem/cmbs/broker/api"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// pollInterval is how often --wait reads the message while its delivery
// runs.
const pollInterval = 100 * time.Millisecond

func messageVerbs() []verb {
	layers := strings.Join(cli.Layers(), ", ")
	return []verb{
		{name: "send", summary: "create a message and send it on one layer",
			usage: "--layer LAYER --content CONTENT [flags]", maxArgs: 0,
			about: "Creates a message and sends it from the server's local member on one layer:\n" +
				"  l1   to one member, the one whose L1 socket --to names; its reply is the result\n" +
				"  l2   to every member\n" +
				"  l31  to members offering one of the --provider values\n" +
				"  l32  to members subscribed to one of the --topic values\n" +
				"  l4   to members matching both\n" +
				"CONTENT is sent as JSON when it parses as JSON, otherwise as a string.\n" +
				"With --wait the command follows the delivery (progress on a terminal),\n" +
				"prints the outcome per destination, and fails unless every one got it.\n" +
				"To send an existing message again, use 'cmbs message resend ID'.\n\n" +
				"--count N sends N such messages, --file FILE (or - for standard input) one\n" +
				"per line, each line a JSON object of the message's attributes by name\n" +
				"(message_content, topics, providers, cmbs_layer, expires…) and optionally its\n" +
				"id and title; the flags give what a line leaves out. They go --batch at a\n" +
				"time in one create request each, sent as they are created\n" +
				"(cmbs.message.send_on_create): the server creates and queues a request's\n" +
				"messages in one commit, all or none. The command prints what was accepted\n" +
				"and stops at the first request refused.",
			example: "  cmbs message send --layer l32 --topic weather.paris --content '{\"temp\":21}' --wait\n" +
				"  cmbs message send --layer l1 --to tcp://10.0.0.7:5010 --content ping --wait\n" +
				"  cmbs message send --layer l2 --content tick --count 1000\n" +
				"  printf '%s\\n' '{\"id\":\"t1\",\"message_content\":21}' '{\"id\":\"t2\",\"message_content\":22}' |\n" +
				"    cmbs message send --layer l32 --topic weather.paris --file -",
			setup: (*app).messageSend},
		{name: "resend", summary: "send an existing message again",
			usage: "ID [flags]", minArgs: 1, maxArgs: 1,
			about: "Sends a message already on the server again, on its own layer (cmbs_layer)\n" +
				"or the one --layer names. Receivers that stored it already answer that it is\n" +
				"a duplicate and keep one copy. ID may also be the message's path or URL.",
			example: "  cmbs message resend weather-1 --wait",
			setup:   (*app).messageResend},
		{name: "list", aliases: []string{"ls"}, summary: "list the messages on the server",
			usage: "[flags]", maxArgs: 0,
			about: "Lists the messages stored on the server: those sent from here and those\n" +
				"received, with their layer, origin and the state of their last delivery.\n" +
				"Layers: " + layers + ".",
			example: "  cmbs message list --layer l2",
			setup:   (*app).messageList},
		{name: "show", summary: "a message, its delivery per destination and result",
			usage: "ID [flags]", minArgs: 1, maxArgs: 1,
			about: "Shows a message: its attributes, the outcome of its delivery per destination\n" +
				"and, for l1 messages and executed ones, the result. ID may also be the\n" +
				"message's path or URL.",
			example: "  cmbs message show weather-1",
			setup:   (*app).messageShow},
		{name: "delete", aliases: []string{"rm"}, summary: "delete messages",
			usage: "ID... [flags]", minArgs: 1, maxArgs: -1,
			about:   "Deletes messages from this server's store; copies other members received stay.",
			example: "  cmbs message delete weather-1 weather-2",
			setup:   (*app).messageDelete},
	}
}

// sendOptions are message send's flags.
type sendOptions struct {
	layer, id, title, content, to string
	topics, providers             []string
	hopLimit                      int
	expires                       string
	wait                          waitOptions
	// Batched sends (client_message_batch.go): how many messages, or the
	// file of them, and how many per create request.
	count, batch int
	file         string
	contentSet   bool
}

// waitOptions are --wait and --timeout, shared by send and resend.
type waitOptions struct {
	wait    bool
	timeout time.Duration
}

func (w *waitOptions) bind(c *command) {
	c.fs.BoolVar(&w.wait, "wait", false, "wait until the delivery is done and print its outcome per destination")
	c.fs.DurationVar(&w.timeout, "timeout", 30*time.Second, "with --wait, how long to wait")
}

// messageSend creates a message for one layer and sends it.
func (a *app) messageSend(c *command) func(context.Context) error {
	o := &sendOptions{}
	fs := c.fs
	fs.StringVar(&o.layer, "layer", "", "layer: "+strings.Join(cli.Layers(), ", ")+" (required; with --file, for lines without cmbs_layer)")
	fs.StringVar(&o.id, "id", "", "message id (the server assigns one when empty)")
	fs.StringVar(&o.title, "title", "", "title")
	fs.StringVar(&o.content, "content", "", "message content (required; with --file, for lines without message_content)")
	fs.StringSliceVar(&o.topics, "topic", nil, "topic the message is about (repeatable)")
	fs.StringSliceVar(&o.providers, "provider", nil, "provider the message is for (repeatable)")
	fs.StringVar(&o.to, "to", "", "l1 only: the L1 socket of the member to send to")
	fs.IntVar(&o.hopLimit, "hop-limit", 0, "how many members may forward the message (0: the server's default)")
	fs.StringVar(&o.expires, "expires", "", "when the message stops being retried: an RFC 3339 time or a duration such as 10m (the server's default when empty)")
	o.wait.bind(c)
	fs.IntVar(&o.count, "count", 1, "send this many messages like this one, in batched creates (ids ID-1…ID-N with --id)")
	fs.StringVar(&o.file, "file", "", "send the messages of FILE ('-': standard input), one JSON object of attributes per line")
	fs.IntVar(&o.batch, "batch", defaultBatch, "with --count or --file, messages per create request")
	return func(ctx context.Context) error {
		o.contentSet = fs.Changed("content")
		if batched, err := o.batched(); batched || err != nil {
			if err != nil {
				return err
			}
			return a.batchSend(ctx, c, o)
		}
		if err := o.check(o.contentSet); err != nil {
			return err
		}
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		path, err := createMessage(ctx, client, o)
		if err != nil {
			return err
		}
		return a.sendAndReport(ctx, c, client, path, o.layer, o.wait, nil)
	}
}

// batched reports whether the send goes through batched creates (--count
// above 1, or --file), refusing the flags that do not go with them.
func (o *sendOptions) batched() (bool, error) {
	switch {
	case o.count < 1:
		return false, fmt.Errorf("%w: message send: --count %d: want 1 or more", errUsage, o.count)
	case o.batch < 1:
		return false, fmt.Errorf("%w: message send: --batch %d: want 1 or more", errUsage, o.batch)
	case o.count == 1 && o.file == "":
		return false, nil
	case o.file != "" && o.count != 1:
		return false, fmt.Errorf("%w: message send: give --count or --file, not both", errUsage)
	case o.file != "" && o.id != "":
		return false, fmt.Errorf("%w: message send: with --file, ids come from the lines (\"id\")", errUsage)
	case o.wait.wait:
		return false, fmt.Errorf("%w: message send: --wait follows one message; follow many with 'cmbs message list'", errUsage)
	}
	return true, nil
}

// check refuses flag combinations the server would refuse, with the
// flag to change.
func (o *sendOptions) check(hasContent bool) error {
	switch {
	case !cli.IsLayer(o.layer):
		return fmt.Errorf("%w: message send: --layer %q: want one of %s", errUsage, o.layer, strings.Join(cli.Layers(), ", "))
	case !hasContent:
		return fmt.Errorf("%w: message send: --content is required", errUsage)
	case o.layer == "l1" && o.to == "":
		return fmt.Errorf("%w: message send: an l1 message needs --to, the L1 socket of the member to send to", errUsage)
	case o.layer != "l1" && o.to != "":
		return fmt.Errorf("%w: message send: --to is for l1 messages; layer %s picks members by its selectors", errUsage, o.layer)
	}
	return nil
}

// entity is the message the options describe, as the broker's wire
// contract writes it.
func (o *sendOptions) entity() *cli.Entity {
	m := api.Message{
		Layer: api.Layer(o.layer), Executable: true, Sendable: true, Storable: true,
		Content: contentValue(o.content), Receiver: o.to, HopLimit: o.hopLimit, Expires: o.expires,
	}
	if len(o.topics) > 0 {
		m.Topics = o.topics
	}
	if len(o.providers) > 0 {
		m.Providers = o.providers
	}
	return &cli.Entity{Kind: api.MessageKind, Mixins: []string{api.Layer(o.layer).Mixin()}, ID: o.id, Title: o.title,
		Attributes: m.Attributes()}
}

// createMessage creates the message and returns its path. An id taken
// already is pointed at resend.
func createMessage(ctx context.Context, client *cli.Client, o *sendOptions) (string, error) {
	_, path, err := client.Create(ctx, api.MessageLocation, o.entity())
	var p *cli.Problem
	if errors.As(err, &p) && p.Status == 409 && o.id != "" {
		return "", fmt.Errorf("%w; to send it again: cmbs message resend %s", err, o.id)
	}
	return path, err
}

// sendAndReport triggers send_LAYER on the message at path, then, with
// --wait, follows the delivery that send started (not before, the one
// recorded as before) and reports its outcome.
func (a *app) sendAndReport(ctx context.Context, c *command, client *cli.Client, path, layer string, w waitOptions, before *api.Delivery) error {
	msgID := strings.TrimPrefix(path, api.MessageLocation)
	res, err := client.Action(ctx, path, api.Layer(layer).SendAction())
	if err != nil {
		return fmt.Errorf("message %s was not sent: %w", msgID, err)
	}
	if !w.wait {
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		fmt.Fprintf(a.stdout, "sent message %s on %s: %s\ndelivery pending; see 'cmbs message show %s'\n", msgID, layer, client.URL(path), msgID)
		return nil
	}
	progress := a.progress(msgID)
	msg, raw, err := waitDelivered(ctx, client, path, w.timeout, before, progress)
	progress(nil)
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
	if missed, total := cli.Missed(d); missed > 0 {
		return fmt.Errorf("message %s: %d of %d deliveries failed", msgID, missed, total)
	}
	return nil
}

// progress returns what --wait calls with each delivery read, and with
// nil once done: on a terminal it keeps one line on standard error up to
// date, elsewhere it writes nothing, so scripts read outcomes only.
func (a *app) progress(msgID string) func(*api.Delivery) {
	if !a.isTerminal(a.stderr) {
		return func(*api.Delivery) {}
	}
	start := time.Now()
	shown := false
	return func(d *api.Delivery) {
		if d == nil {
			if shown {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			return
		}
		state := "waiting for the send to start"
		if d.State != "" {
			state = d.State + ", " + cli.Counts(d)
		}
		fmt.Fprintf(a.stderr, "\r\033[Kmessage %s: %s (%.1fs)", msgID, state, time.Since(start).Seconds())
		shown = true
	}
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

// waitDelivered reads the message until a delivery other than before is
// done, telling progress what it read each time.
func waitDelivered(ctx context.Context, client *cli.Client, path string, timeout time.Duration, before *api.Delivery, progress func(*api.Delivery)) (*cli.Entity, json.RawMessage, error) {
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
		if cli.SameDelivery(d, before) {
			d = nil // the earlier send's outcome: this one has not started
		}
		if d.Done() {
			return msg, raw, nil
		}
		progress(orEmpty(d))
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

func orEmpty(d *api.Delivery) *api.Delivery {
	if d == nil {
		return &api.Delivery{}
	}
	return d
}

// writeDelivery prints a message's delivery: a summary line, then one row
// per destination.
func writeDelivery(w io.Writer, msg *cli.Entity, times bool) error {
	d, err := cli.DeliveryOf(msg)
	if err != nil {
		return err
	}
	if d == nil {
		if origin := msg.Text(api.MessageOrigin); origin != "" {
			fmt.Fprintf(w, "message %s was received from %s; it was not sent from here\n", msg.ID, origin)
		} else {
			fmt.Fprintf(w, "message %s has not been sent\n", msg.ID)
		}
		return nil
	}
	fmt.Fprintf(w, "message %s on %s: %s, %s\n", msg.ID, d.Layer, d.State, cli.Counts(d))
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
	return api.MessageLocation + ref
}

// messageResend sends an existing message again.
func (a *app) messageResend(c *command) func(context.Context) error {
	layer := c.fs.String("layer", "", "send on this layer instead of the message's own")
	var w waitOptions
	w.bind(c)
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		path := messagePath(c.fs.Arg(0))
		msg, _, err := client.Get(ctx, path)
		if err != nil {
			return err
		}
		l := *layer
		if l == "" {
			l = msg.Text(api.MessageLayer)
		}
		if !cli.IsLayer(l) {
			return fmt.Errorf("%w: message resend: message %s names no layer (cmbs_layer %q); give one with --layer", errUsage, msg.ID, l)
		}
		before, err := cli.DeliveryOf(msg)
		if err != nil {
			return err
		}
		return a.sendAndReport(ctx, c, client, path, l, w, before)
	}
}

// messageList prints the messages on the server, one row each.
func (a *app) messageList(c *command) func(context.Context) error {
	layer := c.fs.String("layer", "", "only messages for this layer")
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		msgs, err := client.Entities(ctx, api.MessageLocation)
		if err != nil {
			return err
		}
		kept := msgs[:0]
		for _, m := range msgs {
			if *layer == "" || m.Text(api.MessageLayer) == *layer {
				kept = append(kept, m)
			}
		}
		if c.flags.json() {
			return cli.WriteValue(a.stdout, map[string][]*cli.Entity{"resources": kept})
		}
		t := cli.NewTable(a.stdout, "ID", "LAYER", "ORIGIN", "DELIVERY", "OUTCOME", "CONTENT")
		for _, m := range kept {
			state, outcome := "", ""
			if d, err := cli.DeliveryOf(m); err == nil && d != nil {
				state, outcome = d.State, cli.Counts(d)
			}
			content := ""
			if v, ok := m.Attr(api.MessageContent); ok {
				raw, _ := json.Marshal(v)
				content = clip(string(raw), 40)
			}
			t.Row(m.ID, m.Text(api.MessageLayer), m.Text(api.MessageOrigin), state, outcome, content)
		}
		return t.Flush()
	}
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// messageShow prints one message: its attributes, delivery and result.
func (a *app) messageShow(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
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
		if err := writeAttributes(a.stdout, msg, "cmbs.message", "delivery", "result"); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout)
		if err := writeDelivery(a.stdout, msg, true); err != nil {
			return err
		}
		if result, ok := msg.Attr(api.MessageResult); ok && !isEmpty(result) {
			fmt.Fprintln(a.stdout, "\nresult:")
			raw, err := json.MarshalIndent(result, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", raw)
		}
		return nil
	}
}

// writeAttributes prints an entity's id, kind, mixins, title and the
// attributes under prefix, one row each, but those skipped.
func writeAttributes(w io.Writer, e *cli.Entity, prefix string, skip ...string) error {
	t := cli.NewTable(w)
	t.Row("ID", e.ID)
	t.Row("KIND", e.Kind)
	t.Row("MIXINS", strings.Join(e.Mixins, ","))
	if e.Title != "" {
		t.Row("TITLE", e.Title)
	}
	attrs, _ := e.Attr(prefix)
	fields, _ := attrs.(map[string]any)
	for _, name := range sortedKeys(fields) {
		if contains(skip, name) {
			continue
		}
		v := fields[name]
		text := cli.Text(v)
		if name == "message_content" {
			// Content shows as JSON so a string and an object stay apart.
			raw, _ := json.Marshal(v)
			text = string(raw)
		}
		t.Row(name, text)
	}
	return t.Flush()
}

// messageDelete deletes messages by id, path or URL.
func (a *app) messageDelete(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		return a.deleteEntities(ctx, c, "message", messagePath)
	}
}

// deleteEntities deletes each argument's entity, reporting each, and
// stops at the first refusal.
func (a *app) deleteEntities(ctx context.Context, c *command, what string, pathOf func(string) string) error {
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	var deleted []string
	for _, ref := range c.fs.Args() {
		path := pathOf(ref)
		if _, err := client.Do(ctx, "DELETE", path, nil); err != nil {
			return fmt.Errorf("delete %s %s: %w", what, ref, err)
		}
		deleted = append(deleted, client.URL(path))
		if !c.flags.json() {
			fmt.Fprintf(a.stdout, "deleted %s %s\n", what, lastSegment(path))
		}
	}
	if c.flags.json() {
		return cli.WriteValue(a.stdout, cli.Locations{OCCI: deleted})
	}
	return nil
}

func lastSegment(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

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
