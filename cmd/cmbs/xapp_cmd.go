package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/cmd/cmbs/xapp"
	"github.com/houssem/cmbs/config"
)

const xappUsage = `Usage: cmbs xapp <command>

Commands:
  descriptor [--config FILE] [--image REGISTRY/NAME:TAG] [--name NAME]
                  print the O-RAN SC xApp descriptor (config-file.json) of
                  cmbs: its container, probes, messaging ports, metrics
                  and, as controls, the configuration of FILE
  schema          print the schema of the controls section (schema.json)

Onboard both with the xApp onboarder; the container runs
cmbs serve --xapp-config ` + xapp.ConfigPath + `.
`

// xappCmd runs `cmbs xapp descriptor|schema`.
func (a *app) xappCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, xappUsage)
		return fmt.Errorf("%w: xapp: no command given", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "descriptor":
		return a.xappDescriptor(rest)
	case "schema":
		if len(rest) > 0 {
			return fmt.Errorf("%w: xapp schema takes no arguments, got %q", errUsage, rest)
		}
		_, err := a.stdout.Write(xapp.Schema())
		return err
	case "help", "-h", "--help":
		fmt.Fprint(a.stdout, xappUsage)
		return nil
	default:
		fmt.Fprint(a.stderr, xappUsage)
		return fmt.Errorf("%w: unknown xapp command %q", errUsage, cmd)
	}
}

// xappDescriptor prints the descriptor; notes about what it left out go
// to stderr.
func (a *app) xappDescriptor(args []string) error {
	fs := pflag.NewFlagSet("xapp descriptor", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	path := fs.String("config", "", "configuration file (YAML or JSON) that becomes the controls; none: the defaults")
	image := fs.String("image", "", "container image REGISTRY/NAME[:TAG] (default "+xapp.DefaultImage+":VERSION)")
	name := fs.String("name", xapp.Name, "xapp_name and container name")
	fs.Usage = func() { fmt.Fprint(a.stderr, xappUsage+"\n"+fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: xapp descriptor: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: xapp descriptor takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		// The file alone, as config check reads it: the environment of
		// the machine writing the descriptor is not the container's.
		if cfg, err = config.LoadSection(*path, ""); err != nil {
			return err
		}
	}
	d, notes, err := xapp.New(xapp.Options{Config: cfg, Name: *name, Image: *image, Version: versionString()})
	if err != nil {
		return fmt.Errorf("xapp descriptor: %w", err)
	}
	out, err := d.JSON()
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(a.stderr, "cmbs xapp descriptor: note:", n)
	}
	_, err = a.stdout.Write(out)
	return err
}
