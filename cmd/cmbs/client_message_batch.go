package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// Batched sends: message send --count N and --file create many messages
// that send themselves on create (cmbs.message.send_on_create), --batch of
// them per request. The server creates and queues each request's messages
// in one commit, all or none, so a request refused leaves nothing of it.

// defaultBatch is how many messages one create request of a batched send
// carries unless --batch says.
const defaultBatch = 500

// maxLine bounds one line of a --file: a message is at most the server's
// default body size.
const maxLine = 10 << 20

// pending is a message of a batched send with where it came from, so a
// refusal can name the line.
type pending struct {
	e    *cli.Entity
	line int // 0 for --count
}

// batchSend is message send's batched path: --count N, or --file.
func (a *app) batchSend(ctx context.Context, c *command, o *sendOptions) error {
	next, closeSrc, err := a.batchSource(c, o)
	if err != nil {
		return err
	}
	defer closeSrc()
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	var accepted []string
	requests := 0
	for {
		batch, err := nextBatch(next, o.batch)
		if err != nil {
			return a.reportAccepted(c, client, accepted, requests, err)
		}
		if len(batch) == 0 {
			break
		}
		paths, err := createBatch(ctx, client, batch)
		if err != nil {
			return a.reportAccepted(c, client, accepted, requests, batchError(batch, err))
		}
		requests++
		accepted = append(accepted, paths...)
	}
	if len(accepted) == 0 {
		return fmt.Errorf("%w: message send: %s holds no message", errUsage, sourceName(o.file))
	}
	return a.reportAccepted(c, client, accepted, requests, nil)
}

// batchSource returns what yields the messages of a batched send, one at a
// time, io.EOF after the last, and what closes the file it reads.
func (a *app) batchSource(c *command, o *sendOptions) (func() (pending, error), func(), error) {
	if o.file == "" {
		if err := o.check(c.fs.Changed("content")); err != nil {
			return nil, nil, err
		}
		i := 0
		return func() (pending, error) {
			if i == o.count {
				return pending{}, io.EOF
			}
			i++
			e := o.entity()
			if o.id != "" {
				e.ID = o.id + "-" + strconv.Itoa(i)
			}
			setSendOnCreate(e)
			return pending{e: e}, nil
		}, func() {}, nil
	}
	r := a.stdin
	closeSrc := func() {}
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, nil, fmt.Errorf("message send: %w", err)
		}
		r, closeSrc = f, func() { _ = f.Close() } // read only
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	return func() (pending, error) {
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" {
				continue
			}
			e, err := o.lineEntity([]byte(text))
			if err != nil {
				return pending{}, fmt.Errorf("%w: message send: %s line %d: %w", errUsage, sourceName(o.file), line, err)
			}
			return pending{e: e, line: line}, nil
		}
		if err := sc.Err(); err != nil {
			return pending{}, fmt.Errorf("message send: reading %s after line %d: %w", sourceName(o.file), line, err)
		}
		return pending{}, io.EOF
	}, closeSrc, nil
}

func sourceName(file string) string {
	if file == "-" {
		return "standard input"
	}
	return file
}

// nextBatch takes up to n messages from next; none at the end.
func nextBatch(next func() (pending, error), n int) ([]pending, error) {
	var out []pending
	for len(out) < n {
		p, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// entityFields are the members of a --file line that are the entity's
// own rather than attributes.
var entityFields = map[string]bool{"id": true, "title": true, "summary": true}

// messagePrefix is the prefix of the message kind's attribute names; a
// --file line may name attributes with or without it.
const messagePrefix = "cmbs.message."

// lineEntity reads one --file line: a JSON object holding a message's
// attributes by name (message_content, topics…, or in full,
// cmbs.message.topics…) and optionally its id, title and summary. What the
// line leaves out comes from the flags.
func (o *sendOptions) lineEntity(raw []byte) (*cli.Entity, error) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("want a JSON object of the message's attributes, such as {\"id\":\"m1\",\"message_content\":\"hello\"}")
	}
	e := &cli.Entity{Kind: api.MessageKind, Mixins: []string{}}
	attrs := map[string]any{}
	for name, v := range fields {
		if entityFields[name] {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: want a string", name)
			}
			switch name {
			case "id":
				e.ID = s
			case "title":
				e.Title = s
			case "summary":
				e.Summary = s
			}
			continue
		}
		attrs[messagePrefix+strings.TrimPrefix(name, messagePrefix)] = v
	}
	// The flags fill in what the line leaves out.
	defaults := map[string]any{api.MessageLayer: o.layer, api.MessageReceiver: o.to, api.MessageExpires: o.expires}
	if o.contentSet {
		defaults[api.MessageContent] = contentValue(o.content)
	}
	if len(o.topics) > 0 {
		defaults[api.MessageTopics] = o.topics
	}
	if len(o.providers) > 0 {
		defaults[api.MessageProviders] = o.providers
	}
	if o.hopLimit > 0 {
		defaults[api.MessageHopLimit] = o.hopLimit
	}
	for name, v := range defaults {
		if _, ok := attrs[name]; !ok && v != "" {
			attrs[name] = v
		}
	}
	if e.Title == "" {
		e.Title = o.title
	}
	nested := cli.Nest(attrs)
	m, err := api.MessageFromAttributes(nested)
	if err != nil {
		return nil, err
	}
	if m.Layer == "" {
		return nil, fmt.Errorf("no layer: give the line a cmbs_layer (l1, l2, l31, l32 or l4) or the command --layer")
	}
	if m.Layer == api.L1 && m.Receiver == "" {
		return nil, errors.New("an l1 message needs l1_socket_receiver_member (or --to), the L1 socket of the member to send to")
	}
	e.Mixins = []string{m.Layer.Mixin()}
	e.Attributes = nested
	setSendOnCreate(e)
	return e, nil
}

// setSendOnCreate makes the create of e send it on its layer.
func setSendOnCreate(e *cli.Entity) {
	cmbs, _ := e.Attributes["cmbs"].(map[string]any)
	if cmbs == nil {
		cmbs = map[string]any{}
		e.Attributes["cmbs"] = cmbs
	}
	msg, _ := cmbs["message"].(map[string]any)
	if msg == nil {
		msg = map[string]any{}
		cmbs["message"] = msg
	}
	msg["send_on_create"] = "True"
}

// createBatch creates the messages in one request and returns their paths,
// in order.
func createBatch(ctx context.Context, client *cli.Client, batch []pending) ([]string, error) {
	resources := make([]*cli.Entity, len(batch))
	for i, p := range batch {
		resources[i] = p.e
	}
	raw, err := json.Marshal(map[string][]*cli.Entity{"resources": resources})
	if err != nil {
		return nil, err
	}
	res, err := client.DoRaw(ctx, http.MethodPost, api.MessageLocation, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var l cli.Locations
	if err := res.Decode(&l); err != nil {
		return nil, err
	}
	answered := l.Paths()
	if len(answered) != len(batch) {
		return nil, fmt.Errorf("creating %d messages: the server answered %d locations", len(batch), len(answered))
	}
	// The answer lists the locations in an order of its own: put them in
	// the request's, those the server named where the request named none.
	paths := make([]string, len(batch))
	named := map[string]bool{}
	for i, p := range batch {
		if p.e.ID != "" {
			paths[i] = api.MessageLocation + p.e.ID
			named[paths[i]] = true
		}
	}
	j := 0
	for i := range paths {
		for paths[i] == "" && j < len(answered) {
			if !named[answered[j]] {
				paths[i] = answered[j]
			}
			j++
		}
	}
	return paths, nil
}

// resourceIndex finds the index of the resource a refusal names
// ("resources[3].attributes…").
var resourceIndex = regexp.MustCompile(`resources\[(\d+)\]`)

// batchError says which messages a refused request held, and, when the
// server named one, its line.
func batchError(batch []pending, err error) error {
	first, last := batch[0].line, batch[len(batch)-1].line
	what := fmt.Sprintf("a request of %d messages", len(batch))
	switch {
	case first > 0 && first == last:
		what = fmt.Sprintf("line %d", first)
	case first > 0:
		what = fmt.Sprintf("lines %d–%d", first, last)
	}
	var p *cli.Problem
	note := ""
	if errors.As(err, &p) && first != last {
		if m := resourceIndex.FindStringSubmatch(p.Field + " " + p.Detail); m != nil {
			if i, convErr := strconv.Atoi(m[1]); convErr == nil && i < len(batch) {
				note = fmt.Sprintf("; %s is line %d", m[0], batch[i].line)
			}
		}
	}
	return fmt.Errorf("%s not accepted, none of them created: %w%s", what, err, note)
}

// reportAccepted prints what a batched send created, then passes err on.
func (a *app) reportAccepted(c *command, client *cli.Client, accepted []string, requests int, err error) error {
	if c.flags.json() {
		urls := make([]string, len(accepted))
		for i, p := range accepted {
			urls[i] = client.URL(p)
		}
		if werr := cli.WriteValue(a.stdout, cli.Locations{OCCI: urls}); werr != nil && err == nil {
			return werr
		}
		return err
	}
	if len(accepted) == 0 {
		return err
	}
	ids := make([]string, len(accepted))
	for i, p := range accepted {
		ids[i] = strings.TrimPrefix(p, api.MessageLocation)
	}
	list := strings.Join(ids, ", ")
	if len(ids) > 10 {
		list = ids[0] + " … " + ids[len(ids)-1]
	}
	fmt.Fprintf(a.stdout, "accepted %d %s in %d %s, each sent as it was created: %s\n",
		len(accepted), plural(len(accepted), "message", "messages"), requests, plural(requests, "request", "requests"), list)
	if err == nil {
		fmt.Fprintln(a.stdout, "delivery pending; see 'cmbs message list' or 'cmbs message show ID'")
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
