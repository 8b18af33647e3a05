package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// Client subcommands speak to a running server. Every one takes the
// connection flags below; their defaults come from the environment so a
// shell can point all of them at one server.
const (
	defaultServer = "http://127.0.0.1:8090"
	envServer     = "CMBS_SERVER"
	envUser       = "CMBS_USER"
	envCACert     = "CMBS_CACERT"
	envCert       = "CMBS_CERT"
	envKey        = "CMBS_KEY"
	outputTable   = "table"
	outputJSON    = "json"
)

// verb is one client command, "cmbs GROUP VERB": how it is called and
// documented, and setup, which binds its flags on c and returns what runs
// once they are parsed.
type verb struct {
	name    string
	aliases []string
	summary string // one line, for the command lists
	usage   string // after "cmbs GROUP VERB"
	about   string
	example string
	// minArgs and maxArgs bound the positional arguments (-1: any).
	minArgs, maxArgs int
	// local verbs talk to no server, so they take no connection flags.
	local bool
	setup func(a *app, c *command) func(context.Context) error
}

// group is "cmbs GROUP": the verbs it has. A group with one verb named ""
// is itself the command (cmbs watch).
type group struct {
	name    string
	aliases []string
	summary string
	verbs   []verb
}

// clientGroups lists every client command, in the order help shows them.
func clientGroups() []group {
	return []group{
		{name: "message", summary: "send, resend, list, show and delete messages", verbs: messageVerbs()},
		{name: "member", summary: "the local member, its layers and the members it knows", verbs: memberVerbs()},
		{name: "members", summary: "list the members the server knows (member list)", verbs: []verb{membersVerb()}},
		{name: "subscription", aliases: []string{"subscriptions"}, summary: "HTTP callbacks for the server's events", verbs: subscriptionVerbs()},
		{name: "categories", summary: "kinds, mixins and actions of the query interface", verbs: categoriesVerbs()},
		{name: "watch", summary: "print the server's events as they happen", verbs: []verb{watchVerb()}},
		{name: "bench", summary: "measure message throughput and delivery latency", verbs: []verb{benchVerb()}},
		{name: "completion", summary: "shell completion script for bash, zsh or fish", verbs: completionVerbs()},
	}
}

// findGroup finds a group by name or alias.
func findGroup(name string) (group, bool) {
	for _, g := range clientGroups() {
		if g.name == name || contains(g.aliases, name) {
			return g, true
		}
	}
	return group{}, false
}

func (g group) find(name string) (verb, bool) {
	for _, v := range g.verbs {
		if v.name == name || contains(v.aliases, name) {
			return v, true
		}
	}
	return verb{}, false
}

// single reports whether the group is one command without verbs.
func (g group) single() bool { return len(g.verbs) == 1 && g.verbs[0].name == "" }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clientUsage lists every client command with its summary.
func clientUsage() string {
	var b strings.Builder
	b.WriteString("Client commands (they talk to a running server):\n")
	for _, g := range clientGroups() {
		if g.single() {
			fmt.Fprintf(&b, "  %-28s %s\n", g.name+" "+firstWord(g.verbs[0].usage), g.verbs[0].summary)
			continue
		}
		for _, v := range g.verbs {
			fmt.Fprintf(&b, "  %-28s %s\n", g.name+" "+v.name+" "+firstWord(v.usage), v.summary)
		}
	}
	b.WriteString("\nEvery client command takes --server URL (" + envServer + ", default " + defaultServer + "),\n" +
		"--user NAME:PASSWORD (" + envUser + ") and -o table|json; for https, --cacert FILE\n" +
		"(" + envCACert + ") or --insecure, and --cert/--key (" + envCert + ", " + envKey + ") when the\n" +
		"server asks for a client certificate. 'cmbs GROUP VERB --help' explains one\n" +
		"with an example.\n")
	return b.String()
}

// groupUsage lists one group's verbs.
func groupUsage(g group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: cmbs %s <command> [flags]\n\n%s.\n\nCommands:\n", g.name, upperFirst(g.summary))
	for _, v := range g.verbs {
		fmt.Fprintf(&b, "  %-32s %s\n", v.name+" "+firstWord(v.usage), v.summary)
	}
	fmt.Fprintf(&b, "\nRun 'cmbs %s <command> --help' for its flags and an example.\n", g.name)
	return b.String()
}

// firstWord is the positional part of a usage line, before its flags.
func firstWord(usage string) string {
	var words []string
	for _, w := range strings.Fields(usage) {
		if w == "[flags]" || strings.HasPrefix(w, "-") {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// clientFlags are the connection and output flags of every client command.
type clientFlags struct {
	server  string
	user    string
	output  string
	timeout time.Duration
	tls     cli.TLS
}

func bindClientFlags(fs *pflag.FlagSet) *clientFlags {
	f := &clientFlags{}
	server := defaultServer
	if v, ok := os.LookupEnv(envServer); ok && v != "" {
		server = v
	}
	fs.StringVar(&f.server, "server", server, "URL of the cmbs server (env "+envServer+")")
	fs.StringVar(&f.user, "user", os.Getenv(envUser), "NAME:PASSWORD for HTTP Basic authentication (env "+envUser+")")
	fs.StringVarP(&f.output, "output", "o", outputTable, "output format: table or json (the server's JSON; errors as JSON too)")
	fs.DurationVar(&f.timeout, "request-timeout", 30*time.Second, "bound on each HTTP request")
	fs.StringVar(&f.tls.CACert, "cacert", os.Getenv(envCACert), "PEM certificate authorities to check an https server with, instead of the system's (env "+envCACert+")")
	fs.BoolVarP(&f.tls.Insecure, "insecure", "k", false, "do not check the https server's certificate")
	fs.StringVar(&f.tls.Cert, "cert", os.Getenv(envCert), "PEM client certificate, for a server that asks for one (env "+envCert+")")
	fs.StringVar(&f.tls.Key, "key", os.Getenv(envKey), "PEM private key of --cert (env "+envKey+")")
	return f
}

func (f *clientFlags) json() bool { return f != nil && f.output == outputJSON }

func (f *clientFlags) client() (*cli.Client, error) {
	if f.output != outputTable && f.output != outputJSON {
		return nil, fmt.Errorf("%w: -o %q: want table or json", errUsage, f.output)
	}
	hc, err := cli.HTTPClient(f.timeout, f.tls)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	c, err := cli.New(f.server, f.user, hc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// command is one client command's flag set, with the connection flags.
type command struct {
	a     *app
	fs    *pflag.FlagSet
	flags *clientFlags
}

// newCommand starts the flag set of the verb v of group g.
func (a *app) newCommand(g group, v verb) *command {
	name := strings.TrimSpace(g.name + " " + v.name)
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.SortFlags = false
	c := &command{a: a, fs: fs}
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: cmbs %s %s\n\n%s\n", name, v.usage, v.about)
		if v.example != "" {
			fmt.Fprintf(a.stderr, "\nExample:\n%s\n", v.example)
		}
		fmt.Fprintf(a.stderr, "\nFlags:\n%s", fs.FlagUsages())
	}
	return c
}

// parse reads args after the command's own flags were bound, adding the
// connection flags last so they list after the command's. It reports
// help=true when --help was asked for (the usage is printed then).
func (c *command) parse(args []string, v verb) (help bool, err error) {
	if !v.local {
		c.flags = bindClientFlags(c.fs)
	}
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s: %w", errUsage, c.fs.Name(), err)
	}
	if n := c.fs.NArg(); n < v.minArgs || (v.maxArgs >= 0 && n > v.maxArgs) {
		c.fs.Usage()
		return false, fmt.Errorf("%w: %s: wrong number of arguments %q", errUsage, c.fs.Name(), c.fs.Args())
	}
	return false, nil
}

// clientCommand runs the client command group name with its arguments.
func (a *app) clientCommand(ctx context.Context, name string, args []string) error {
	g, ok := findGroup(name)
	if !ok {
		return fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	var v verb
	if g.single() {
		v = g.verbs[0]
	} else {
		if len(args) == 0 {
			fmt.Fprint(a.stderr, groupUsage(g))
			return fmt.Errorf("%w: %s needs a command: %s", errUsage, g.name, strings.Join(verbNames(g), ", "))
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(a.stdout, groupUsage(g))
			return nil
		}
		if v, ok = g.find(args[0]); !ok {
			fmt.Fprint(a.stderr, groupUsage(g))
			return fmt.Errorf("%w: unknown command %q", errUsage, g.name+" "+args[0])
		}
		args = args[1:]
	}
	c := a.newCommand(g, v)
	runner := v.setup(a, c)
	if help, err := c.parse(args, v); help || err != nil {
		return c.report(err)
	}
	return c.report(runner(ctx))
}

func verbNames(g group) []string {
	out := make([]string, 0, len(g.verbs))
	for _, v := range g.verbs {
		out = append(out, v.name)
	}
	return out
}

// report passes err on; under -o json it writes it as a JSON object on
// standard error first (the server's problem when it refused), and marks
// it written so main does not print it again.
func (c *command) report(err error) error {
	if err == nil || !c.flags.json() {
		return err
	}
	doc := errorJSON{Error: err.Error()}
	var p *cli.Problem
	if errors.As(err, &p) {
		doc.Problem = p
	}
	if errors.Is(err, errUsage) {
		doc.Usage = true
	}
	raw, merr := json.Marshal(doc)
	if merr != nil {
		return err
	}
	fmt.Fprintf(c.a.stderr, "%s\n", raw)
	return &reportedError{err: err}
}

// errorJSON is how a client command reports a failure under -o json.
type errorJSON struct {
	Error string `json:"error"`
	// Usage is set for mistakes in how the command was called.
	Usage bool `json:"usage,omitempty"`
	// Problem is the server's refusal, as it sent it.
	Problem *cli.Problem `json:"problem,omitempty"`
}

// reportedError is an error already written out; main only sets the exit
// status from it.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// sortedKeys lists a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readInput reads a file argument; "-" reads standard input.
func (a *app) readInput(name string) ([]byte, error) {
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
