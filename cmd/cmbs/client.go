package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	outputTable   = "table"
	outputJSON    = "json"
)

const clientUsage = `Client commands (they talk to a running server):
  categories list               list the kinds, mixins and actions
  categories apply FILE         register categories, or attach providers ("-" reads stdin)
  member create [flags]         create the local member
  member start LAYER|all        start layers of the local member
  member stop LAYER|all         stop layers of the local member
  member discover               ask the neighbours, learn the members behind them
  members                       list the members the server knows
  message send --layer L [...]  create a message and send it
  message show ID               a message, its delivery per destination and result
  watch [filters]               print the server's events as they happen

Every client command takes --server URL (CMBS_SERVER, default ` + defaultServer + `),
--user NAME:PASSWORD (CMBS_USER) and -o table|json.
`

// clientFlags are the connection and output flags of every client command.
type clientFlags struct {
	server  string
	user    string
	output  string
	timeout time.Duration
}

func bindClientFlags(fs *pflag.FlagSet) *clientFlags {
	f := &clientFlags{}
	server := defaultServer
	if v, ok := os.LookupEnv(envServer); ok && v != "" {
		server = v
	}
	fs.StringVar(&f.server, "server", server, "URL of the cmbs server (env "+envServer+")")
	fs.StringVar(&f.user, "user", os.Getenv(envUser), "NAME:PASSWORD for HTTP Basic authentication (env "+envUser+")")
	fs.StringVarP(&f.output, "output", "o", outputTable, "output format: table or json (the server's JSON)")
	fs.DurationVar(&f.timeout, "request-timeout", 30*time.Second, "bound on each HTTP request")
	return f
}

func (f *clientFlags) json() bool { return f.output == outputJSON }

func (f *clientFlags) client() (*cli.Client, error) {
	if f.output != outputTable && f.output != outputJSON {
		return nil, fmt.Errorf("%w: -o %q: want table or json", errUsage, f.output)
	}
	c, err := cli.New(f.server, f.user, &http.Client{Timeout: f.timeout})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// command is one client subcommand's flag set, with the connection flags.
type command struct {
	a     *app
	fs    *pflag.FlagSet
	flags *clientFlags
}

// newCommand starts the flag set of "cmbs NAME"; synopsis follows "Usage:".
func (a *app) newCommand(name, synopsis, about string) *command {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.SortFlags = false
	c := &command{a: a, fs: fs}
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: cmbs %s\n\n%s\n\nFlags:\n%s", synopsis, about, fs.FlagUsages())
	}
	return c
}

// parse reads args after the command's own flags were bound, adding the
// connection flags last so they list after the command's. It reports
// help=true when --help was asked for (the usage is printed then).
func (c *command) parse(args []string, minArgs, maxArgs int) (help bool, err error) {
	c.flags = bindClientFlags(c.fs)
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s: %w", errUsage, c.fs.Name(), err)
	}
	if n := c.fs.NArg(); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		c.fs.Usage()
		return false, fmt.Errorf("%w: %s: wrong number of arguments %q", errUsage, c.fs.Name(), c.fs.Args())
	}
	return false, nil
}

// clientCommand runs the client subcommand name with its arguments.
func (a *app) clientCommand(ctx context.Context, name string, args []string) error {
	sub := func(verbs map[string]func(context.Context, []string) error) error {
		if len(args) == 0 {
			fmt.Fprint(a.stderr, clientUsage)
			return fmt.Errorf("%w: %s needs a subcommand", errUsage, name)
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(a.stdout, clientUsage)
			return nil
		}
		run, ok := verbs[args[0]]
		if !ok {
			fmt.Fprint(a.stderr, clientUsage)
			return fmt.Errorf("%w: unknown command %q", errUsage, name+" "+args[0])
		}
		return run(ctx, args[1:])
	}
	switch name {
	case "categories":
		return sub(map[string]func(context.Context, []string) error{
			"list":  a.categoriesList,
			"apply": a.categoriesApply,
		})
	case "member":
		return sub(map[string]func(context.Context, []string) error{
			"create":   a.memberCreate,
			"start":    func(ctx context.Context, args []string) error { return a.memberLayers(ctx, "start", args) },
			"stop":     func(ctx context.Context, args []string) error { return a.memberLayers(ctx, "stop", args) },
			"discover": a.memberDiscover,
		})
	case "members":
		return a.membersList(ctx, args)
	case "message":
		return sub(map[string]func(context.Context, []string) error{
			"send": a.messageSend,
			"show": a.messageShow,
		})
	case "watch":
		return a.watch(ctx, args)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, name)
}
