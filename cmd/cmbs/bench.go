package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// cmbs bench measures a server the way nats bench measures NATS: it sends
// N messages from C publishers, B per create request, waits until every
// outcome is recorded at the sender, and prints msgs/s, MB/s and delivery
// latency percentiles. The messages send themselves on create
// (cmbs.message.send_on_create), so what is measured is the path a
// producer uses: HTTP create, commit with the outbox, delivery over the
// layer, the receiver's commit and the outcome recorded at the sender.

func benchVerb() verb {
	return verb{
		summary: "measure message throughput and delivery latency",
		usage:   "[flags]", maxArgs: 0,
		about: "Sends --count messages of --size bytes of content on one layer, from the\n" +
			"server's local member to the members it knows there (l1: one of them per\n" +
			"message, in turn; l31, l32, l4: by the --provider and --topic values, by default\n" +
			"every one the known members have), --publishers at once, --batch messages per\n" +
			"create request; l1 sends one per request and holds it until the reply is\n" +
			"recorded (Prefer: wait). Then it waits until every outcome is recorded at the\n" +
			"sender and prints messages per second and MB per second (of content) accepted\n" +
			"and delivered, and delivery latency percentiles: from each message's delivery\n" +
			"started to finished (read from a sample of at most --samples messages), for l1\n" +
			"the requests' round trips. Progress shows as a bar on a terminal and as plain\n" +
			"lines otherwise, on standard error.\n\n" +
			"--embedded runs two members in this process instead, each a cmbs serve on a\n" +
			"temporary embedded store and free loopback ports, the first discovering the\n" +
			"second, and removes them afterwards. Against a server, the messages stay\n" +
			"there; their ids start with bench-RUN- and their title is 'cmbs bench RUN'.\n\n" +
			"The command fails when a message was not delivered to every destination.",
		example: "  cmbs bench --embedded --layer l2 --count 100000 --publishers 4 --batch 500\n" +
			"  cmbs bench --embedded --layer l1 --count 2000 --publishers 8 -o json\n" +
			"  cmbs bench --server http://10.0.0.5:8090 --layer l32 --topic weather.paris --count 10000",
		setup: (*app).bench,
	}
}

// benchOptions are cmbs bench's flags.
type benchOptions struct {
	embedded          bool
	layer             string
	count             int
	publishers        int
	batch             int
	size              int
	expires           string
	wait              time.Duration
	timeout           time.Duration
	samples           int
	topics, providers []string
}

// bench binds the flags of cmbs bench and returns what runs it.
func (a *app) bench(c *command) func(context.Context) error {
	o := &benchOptions{}
	fs := c.fs
	fs.BoolVar(&o.embedded, "embedded", false, "run two members in this process instead of using --server")
	fs.StringVar(&o.layer, "layer", "l2", "layer: "+strings.Join(cli.Layers(), ", "))
	fs.IntVar(&o.count, "count", 10000, "messages to send")
	fs.IntVarP(&o.publishers, "publishers", "c", 4, "clients sending at once, one request in flight each")
	fs.IntVar(&o.batch, "batch", 100, "messages per create request (l1: 1)")
	fs.IntVar(&o.size, "size", 128, "bytes of content per message")
	fs.StringVar(&o.expires, "expires", "", "each message's expiry: an RFC 3339 time or a duration such as 10m (the server's default when empty)")
	fs.DurationVar(&o.wait, "wait", 10*time.Second, "l1: how long each request waits for its reply (Prefer: wait)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for the outcomes once every message is accepted")
	fs.IntVar(&o.samples, "samples", 2000, "messages read back for the delivery latencies, at most")
	fs.StringSliceVar(&o.topics, "topic", nil, "l32, l4: topic of the messages (repeatable; default: the known members' topics)")
	fs.StringSliceVar(&o.providers, "provider", nil, "l31, l4: provider of the messages (repeatable; default: the known members' providers)")
	return func(ctx context.Context) error {
		if err := o.check(c); err != nil {
			return err
		}
		var (
			client *cli.Client
			target string
			err    error
		)
		if c.flags.output != outputTable && c.flags.output != outputJSON {
			return fmt.Errorf("%w: -o %q: want table or json", errUsage, c.flags.output)
		}
		if o.embedded {
			pair, err := a.startEmbedded(ctx)
			if err != nil {
				return err
			}
			defer pair.close()
			client, err = benchClient(pair.url, "", cli.TLS{}, c.flags.timeout, o.publishers)
			if err != nil {
				return err
			}
			target = "embedded"
		} else {
			if client, err = benchClient(c.flags.server, c.flags.user, c.flags.tls, c.flags.timeout, o.publishers); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			target = client.Server()
		}
		plan, err := planBench(ctx, client, o)
		if err != nil {
			return err
		}
		plan.target = target
		res, err := a.runBench(ctx, client, plan, o)
		if err != nil {
			return err
		}
		if c.flags.json() {
			if err := writeBenchJSON(a.stdout, res); err != nil {
				return err
			}
		} else {
			writeBenchText(a.stdout, res)
		}
		if res.Pending > 0 {
			return fmt.Errorf("%d of %d messages still had destinations pending after --timeout %v", res.Pending, res.Accepted, o.timeout)
		}
		if res.Undelivered > 0 {
			return fmt.Errorf("%d of %d messages were not delivered to every destination (failed or expired); see 'cmbs message list'", res.Undelivered, res.Accepted)
		}
		return nil
	}
}

// check refuses flags that cannot make a run.
func (o *benchOptions) check(c *command) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench: "+format, append([]any{errUsage}, args...)...)
	}
	switch {
	case !cli.IsLayer(o.layer):
		return bad("--layer %q: want one of %s", o.layer, strings.Join(cli.Layers(), ", "))
	case o.count < 1:
		return bad("--count %d: want 1 or more", o.count)
	case o.publishers < 1:
		return bad("--publishers %d: want 1 or more", o.publishers)
	case o.batch < 1:
		return bad("--batch %d: want 1 or more", o.batch)
	case o.layer == string(api.L1) && o.batch != 1 && c.fs.Changed("batch"):
		return bad("--batch %d: l1 sends one message per request, held until its reply (Prefer: wait)", o.batch)
	case o.size < 0:
		return bad("--size %d: want 0 or more", o.size)
	case o.wait < time.Second:
		return bad("--wait %v: want at least 1s (Prefer: wait counts whole seconds)", o.wait)
	case o.timeout <= 0:
		return bad("--timeout %v: want a positive duration", o.timeout)
	case o.samples < 1:
		return bad("--samples %d: want 1 or more", o.samples)
	case o.embedded && c.fs.Changed("server"):
		return bad("--embedded runs its own members; it takes no --server")
	case len(o.topics) > 0 && o.layer != string(api.L32) && o.layer != string(api.L4):
		return bad("--topic is for l32 and l4")
	case len(o.providers) > 0 && o.layer != string(api.L31) && o.layer != string(api.L4):
		return bad("--provider is for l31 and l4")
	}
	if o.expires != "" {
		if _, err := api.ParseExpires(o.expires, time.Now()); err != nil {
			return bad("--expires: %v", err)
		}
	}
	if o.layer == string(api.L1) {
		o.batch = 1
	}
	return nil
}

// benchClient is a client keeping a connection per publisher open.
func benchClient(server, user string, t cli.TLS, timeout time.Duration, publishers int) (*cli.Client, error) {
	hc, err := cli.HTTPClient(timeout, t)
	if err != nil {
		return nil, err
	}
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = publishers + 4
	}
	return cli.New(server, user, hc)
}

// benchPlan is what a run sends, and where.
type benchPlan struct {
	layer  api.Layer
	target string // the server's URL, or "embedded"
	from   string // the sending member
	// to lists the members the messages are for (l2, l31: those the
	// server knows that match; l32, l4: every known member, as topics
	// match by pattern on the server).
	to []string
	// receivers are the L1 sockets l1 messages go to, in turn.
	receivers         []string
	topics, providers []string
	run               string // this run's id
	content           string
}

// planBench reads the server's members and picks what the messages carry.
func planBench(ctx context.Context, client *cli.Client, o *benchOptions) (*benchPlan, error) {
	members, err := client.Members(ctx)
	if err != nil {
		return nil, err
	}
	p := &benchPlan{layer: api.Layer(o.layer), topics: o.topics, providers: o.providers, content: strings.Repeat("x", o.size)}
	var remote []cli.Member
	for _, m := range members {
		if m.Local() {
			p.from = m.ID
		} else {
			remote = append(remote, m)
		}
	}
	if p.from == "" {
		return nil, fmt.Errorf("%s has no local member to send from; create one with 'cmbs member create'", client.Server())
	}
	for _, m := range remote {
		switch p.layer {
		case api.L1:
			if s := m.Text(api.L1.SocketAttr()); s != "" {
				p.receivers = append(p.receivers, s)
				p.to = append(p.to, m.ID)
			}
		case api.L31, api.L32, api.L4:
			if len(o.providers) == 0 {
				p.providers = union(p.providers, memberList(m, api.MemberProviders))
			}
			if len(o.topics) == 0 {
				p.topics = union(p.topics, memberList(m, api.MemberTopics))
			}
			p.to = append(p.to, m.ID)
		default:
			p.to = append(p.to, m.ID)
		}
	}
	switch {
	case len(p.to) == 0:
		return nil, fmt.Errorf("member %s knows no other member to send to on %s; run 'cmbs member discover' on %s first", p.from, p.layer, client.Server())
	case (p.layer == api.L31 || p.layer == api.L4) && len(p.providers) == 0:
		return nil, fmt.Errorf("no member %s knows offers a provider, so %s has no destination; give --provider", p.from, p.layer)
	case (p.layer == api.L32 || p.layer == api.L4) && len(p.topics) == 0:
		return nil, fmt.Errorf("no member %s knows subscribes to a topic, so %s has no destination; give --topic", p.from, p.layer)
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	p.run = hex.EncodeToString(id[:])
	return p, nil
}

func memberList(m cli.Member, name string) []string {
	v, _ := m.Attr(name)
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// title marks the run's messages, so a filter finds them.
func (p *benchPlan) title() string { return "cmbs bench " + p.run }

// message is the i-th message of the run (from 0).
func (p *benchPlan) message(i, count int, expires string) *cli.Entity {
	m := api.Message{Layer: p.layer, Executable: true, Sendable: true, Storable: true, Content: p.content,
		Topics: p.topics, Providers: p.providers, Expires: expires, SendOnCreate: true}
	if p.layer == api.L1 {
		m.Receiver = p.receivers[i%len(p.receivers)]
	}
	width := len(strconv.Itoa(count - 1))
	return &cli.Entity{Kind: api.MessageKind, Mixins: []string{p.layer.Mixin()},
		ID: fmt.Sprintf("bench-%s-%0*d", p.run, width, i), Title: p.title(), Attributes: m.Attributes()}
}

// benchRun is one run in progress: what every publisher shares.
type benchRun struct {
	a       *app
	client  *cli.Client
	plan    *benchPlan
	o       *benchOptions
	paths   []string        // by message; "" until accepted
	rtt     []time.Duration // l1: each request's round trip
	next    atomic.Int64    // the next request to send
	accept  atomic.Int64    // messages accepted
	settled atomic.Int64    // messages whose outcome is recorded; -1: unknown
	failMu  sync.Mutex
	failed  error
	// destinations is how many each message has (checkDestinations).
	destinations int
}

// runBench sends the messages, waits for their outcomes and measures.
func (a *app) runBench(ctx context.Context, client *cli.Client, plan *benchPlan, o *benchOptions) (*benchResult, error) {
	r := &benchRun{a: a, client: client, plan: plan, o: o, paths: make([]string, o.count)}
	if plan.layer == api.L1 {
		r.rtt = make([]time.Duration, o.count)
	}
	m := newDeliveryMeter(client, plan.layer)
	m.baseline(ctx)
	if !m.ok {
		r.settled.Store(-1)
	}
	progress := a.startBenchProgress(ctx, o.count, &r.accept, &r.settled)
	defer progress.stop()

	start := time.Now()
	if err := r.publish(ctx); err != nil {
		return nil, err
	}
	sendTime := time.Since(start)
	progress.phase("delivering")
	accepted := int(r.accept.Load())
	outcome, err := r.awaitOutcomes(ctx, m, accepted)
	if err != nil {
		return nil, err
	}
	deliverTime := outcome.at.Sub(start)
	progress.phase("sampling")
	lat, dests, err := r.latencies(ctx)
	if err != nil {
		return nil, err
	}
	progress.stop()
	res := &benchResult{
		Layer: string(plan.layer), Target: plan.target, From: plan.from, To: plan.to,
		Count: o.count, Publishers: o.publishers, Batch: o.batch, Size: o.size, Run: plan.run,
		Requests:       (o.count + o.batch - 1) / o.batch,
		Accepted:       accepted,
		Delivered:      outcome.delivered,
		Undelivered:    accepted - outcome.delivered - outcome.pending,
		Pending:        outcome.pending,
		Destinations:   dests,
		SendSeconds:    sendTime.Seconds(),
		DeliverSeconds: deliverTime.Seconds(),
		Latency:        lat,
	}
	res.rates()
	return res, nil
}

// publish sends every message from o.publishers goroutines, each taking
// the next request to make, and returns once all are answered.
func (r *benchRun) publish(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	requests := (r.o.count + r.o.batch - 1) / r.o.batch
	var wg sync.WaitGroup
	for range min(r.o.publishers, requests) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(r.next.Add(1)) - 1
				if k >= requests || ctx.Err() != nil {
					return
				}
				if err := r.request(ctx, k); err != nil {
					r.fail(err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failed != nil {
		return r.failed
	}
	return ctx.Err()
}

func (r *benchRun) fail(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failed == nil {
		r.failed = err
	}
}

// request makes the k-th create request.
func (r *benchRun) request(ctx context.Context, k int) error {
	from, to := k*r.o.batch, min((k+1)*r.o.batch, r.o.count)
	batch := make([]pending, 0, to-from)
	for i := from; i < to; i++ {
		batch = append(batch, pending{e: r.plan.message(i, r.o.count, r.o.expires)})
	}
	if r.plan.layer == api.L1 {
		return r.requestL1(ctx, from, batch[0].e)
	}
	paths, err := createBatch(ctx, r.client, batch)
	if err != nil {
		return fmt.Errorf("create messages %d–%d: %w", from, to-1, err)
	}
	copy(r.paths[from:to], paths)
	r.accept.Add(int64(len(paths)))
	return nil
}

// requestL1 creates one l1 message under Prefer: wait and times the round
// trip: the answer comes once the reply is recorded.
func (r *benchRun) requestL1(ctx context.Context, i int, e *cli.Entity) error {
	raw, err := jsonBody(map[string][]*cli.Entity{"resources": {e}})
	if err != nil {
		return err
	}
	header := http.Header{"Prefer": {"wait=" + strconv.Itoa(int(r.o.wait/time.Second))}}
	start := time.Now()
	if _, err := r.client.DoHeader(ctx, http.MethodPost, api.MessageLocation, header, raw); err != nil {
		return fmt.Errorf("create message %d: %w", i, err)
	}
	r.rtt[i] = time.Since(start)
	r.paths[i] = api.MessageLocation + e.ID
	r.accept.Add(1)
	return nil
}

// benchOutcome is what the wait for outcomes found.
type benchOutcome struct {
	// at is when every outcome was known recorded.
	at time.Time
	// delivered counts the messages every destination got; pending those
	// still waiting for one when the wait ended.
	delivered, pending int
}
