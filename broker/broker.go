// Package broker makes cmbs a message broker: the member and message kinds,
// their providers (cmbs_member, cmbs_message) and the ZeroMQ layers that
// carry messages between members. Members learn of each other over L1
// (recursive discovery) and deliver messages on L2 (to all), L3.1 (by
// provider), L3.2 (by topic) and L4 (by both), forwarding hop by hop to
// members that are not direct neighbours.
package broker

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

//go:embed categories.json
var categoriesJSON []byte

// Categories returns the broker's kinds, mixins and actions: the ones of the
// original's post_category files, with the attributes cmbs adds (member
// providers, layer and neighbour state, routing; message hop limit and
// delivery outcome).
func Categories() ([]*occi.Category, error) {
	return occi.ParseCategories(categoriesJSON)
}

// Executor runs a message on the member it reached: the hook for
// application handlers. Its result is stored in the message's result and,
// for L1, returned to the sender.
type Executor interface {
	Execute(ctx context.Context, member string, msg *occi.Entity) (any, error)
}

// recordExecutor is the default: it records that the message ran, and
// echoes its content.
type recordExecutor struct{}

func (recordExecutor) Execute(_ context.Context, member string, msg *occi.Entity) (any, error) {
	content, _ := msg.Attr(msgContent)
	return map[string]any{"status": "executed", "member": member,
		"executed_at": time.Now().UTC().Format(time.RFC3339Nano), "content": content}, nil
}

// Config configures a Broker.
type Config struct {
	// Store is where members and messages are kept. Required.
	Store store.Store
	// Logger; logrus's standard logger when nil.
	Logger logrus.FieldLogger
	// Timeout bounds one attempt of a request to a member (default 1s) and
	// Attempts how many are made (default 3) before it is reported failed.
	Timeout  time.Duration
	Attempts int
	// RouteTimeout bounds a delivery forwarded through other members
	// (default 10s); each hop passes on what remains of it.
	RouteTimeout time.Duration
	// Executor runs executable messages; the default records and echoes.
	Executor Executor
	// Metrics counts traffic per layer (see NewMetrics); nil counts nothing.
	Metrics *Metrics
}

// Broker owns the layers' receivers and clients and the deliveries running
// in the background. Start it after registering it; Close stops
// everything it started.
type Broker struct {
	cfg    Config
	st     store.Store
	log    logrus.FieldLogger
	direct *layers.Client
	routed *layers.Client

	mu        sync.Mutex
	receivers map[Layer]*layers.Receiver
	closed    bool
	draining  bool      // set by Drain: no delivery starts any more
	sink      EventSink // see SetEventSink

	// delivering holds the messages being delivered here, so deliveries of
	// one message take turns (see claim).
	dmu        sync.Mutex
	delivering map[string]chan struct{}

	// localAt remembers where the local member was last found, so the
	// lookup on every received message is one read, not a query.
	localAt atomic.Value // string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a broker from cfg.
func New(cfg Config) (*Broker, error) {
	if cfg.Store == nil {
		return nil, errors.New("broker: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.RouteTimeout <= 0 {
		cfg.RouteTimeout = 10 * time.Second
	}
	if cfg.Executor == nil {
		cfg.Executor = recordExecutor{}
	}
	log := cfg.Logger.WithField("component", "broker")
	direct, err := layers.NewClient(layers.ClientConfig{Timeout: cfg.Timeout, Attempts: cfg.Attempts, MaxMessageSize: maxRequestBytes, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	// Forwarded deliveries are not retried end to end: the hops retry
	// among themselves, and a retry from here would only race them.
	routed, err := layers.NewClient(layers.ClientConfig{Timeout: cfg.RouteTimeout, Attempts: 1, MaxMessageSize: maxRequestBytes, Logger: log})
	if err != nil {
		direct.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{cfg: cfg, st: cfg.Store, log: log, direct: direct, routed: routed,
		receivers: map[Layer]*layers.Receiver{}, delivering: map[string]chan struct{}{}, ctx: ctx, cancel: cancel}, nil
}

// Register adds the broker's providers to srv, registers its categories
// and attaches the providers to the member and message kinds when they have
// none, so a fresh server is ready without any request.
func (b *Broker) Register(ctx context.Context, srv *occi.Server) error {
	srv.Providers().Register(MemberProvider, memberProvider{b})
	srv.Providers().Register(MessageProvider, messageProvider{b})
	cats, err := Categories()
	if err != nil {
		return fmt.Errorf("broker: categories: %w", err)
	}
	if err := srv.EnsureCategories(ctx, cats); err != nil {
		return fmt.Errorf("broker: register categories: %w", err)
	}
	for kind, provider := range map[string]string{MemberKind: MemberProvider, MessageKind: MessageProvider} {
		c, err := srv.Category(ctx, kind)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if c.Providers != nil && len(c.Providers.Local) > 0 {
			continue
		}
		if _, err := srv.AttachProviders(ctx, kind, occi.Providers{Local: []string{provider}}); err != nil {
			return fmt.Errorf("broker: attach %s: %w", provider, err)
		}
	}
	return nil
}

// Start restarts the layers the local member had running when the server
// last stopped. A layer that cannot bind is logged and stays recorded as
// running, so the readiness probe reports it; it does not stop the server.
func (b *Broker) Start(ctx context.Context) error {
	local, err := b.localMember(ctx)
	if err != nil || local == nil {
		return err
	}
	states, _ := local.Attr(attrLayers)
	m, _ := states.(map[string]any)
	for _, l := range Layers() {
		if m[string(l)] != stateRunning {
			continue
		}
		if _, err := b.startLayer(ctx, local, l); err != nil {
			b.log.WithError(err).WithField("layer", l).Warn("layer could not be restarted")
		}
	}
	return nil
}

// Close stops every receiver, waits for background deliveries and closes
// the clients.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("broker: already closed")
	}
	b.closed = true
	recvs := b.receivers
	b.receivers = map[Layer]*layers.Receiver{}
	b.mu.Unlock()
	var errs []error
	for l, r := range recvs {
		if err := r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s receiver: %w", l, err))
		}
	}
	b.cancel()
	b.wg.Wait()
	errs = append(errs, b.direct.Close(), b.routed.Close())
	return errors.Join(errs...)
}

// background runs fn on a goroutine the broker waits for on Close.
func (b *Broker) background(fn func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.draining {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn(b.ctx)
	}()
	return true
}

// localMember returns the member marked local, or nil when there is none.
// The remembered location is checked on every call, so a member deleted or
// made non-local is never returned.
func (b *Broker) localMember(ctx context.Context) (*occi.Entity, error) {
	if loc, _ := b.localAt.Load().(string); loc != "" {
		m, err := occi.GetEntity(ctx, b.st, loc)
		if err == nil && flag(m, attrLocal, false) {
			return m, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	members, err := occi.FindEntitiesAt(ctx, b.st, MemberLocation, MemberKind)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if flag(m, attrLocal, false) {
			b.localAt.Store(m.Location)
			return m, nil
		}
	}
	return nil, nil
}

// members returns every non-local member.
func (b *Broker) remoteMembers(ctx context.Context) ([]*occi.Entity, error) {
	members, err := occi.FindEntitiesAt(ctx, b.st, MemberLocation, MemberKind)
	if err != nil {
		return nil, err
	}
	out := members[:0]
	for _, m := range members {
		if !flag(m, attrLocal, false) {
			out = append(out, m)
		}
	}
	return out, nil
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }
