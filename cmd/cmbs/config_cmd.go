package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/occi"
)

const configUsage = `Usage: cmbs config <command>

Commands:
  check FILE...   check config files against the schema and the rules of
                  serve, without starting; prints FILE: valid, or each
                  problem as FILE:LINE: key.path: reason
  schema          print the JSON Schema (draft 2020-12) of config files

check reads each file alone: CMBS_* variables and flags are not applied.
`

// errInvalidConfig marks a config check that found problems; they are
// already printed.
var errInvalidConfig = errors.New("invalid configuration")

// configCmd runs `cmbs config check|schema`.
func (a *app) configCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, configUsage)
		return fmt.Errorf("%w: config: no command given", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "check":
		return a.configCheck(rest)
	case "schema":
		if len(rest) > 0 {
			return fmt.Errorf("%w: config schema takes no arguments, got %q", errUsage, rest)
		}
		_, err := a.stdout.Write(config.Schema())
		return err
	case "help", "-h", "--help":
		fmt.Fprint(a.stdout, configUsage)
		return nil
	default:
		fmt.Fprint(a.stderr, configUsage)
		return fmt.Errorf("%w: unknown config command %q", errUsage, cmd)
	}
}

// configCheck checks each file and prints its verdict on stdout; it fails
// when any file is invalid.
func (a *app) configCheck(args []string) error {
	flags := pflag.NewFlagSet("config check", pflag.ContinueOnError)
	flags.SetOutput(a.stderr)
	flags.Usage = func() { fmt.Fprint(a.stderr, configUsage) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: config check: %w", errUsage, err)
	}
	if flags.NArg() == 0 {
		return fmt.Errorf("%w: config check needs a FILE", errUsage)
	}
	var invalid []string
	for _, path := range flags.Args() {
		err := config.CheckFile(path)
		var fe *config.FileError
		var pe *fs.PathError
		switch {
		case err == nil:
			fmt.Fprintf(a.stdout, "%s: valid\n", path)
			continue
		case errors.As(err, &fe):
			for _, p := range fe.Problems {
				fmt.Fprintln(a.stdout, fe.Problem(p))
			}
		case errors.As(err, &pe) && pe.Path == path:
			fmt.Fprintf(a.stdout, "%s: %v\n", path, pe.Err)
		default:
			fmt.Fprintf(a.stdout, "%s: %v\n", path, err)
		}
		invalid = append(invalid, path)
	}
	if len(invalid) > 0 {
		return fmt.Errorf("%w: %s", errInvalidConfig, strings.Join(invalid, ", "))
	}
	return nil
}

// applyConfigSections applies the backends and member sections of cfg to
// a server whose broker is registered and started: providers attached to
// their kinds, then the local member brought up.
func applyConfigSections(ctx context.Context, cfg config.Config, srv *occi.Server, brk *broker.Broker, logger logrus.FieldLogger) error {
	if err := applyBackends(ctx, srv, cfg.Backends, logger); err != nil {
		return err
	}
	if cfg.Member == nil {
		return nil
	}
	if err := brk.EnsureLocalMember(ctx, memberSpec(*cfg.Member)); err != nil {
		return fmt.Errorf("config member: %w", err)
	}
	return nil
}

// applyBackends attaches the providers the backends section names. Unlike
// a PUT of providers, a name no provider is registered under stops the
// start: a config file is checked before anything runs.
func applyBackends(ctx context.Context, srv *occi.Server, backends []config.KindBackends, logger logrus.FieldLogger) error {
	for i, b := range backends {
		for j, name := range b.Local {
			if _, ok := srv.Providers().Lookup(name); !ok {
				return fmt.Errorf("config backends[%d].local[%d]: no provider is called %q; known: %s",
					i, j, name, strings.Join(srv.Providers().Names(), ", "))
			}
		}
		if _, err := srv.AttachProviders(ctx, b.Kind, occi.Providers{Local: b.Local, Remote: b.Remote}); err != nil {
			return fmt.Errorf("config backends[%d]: %s: %w", i, b.Kind, err)
		}
		logger.WithFields(logrus.Fields{"kind": b.Kind, "local": b.Local, "remote": b.Remote}).Info("providers attached from the configuration")
	}
	return nil
}

// memberSpec converts the member section into what the broker ensures.
func memberSpec(m config.Member) broker.LocalMemberSpec {
	spec := broker.LocalMemberSpec{
		ID: m.ID, Title: m.Title, Summary: m.Summary,
		Sockets:   map[broker.Layer]string{},
		Neighbors: m.Neighbors, Topics: m.Topics, Providers: m.Providers,
		Discover: m.Discover,
	}
	for l, ep := range m.Sockets {
		spec.Sockets[broker.Layer(l)] = ep
	}
	for _, l := range m.Start {
		spec.Start = append(spec.Start, broker.Layer(l))
	}
	return spec
}
