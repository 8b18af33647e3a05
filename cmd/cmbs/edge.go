package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/cmd/cmbs/mec"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/cmd/cmbs/xapp"
	"github.com/houssem/cmbs/config"
)

// loadServeConfig assembles serve's configuration: from --config, or from
// the controls and messaging ports of the xApp descriptor at xappPath,
// then CMBS_* variables and flags either way.
func loadServeConfig(flags *config.Flags, xappPath string) (config.Config, error) {
	if xappPath == "" {
		return flags.Load()
	}
	if flags.ConfigPath() != "" {
		return config.Config{}, fmt.Errorf("%w: serve: --config and --xapp-config both give the configuration; use one", errUsage)
	}
	base, err := xapp.ReadConfig(xappPath)
	if err != nil {
		return config.Config{}, err
	}
	return flags.LoadOver(base)
}

// edge is what running at the network edge adds to serve: the MEC
// application life cycle when the mec section is on.
type edge struct {
	lifecycle *mec.Lifecycle
}

// newEdge prepares the MEC life cycle, its readiness probe and callback;
// call it before operations.Handler, which fixes the probes.
func newEdge(cfg config.Config, brk *broker.Broker, operations *ops.Ops, logger logrus.FieldLogger) (*edge, error) {
	if !cfg.MEC.Enabled() {
		return &edge{}, nil
	}
	lc, err := mec.New(mec.Options{Config: cfg, Version: xapp.SemVer(versionString()), Drainer: brk, Logger: logger})
	if err != nil {
		return nil, err
	}
	operations.AddProbe(lc.Probe())
	return &edge{lifecycle: lc}, nil
}

// handler serves the MEC callback ahead of next (and of authentication).
func (e *edge) handler(next http.Handler) http.Handler {
	if e.lifecycle == nil {
		return next
	}
	return e.lifecycle.Handler(next)
}

// companion is what listenAndServe runs beside the server: the life
// cycle, or nothing.
func (e *edge) companion() func(ctx context.Context, addr net.Addr) error {
	if e.lifecycle == nil {
		return nil
	}
	return e.lifecycle.Run
}
