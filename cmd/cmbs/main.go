// Command cmbs is the cloud message brokering service.
//
//	cmbs serve [flags]     run the OCCI server (see cmbs serve --help)
//	cmbs passwd USER       print a users-file line for USER
//	cmbs keygen --out DIR  write a member's CURVE key pair (member.key, member.pub)
//	cmbs config check FILE check a config file; cmbs config schema prints its schema
//	cmbs xapp descriptor   print the O-RAN xApp descriptor; cmbs xapp schema its controls schema
//	cmbs version           print the version
//	cmbs health            exit 0 when a running server is ready (Docker HEALTHCHECK)
//	cmbs message|member|subscription|categories|watch|bench|completion
//	                       client commands for a running server (cmbs help client)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; when
// empty the module version from the build info is shown.
var version string

// errUsage marks errors in how cmbs was invoked; they exit with status 2.
var errUsage = errors.New("usage")

const usage = `Usage: cmbs <command> [arguments]

Commands:
  serve         run the OCCI server
  passwd USER   print a users-file line (user:bcrypt-hash) for USER
  keygen        write a member's CURVE key pair (keygen --out DIR)
  config        check a config file (config check FILE), print its schema
  xapp          print the O-RAN SC xApp descriptor (xapp descriptor) or its
                controls schema (xapp schema)
  version       print the version
  health        ask a running server's readiness probe; exit 0 when ready

Client commands (they talk to a running server; 'cmbs help client' lists all):
  message       send, resend, list, show and delete messages
  member        the local member, its layers and the members it knows
  subscription  HTTP callbacks for the server's events
  categories    kinds, mixins and actions of the query interface
  watch         print the server's events as they happen
  bench         measure message throughput and delivery latency (--embedded: in-process)
  completion    shell completion script for bash, zsh or fish

Run 'cmbs <command> --help' for a command's flags and an example.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.As(err, new(*reportedError)):
		// Already written, as JSON under -o json.
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "cmbs:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "cmbs:", err)
		os.Exit(1)
	}
}

// app is one invocation of cmbs: its standard streams and, for tests, a
// hook told the address serve listens on.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	listening      func(net.Addr)
	// terminal, when set, says which streams are terminals in place of
	// isTerminal, so tests see what a terminal would show.
	terminal func(stream any) bool
}

// isTerminal reports whether one of the app's streams is a terminal.
func (a *app) isTerminal(stream any) bool {
	if a.terminal != nil {
		return a.terminal(stream)
	}
	return isTerminal(stream)
}

// run executes the command line args (without the program name) until it
// finishes or, for serve, until ctx is cancelled.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return a.serve(ctx, rest)
	case "passwd":
		return a.passwd(rest)
	case "keygen":
		return a.keygen(rest)
	case "config":
		return a.configCmd(rest)
	case "xapp":
		return a.xappCmd(rest)
	case "health":
		return a.health(ctx, rest)
	case "version", "--version":
		fmt.Fprintln(a.stdout, "cmbs", versionString(), runtime.Version())
		return nil
	case "categories", "member", "members", "message", "watch", "subscription", "subscriptions", "completion", "bench":
		return a.clientCommand(ctx, cmd, rest)
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] == "client" {
			fmt.Fprint(a.stdout, clientUsage())
			return nil
		}
		fmt.Fprint(a.stdout, usage)
		return nil
	default:
		fmt.Fprint(a.stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
