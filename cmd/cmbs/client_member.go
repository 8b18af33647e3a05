package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// memberCreate creates a member from flags, with the original's default
// sockets so a first member needs no more than its neighbours.
func (a *app) memberCreate(ctx context.Context, args []string) error {
	c := a.newCommand("member create", "member create [flags]",
		"Creates a member. The server's own member is local (the default); members on\n"+
			"other hosts are found with 'cmbs member discover' rather than created.")
	fs := c.fs
	id := fs.String("id", "", "member id (the server assigns one when empty)")
	title := fs.String("title", "", "title")
	sockets := map[string]*string{}
	for _, l := range []struct{ name, def string }{
		{"l1", "tcp://127.0.0.1:5010"}, {"l2", "tcp://127.0.0.1:5020"}, {"l31", "tcp://127.0.0.1:5031"},
		{"l32", "tcp://127.0.0.1:5032"}, {"l4", "tcp://127.0.0.1:5040"},
	} {
		sockets[l.name] = fs.String(l.name, l.def, "socket layer "+l.name+" binds (empty: none)")
	}
	neighbors := fs.StringSlice("neighbor", nil, "L1 socket of a neighbour member (repeatable)")
	topics := fs.StringSlice("topic", nil, "topic the member subscribes to, * and # wildcards allowed (repeatable)")
	providers := fs.StringSlice("provider", nil, "provider the member offers (repeatable)")
	local := fs.Bool("local", true, "the member is the server's own")
	state := fs.String("state", "active", "state: active, inactive, suspended or failed")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
	client, err := c.flags.client()
	if err != nil {
		return err
	}
	attrs := map[string]any{
		"state":            *state,
		"local":            fmt.Sprint(*local),
		"neighbors_socket": nonNil(*neighbors),
		"topics":           nonNil(*topics),
		"providers":        nonNil(*providers),
	}
	for _, l := range cli.Layers() {
		if s := strings.TrimSpace(*sockets[l]); s != "" {
			attrs[l+"_socket"] = s
		}
	}
	e := &cli.Entity{Kind: cli.MemberKind, Mixins: []string{}, ID: *id, Title: *title,
		Attributes: map[string]any{"cmbs": map[string]any{"member": attrs}}}
	res, path, err := client.Create(ctx, cli.MemberLocation, e)
	if err != nil {
		return err
	}
	if c.flags.json() {
		return cli.WriteJSON(a.stdout, res.Body)
	}
	fmt.Fprintf(a.stdout, "created member %s at %s\n", strings.TrimPrefix(path, cli.MemberLocation), client.URL(path))
	return nil
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
func (a *app) memberLayers(ctx context.Context, verb string, args []string) error {
	c := a.newCommand("member "+verb, "member "+verb+" LAYER|all [flags]",
		strings.ToUpper(verb[:1])+verb[1:]+"s a layer ("+strings.Join(cli.Layers(), ", ")+") of the local member, or all of them.")
	id := c.fs.String("id", "", "act on this member instead of the local one")
	if help, err := c.parse(args, 1, 1); help || err != nil {
		return err
	}
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
	layersToChange := []string{which}
	if which == "all" {
		layersToChange = nil
		for _, l := range cli.Layers() {
			running := m.LayerState(l) == "running"
			if m.Text(cli.SocketAttr(l)) != "" && running == (verb == "stop") {
				layersToChange = append(layersToChange, l)
			}
		}
	}
	results := make([]json.RawMessage, 0, len(layersToChange))
	t := cli.NewTable(a.stdout, "MEMBER", "LAYER", "ENDPOINT", "STATE")
	for _, l := range layersToChange {
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
	if len(layersToChange) == 0 {
		state := "running"
		if verb == "stop" {
			state = "stopped"
		}
		fmt.Fprintf(a.stdout, "every layer of %s is already %s\n", m.ID, state)
		return nil
	}
	return t.Flush()
}

// discoverResult is the server's answer to check_neighbors.
type discoverResult struct {
	Member      string            `json:"member"`
	Discovered  []string          `json:"discovered"`
	Unreachable map[string]string `json:"unreachable"`
}

// memberDiscover runs check_neighbors on the local member.
func (a *app) memberDiscover(ctx context.Context, args []string) error {
	c := a.newCommand("member discover", "member discover [flags]",
		"Asks the local member's neighbours for their description and, through them,\n"+
			"learns the members further away ('cmbs members' shows what was found).")
	id := c.fs.String("id", "", "act on this member instead of the local one")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
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
	sockets := make([]string, 0, len(r.Unreachable))
	for s := range r.Unreachable {
		sockets = append(sockets, s)
	}
	sort.Strings(sockets)
	for _, d := range r.Discovered {
		t.Row(r.Member, d, "", "")
	}
	for _, s := range sockets {
		t.Row(r.Member, "", s, r.Unreachable[s])
	}
	if len(r.Discovered)+len(sockets) == 0 {
		t.Row(r.Member, "", "", "no neighbours")
	}
	return t.Flush()
}

// membersList prints every member the server knows, itself included.
func (a *app) membersList(ctx context.Context, args []string) error {
	c := a.newCommand("members", "members [flags]",
		"Lists the members the server knows: its local member and those discovery found.")
	if help, err := c.parse(args, 0, 0); help || err != nil {
		return err
	}
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
		distance := m.Text(cli.AttrDistance)
		if distance == "" && m.Local() {
			distance = "0"
		}
		t.Row(m.ID, m.Text(cli.AttrLocal), m.Text(cli.AttrState), m.Text(cli.SocketAttr("l1")),
			m.Text(cli.AttrVia), distance, m.Text(cli.AttrTopics), m.Text(cli.AttrProviders), runningLayers(m))
	}
	return t.Flush()
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
