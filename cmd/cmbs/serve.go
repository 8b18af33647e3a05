package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/cmd/cmbs/ui"
	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/auth"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/lease"
)

// serve runs the OCCI server until ctx is cancelled, then lets in-flight
// requests finish within the shutdown timeout and closes the store.
func (a *app) serve(ctx context.Context, args []string) error {
	cfg, run, err := a.serveConfig(args)
	if err != nil || !run {
		return err
	}
	logger := newLogger(cfg, a.stderr)
	users, err := loadUsers(cfg, logger)
	if err != nil {
		return err
	}

	st, err := openStore(ctx, cfg.Store, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.WithError(err).Error("closing the store")
		}
	}()
	// Probes and metrics (cmd/cmbs/ops): the store is counted from here on.
	operations, err := ops.New(ops.Options{Logger: logger})
	if err != nil {
		return err
	}
	st = operations.WrapStore(st)
	// Leases (store/lease) share the work among servers on one CouchDB
	// database; deferred after the store's Close, so they are released
	// before it closes and after the broker and notifier stop.
	leases, err := startLeases(cfg, st, logger)
	if err != nil {
		return err
	}
	if leases != nil {
		defer func() {
			if err := leases.Close(); err != nil {
				logger.WithError(err).Warn("releasing the leases")
			}
		}()
	}

	srv, err := occi.NewServer(occi.Options{
		Store:                 st,
		Logger:                logger,
		PublicURL:             cfg.PublicURL,
		Strict:                cfg.Strict,
		Aliases:               broker.Aliases(),
		WithInfrastructure:    cfg.WithInfrastructure,
		MaxBodyBytes:          cfg.MaxMessageBytes,
		PageLimit:             cfg.PageLimit,
		MaxPageLimit:          cfg.MaxPageLimit,
		MaxCollectionRequests: cfg.MaxCollectionRequests,
	})
	if err != nil {
		return err
	}
	// Deferred after the store's Close, so it runs before it.
	defer func() {
		if err := srv.Close(); err != nil {
			logger.WithError(err).Error("closing the OCCI server")
		}
	}()
	if err := srv.Init(ctx); err != nil {
		return fmt.Errorf("initialise the store: %w", err)
	}
	// One size limit: an HTTP body, and a layer message.
	bcfg := broker.Config{Store: st, Logger: logger, Metrics: operations.BrokerMetrics(), MaxMessageSize: cfg.MaxMessageBytes, Bind: bindOf(cfg)}
	if leases != nil {
		bcfg.Leases = leases
	}
	if err := memberSecurity(cfg, &bcfg, logger); err != nil {
		return err
	}
	brk, err := broker.New(bcfg)
	if err != nil {
		return err
	}
	// Deferred after the store's Close, so it runs before it: deliveries
	// in flight record their outcome while the store is still open.
	defer func() {
		if err := brk.Close(); err != nil {
			logger.WithError(err).Error("closing the broker")
		}
	}()
	if err := brk.Register(ctx, srv); err != nil {
		return err
	}
	if err := operations.WatchBroker(brk); err != nil {
		return err
	}
	// Events (events.go): subscriptions and GET /events, behind the same
	// authentication as the OCCI interface. Started before the broker and
	// the config act, so stored subscriptions hear what they do.
	events, err := startEvents(ctx, st, srv, brk, leases, logger)
	if err != nil {
		return err
	}
	defer closeEvents(events, brk, logger)
	// End of events.
	if err := brk.Start(ctx); err != nil {
		return fmt.Errorf("restart the local member's layers: %w", err)
	}
	// Config sections (config_cmd.go): providers of the backends section,
	// then the local member of the member section.
	if err := applyConfigSections(ctx, cfg, srv, brk, logger); err != nil {
		return err
	}
	// The MEC life cycle (edge.go): its readiness probe, and its callback
	// ahead of authentication.
	edge, err := newEdge(cfg, brk, operations, logger)
	if err != nil {
		return err
	}
	// The dashboard (cmd/cmbs/ui) is served behind the same authentication
	// as the API, at /ui/, and a browser's GET / is sent there.
	dashboard, err := ui.New()
	if err != nil {
		return err
	}
	handler := dashboard.Handler(withEvents(events, srv.Handler()))
	if users != nil {
		handler = users.Middleware(handler)
	}
	if cfg.TLSClientCA != "" {
		handler = requireClientCert(handler)
	}
	handler = edge.handler(handler)
	// Probes and /metrics answer ahead of authentication (cmd/cmbs/ops).
	handler = operations.Handler(handler)
	return a.listenAndServeWith(ctx, cfg, handler, logger, edge.companion())
}

// startLeases starts the lease keeper of a server on CouchDB, which other
// servers may share (examples/cluster.md); nil on the embedded store,
// which one process owns.
func startLeases(cfg config.Config, st store.Store, logger logrus.FieldLogger) (*lease.Keeper, error) {
	spec, err := config.ParseStore(cfg.Store)
	if err != nil || spec.Backend != config.BackendCouch {
		return nil, err
	}
	id := cfg.InstanceID
	if id == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "cmbs"
		}
		var r [4]byte
		_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
		id = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	k, err := lease.New(lease.Config{Store: st, Holder: id, TTL: cfg.LeaseTTL, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := k.Start(); err != nil {
		return nil, err
	}
	logger.WithFields(logrus.Fields{"instance": id, "lease_ttl": cfg.LeaseTTL}).
		Info("sharing the store: subscriptions and outbox streams are taken under leases")
	return k, nil
}

// bindOf is what the broker's receivers bind, from bind_host and
// bind_sockets.
func bindOf(cfg config.Config) broker.Bind {
	b := broker.Bind{Host: cfg.BindHost}
	if len(cfg.BindSockets) > 0 {
		b.Sockets = map[broker.Layer]string{}
		for l, ep := range cfg.BindSockets {
			b.Sockets[broker.Layer(l)] = ep
		}
	}
	return b
}

// serveConfig reads serve's settings from its flags, CMBS_* variables and
// the config file, and checks them. run is false when the flags asked for
// help, which it has printed.
func (a *app) serveConfig(args []string) (cfg config.Config, run bool, err error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	flags := config.BindFlags(fs)
	xappConfig := fs.String("xapp-config", "", "O-RAN xApp descriptor (config-file.json) whose controls and messaging ports configure the server, instead of --config")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "Usage: cmbs serve [flags]\n\n"+
			"Settings come from defaults, then --config FILE (or --xapp-config FILE), then CMBS_* variables,\n"+
			"then flags; 'cmbs config schema' describes every key. Without --store, data is kept in\n"+
			config.DataDir()+" (the XDG data directory), printed at start.\n\n"+fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, false, nil
		}
		return cfg, false, fmt.Errorf("%w: serve: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	if cfg, err = loadServeConfig(flags, *xappConfig); err != nil {
		return cfg, false, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, true, nil
}

// loadUsers reads the users file when there is one; without it the server
// authenticates nobody, which it warns about.
func loadUsers(cfg config.Config, logger logrus.FieldLogger) (*auth.Users, error) {
	if cfg.UsersFile == "" {
		logger.Warn("authentication is off: no users file (--users, CMBS_USERS_FILE); anyone who reaches the server can change it")
		return nil, nil
	}
	users, err := auth.Load(cfg.UsersFile)
	if err != nil {
		return nil, err
	}
	logger.WithField("users_file", cfg.UsersFile).Info("authentication is on")
	return users, nil
}

func newLogger(cfg config.Config, out io.Writer) *logrus.Logger {
	logger := logrus.New()
	logger.SetOutput(out)
	// Validate has accepted the level already.
	level, _ := logrus.ParseLevel(cfg.LogLevel)
	logger.SetLevel(level)
	if cfg.LogFormat == config.LogFormatJSON {
		logger.SetFormatter(&logrus.JSONFormatter{})
	} else {
		logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return logger
}

// openStore opens the backend a store URL names.
func openStore(ctx context.Context, raw string, logger logrus.FieldLogger) (store.Store, error) {
	spec, err := config.ParseStore(raw)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	switch spec.Backend {
	case config.BackendBolt:
		if err := os.MkdirAll(spec.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		st, err := bolt.Open(spec.BoltPath(), bolt.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		logger.WithField("path", spec.BoltPath()).Info("opened the embedded store")
		return st, nil
	case config.BackendCouch:
		st, err := couch.Open(ctx, spec.URL, couch.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		logger.WithField("url", spec.Redacted()).Info("opened the CouchDB store")
		return st, nil
	default:
		return nil, fmt.Errorf("store: no backend %q", spec.Backend)
	}
}

// listenAndServe serves handler on cfg.HTTP until ctx is cancelled, then
// shuts the HTTP server down gracefully.
func (a *app) listenAndServe(ctx context.Context, cfg config.Config, handler http.Handler, logger *logrus.Logger) error {
	return a.listenAndServeWith(ctx, cfg, handler, logger, nil)
}

// listenAndServeWith is listenAndServe with a companion, when not nil,
// run once the server listens: the server stops when it returns (with its
// error), and when ctx ends first the shutdown waits for it to return.
func (a *app) listenAndServeWith(ctx context.Context, cfg config.Config, handler http.Handler, logger *logrus.Logger,
	companion func(ctx context.Context, addr net.Addr) error) error {
	tc, err := tlsConfig(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tc != nil {
		ln, scheme = tls.NewListener(ln, tc), "https"
	}
	errLog := logger.WriterLevel(logrus.WarnLevel)
	defer func() { _ = errLog.Close() }() // the pipe into the logger; closing it ends its copying goroutine
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(errLog, "http: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.WithFields(logrus.Fields{"addr": ln.Addr().String(), "scheme": scheme}).Info("serving OCCI")
	if a.listening != nil {
		a.listening(ln.Addr())
	}
	// The companion's result: a nil channel, never ready, without one.
	var companionDone chan error
	stopCompanion := func() {}
	if companion != nil {
		companionDone = make(chan error, 1)
		cctx, cancel := context.WithCancel(ctx)
		stopCompanion = cancel
		go func() { companionDone <- companion(cctx, ln.Addr()) }()
	}
	var stopErr error
	select {
	case err := <-served:
		if companion != nil {
			stopCompanion()
			if err := <-companionDone; err != nil {
				logger.WithError(err).Warn("stopping beside a failed server")
			}
		}
		return fmt.Errorf("http: %w", err)
	case stopErr = <-companionDone:
	case <-ctx.Done():
		if companion != nil {
			// The companion sees ctx end too: wait for what it does then.
			stopErr = <-companionDone
		}
	}
	stopCompanion()
	logger.WithField("timeout", cfg.ShutdownTimeout).Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		logger.WithError(serr).Warn("serving stopped with an error during shutdown")
	}
	if err != nil {
		// Requests still running are cut off so the store can close.
		_ = hs.Close() // it reports only the listener's close, which Shutdown already did
		return errors.Join(stopErr, fmt.Errorf("shutdown: requests still running after %v: %w", cfg.ShutdownTimeout, err))
	}
	if stopErr != nil {
		return stopErr
	}
	logger.Info("stopped")
	return nil
}
