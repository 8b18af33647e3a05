package main

import (
	"github.com/houssem/cmbs/broker/api"

	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

func memberVerbs() []verb {
	layers := strings.Join(cli.Layers(), ", ")
	return []verb{
		{name: "create", summary: "create the server's local member",
			usage: "[flags]", maxArgs: 0,
			about: "Creates a member. The server's own member is local (the default); members on\n" +
				"other hosts are found with 'cmbs member discover' rather than created.\n" +
				"Each layer's socket (--l1 … --l4) is where its receiver binds and what other\n" +
				"members dial. Without any, and with the server on this machine, free ports\n" +
				"on 127.0.0.1 are picked for every layer and printed; a layer left out when\n" +
				"others are given has no socket.",
			example: "  cmbs member create --id member-a --neighbor tcp://10.0.0.7:5010 --topic 'weather.*'\n" +
				"  cmbs member create --id edge-1 --l1 tcp://10.0.0.5:5010 --l2 tcp://10.0.0.5:5020",
			setup: (*app).memberCreate},
		{name: "start", summary: "start layers of the local member",
			usage: "LAYER|all [flags]", minArgs: 1, maxArgs: 1,
			about: "Starts a layer (" + layers + ") of the local member, or all of them: its receiver\n" +
				"binds the layer's socket. 'all' starts only the layers not running yet.",
			example: "  cmbs member start all",
			setup:   func(a *app, c *command) func(context.Context) error { return a.memberLayers(c, "start") }},
		{name: "stop", summary: "stop layers of the local member",
			usage: "LAYER|all [flags]", minArgs: 1, maxArgs: 1,
			about:   "Stops a layer (" + layers + ") of the local member, or all of them: its socket closes.",
			example: "  cmbs member stop l4",
			setup:   func(a *app, c *command) func(context.Context) error { return a.memberLayers(c, "stop") }},
		{name: "discover", summary: "ask the neighbours, learn the members behind them",
			usage: "[flags]", maxArgs: 0,
			about: "Asks the local member's neighbours for their description and, through them,\n" +
				"learns the members further away ('cmbs member list' shows what was found).",
			example: "  cmbs member discover",
			setup:   (*app).memberDiscover},
		{name: "list", aliases: []string{"ls"}, summary: "list the members the server knows",
			usage: "[flags]", maxArgs: 0,
			about:   "Lists the members the server knows: its local member and those discovery found.",
			example: "  cmbs member list -o json",
			setup:   (*app).membersList},
		{name: "show", summary: "a member's attributes, layers and neighbours",
			usage: "[ID] [flags]", maxArgs: 1,
			about:   "Shows a member (the local one without ID): its attributes, the state of its\nlayers and what the last discovery found of each neighbour.",
			example: "  cmbs member show\n  cmbs member show member-b",
			setup:   (*app).memberShow},
		{name: "delete", aliases: []string{"rm"}, summary: "delete members",
			usage: "ID... [flags]", minArgs: 1, maxArgs: -1,
			about: "Deletes members from this server's store: a remote member is forgotten\n" +
				"until the next discovery finds it again.",
			example: "  cmbs member delete member-c",
			setup:   (*app).memberDelete},
	}
}

// membersVerb is "cmbs members", the older spelling of member list.
func membersVerb() verb {
	v := memberVerbs()[4]
	v.name, v.aliases, v.example = "", nil, "  cmbs members"
	return v
}

// memberOptions are member create's flags.
type memberOptions struct {
	id, title, state             string
	sockets                      map[string]*string
	neighbors, topics, providers []string
	local                        bool
}

// memberCreate creates a member from flags.
func (a *app) memberCreate(c *command) func(context.Context) error {
	o := &memberOptions{sockets: map[string]*string{}}
	fs := c.fs
	fs.StringVar(&o.id, "id", "", "member id (the server assigns one when empty)")
	fs.StringVar(&o.title, "title", "", "title")
	for _, l := range cli.Layers() {
		o.sockets[l] = fs.String(l, "", "socket layer "+l+" binds, tcp://host:port (default: a free port, see above)")
	}
	fs.StringSliceVar(&o.neighbors, "neighbor", nil, "L1 socket of a neighbour member (repeatable)")
	fs.StringSliceVar(&o.topics, "topic", nil, "topic the member subscribes to, * and > wildcards allowed (repeatable)")
	fs.StringSliceVar(&o.providers, "provider", nil, "provider the member offers (repeatable)")
	fs.BoolVar(&o.local, "local", true, "the member is the server's own")
	fs.StringVar(&o.state, "state", "active", "state: active, inactive, suspended or failed")
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		picked, err := o.pickSockets(client.Server())
		if err != nil {
			return err
		}
		res, path, err := client.Create(ctx, api.MemberLocation, o.entity())
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		fmt.Fprintf(a.stdout, "created member %s at %s\n", strings.TrimPrefix(path, api.MemberLocation), client.URL(path))
		if picked {
			t := cli.NewTable(a.stdout, "LAYER", "SOCKET")
			for _, l := range cli.Layers() {
				t.Row(l, *o.sockets[l])
			}
			return t.Flush()
		}
		return nil
	}
}

// pickSockets gives every layer a free port on 127.0.0.1 when no socket
// was given; it can only do so for a server on this machine.
func (o *memberOptions) pickSockets(server string) (bool, error) {
	for _, s := range o.sockets {
		if strings.TrimSpace(*s) != "" {
			return false, nil
		}
	}
	u, err := url.Parse(server)
	if err != nil {
		return false, err
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return false, fmt.Errorf("%w: member create: the server at %s is not on this machine, so free ports cannot be picked here: give the sockets with --l1 … --l4", errUsage, host)
	}
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	// Each port is held until all are picked, so no two are the same.
	for _, l := range cli.Layers() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return false, fmt.Errorf("member create: pick a free port for %s: %w", l, err)
		}
		held = append(held, ln)
		*o.sockets[l] = "tcp://" + ln.Addr().String()
	}
	return true, nil
}

// entity is the member the options describe, as the broker's wire
// contract writes it. Layers without a socket get an empty one, so the
// kind's defaults do not fill them in.
func (o *memberOptions) entity() *cli.Entity {
	m := api.Member{Local: o.local, State: o.state, Sockets: map[api.Layer]string{},
		Neighbors: nonNil(o.neighbors), Topics: nonNil(o.topics), Providers: nonNil(o.providers)}
	for _, l := range api.Layers() {
		m.Sockets[l] = strings.TrimSpace(*o.sockets[string(l)])
	}
	return &cli.Entity{Kind: api.MemberKind, Mixins: []string{}, ID: o.id, Title: o.title, Attributes: m.Attributes()}
}

// nonNil keeps an empty list an empty JSON array rather than null.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// layerResult is the server's answer to start_LAYER and stop_LAYER.
type layerResult struct {
	Member   string `json:"member"`
	Action   string `json:"action"`
	Layer    string `json:"layer"`
	Endpoint string `json:"endpoint"`
	State    string `json:"state"`
}

// memberLayers starts or stops one layer, or all of them, on the local
// member. For "all" only the layers that need it are touched, so
// "start all" can be run again safely.
func (a *app) memberLayers(c *command, verb string) func(context.Context) error {
	id := c.fs.String("id", "", "act on this member instead of the local one")
	return func(ctx context.Context) error {
		which := strings.ToLower(c.fs.Arg(0))
		if which != "all" && !cli.IsLayer(which) {
			return fmt.Errorf("%w: member %s: %q is no layer; want %s or all", errUsage, verb, which, strings.Join(cli.Layers(), ", "))
		}
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		m, err := client.LocalMember(ctx, *id)
		if err != nil {
			return err
		}
		changing := layersToChange(m, verb, which)
		results := make([]json.RawMessage, 0, len(changing))
		t := cli.NewTable(a.stdout, "MEMBER", "LAYER", "ENDPOINT", "STATE")
		for _, l := range changing {
			res, err := client.Action(ctx, m.Path, verb+"_"+l)
			if err != nil {
				// What did change is worth showing before the failure.
				if !c.flags.json() && len(results) > 0 {
					_ = t.Flush()
				}
				return fmt.Errorf("%s %s of %s: %w", verb, l, m.ID, err)
			}
			var r layerResult
			if err := res.Decode(&r); err != nil {
				return err
			}
			results = append(results, res.Body)
			t.Row(r.Member, r.Layer, r.Endpoint, r.State)
		}
		if c.flags.json() {
			return cli.WriteValue(a.stdout, results)
		}
		if len(changing) == 0 {
			state := "running"
			if verb == "stop" {
				state = "stopped"
			}
			fmt.Fprintf(a.stdout, "every layer of %s is already %s\n", m.ID, state)
			return nil
		}
		return t.Flush()
	}
}

// layersToChange is which, or for "all" the layers with a socket that
// are not yet in the state verb leads to.
func layersToChange(m cli.Member, verb, which string) []string {
	if which != "all" {
		return []string{which}
	}
	var out []string
	for _, l := range cli.Layers() {
		running := m.LayerState(l) == "running"
		if m.Text(api.Layer(l).SocketAttr()) != "" && running == (verb == "stop") {
			out = append(out, l)
		}
	}
	return out
}

// discoverResult is the server's answer to check_neighbors.
type discoverResult struct {
	Member      string            `json:"member"`
	Discovered  []string          `json:"discovered"`
	Unreachable map[string]string `json:"unreachable"`
}

// memberDiscover runs check_neighbors on the local member.
func (a *app) memberDiscover(c *command) func(context.Context) error {
	id := c.fs.String("id", "", "act on this member instead of the local one")
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		m, err := client.LocalMember(ctx, *id)
		if err != nil {
			return err
		}
		res, err := client.Action(ctx, m.Path, "check_neighbors")
		if err != nil {
			return err
		}
		if c.flags.json() {
			return cli.WriteJSON(a.stdout, res.Body)
		}
		var r discoverResult
		if err := res.Decode(&r); err != nil {
			return err
		}
		t := cli.NewTable(a.stdout, "MEMBER", "DISCOVERED", "UNREACHABLE", "REASON")
		for _, d := range r.Discovered {
			t.Row(r.Member, d, "", "")
		}
		for _, s := range sortedKeys(r.Unreachable) {
			t.Row(r.Member, "", s, r.Unreachable[s])
		}
		if len(r.Discovered)+len(r.Unreachable) == 0 {
			t.Row(r.Member, "", "", "no neighbours")
		}
		return t.Flush()
	}
}

// membersList prints every member the server knows, itself included.
func (a *app) membersList(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		members, err := client.Members(ctx)
		if err != nil {
			return err
		}
		if c.flags.json() {
			doc := map[string][]json.RawMessage{"resources": {}}
			for _, m := range members {
				doc["resources"] = append(doc["resources"], m.Raw)
			}
			return cli.WriteValue(a.stdout, doc)
		}
		t := cli.NewTable(a.stdout, "ID", "LOCAL", "STATE", "L1 SOCKET", "VIA", "DISTANCE", "TOPICS", "PROVIDERS", "LAYERS")
		for _, m := range members {
			distance := m.Text(api.MemberDistance)
			if distance == "" && m.Local() {
				distance = "0"
			}
			t.Row(m.ID, m.Text(api.MemberLocal), m.Text(api.MemberState), m.Text(api.Layer("l1").SocketAttr()),
				m.Text(api.MemberVia), distance, m.Text(api.MemberTopics), m.Text(api.MemberProviders), runningLayers(m))
		}
		return t.Flush()
	}
}

// runningLayers lists a local member's running layers; other members'
// layers run elsewhere, so they show none.
func runningLayers(m cli.Member) string {
	if !m.Local() {
		return ""
	}
	var running []string
	for _, l := range cli.Layers() {
		if m.LayerState(l) == "running" {
			running = append(running, l)
		}
	}
	if len(running) == 0 {
		return "none"
	}
	return strings.Join(running, ",")
}

// memberShow prints one member: its attributes, then its layers and its
// neighbours' states as tables.
func (a *app) memberShow(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := c.flags.client()
		if err != nil {
			return err
		}
		m, err := client.LocalMember(ctx, c.fs.Arg(0))
		if err != nil {
			return err
		}
		if c.flags.json() {
			return writeResource(a.stdout, m.Raw)
		}
		if err := writeAttributes(a.stdout, m.Entity, "cmbs.member", "layers", "neighbors_state"); err != nil {
			return err
		}
		if m.Local() {
			fmt.Fprintln(a.stdout)
			t := cli.NewTable(a.stdout, "LAYER", "SOCKET", "STATE")
			for _, l := range cli.Layers() {
				t.Row(l, m.Text(api.Layer(l).SocketAttr()), m.LayerState(l))
			}
			if err := t.Flush(); err != nil {
				return err
			}
		}
		v, _ := m.Attr(api.MemberNeighborsState)
		states, _ := v.(map[string]any)
		if len(states) == 0 {
			return nil
		}
		fmt.Fprintln(a.stdout)
		t := cli.NewTable(a.stdout, "NEIGHBOUR", "LAST DISCOVERY")
		for _, s := range sortedKeys(states) {
			t.Row(s, cli.Text(states[s]))
		}
		return t.Flush()
	}
}

// memberDelete deletes members by id, path or URL.
func (a *app) memberDelete(c *command) func(context.Context) error {
	return func(ctx context.Context) error {
		return a.deleteEntities(ctx, c, "member", func(ref string) string {
			if strings.Contains(ref, "/") {
				return cli.Path(ref)
			}
			return api.MemberLocation + ref
		})
	}
}
