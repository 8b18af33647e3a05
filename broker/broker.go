package broker

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Config configures a Broker. Zero values select the defaults.
type Config struct {
	// Store is where members, messages and the outbox are kept. Required.
	Store store.Store
	// Logger receives the broker's logs; nil discards them.
	Logger logrus.FieldLogger
	// Timeout bounds one attempt of a discovery request (default 1s) and
	// Attempts how many are made (default 3).
	Timeout  time.Duration
	Attempts int
	// Window bounds the entries in flight to one peer on one layer
	// (default 256), sent in batches of at most Batch (default 64).
	Window int
	Batch  int
	// AckTimeout is how long a peer may leave a batch unanswered before
	// the connection counts as broken and the batch is sent again
	// (default 10s).
	AckTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to reach a
	// peer (defaults 100ms and 30s).
	RetryMin, RetryMax time.Duration
	// Expiry is how long a message that sets no cmbs.message.expires is
	// retried (default 24h).
	Expiry time.Duration
	// MaxWait caps the wait a client may ask for with Prefer: wait
	// (default 30s).
	MaxWait time.Duration
	// MaxMessageSize bounds what one layer request, or one reply, may
	// hold (default DefaultMaxMessageSize): a peer announcing a larger
	// frame is cut off before it is read, a send that cannot fit is
	// refused with 413, and deliveries are batched within it (see
	// limits.go).
	MaxMessageSize int64
	// HeartbeatInterval is how often the local member exchanges with its
	// direct neighbours (default 1s); a neighbour silent for three is
	// down. DiscoveryInterval is how often a full check_neighbors runs
	// (default 30s), and ForgetAfter how long a member without a route is
	// kept (default 24h). A negative HeartbeatInterval turns liveness off:
	// routes then change only with check_neighbors.
	HeartbeatInterval time.Duration
	DiscoveryInterval time.Duration
	ForgetAfter       time.Duration
	// Bind says what the layers' receivers bind when that is not the
	// local member's sockets themselves (see Bind).
	Bind Bind
	// Leases, when set, decide which of several servers sharing one store
	// delivers each stream of the outbox: a deliverer works only while its
	// server holds the stream's lease (see Leases). Nil: this server
	// delivers every stream, as a server alone on its store does.
	Leases Leases
	// Executor runs executable messages; the default records and echoes.
	Executor Executor
	// Metrics counts traffic per layer (see NewMetrics); nil counts nothing.
	Metrics *Metrics

	// Keys is this member's long-term CURVE key pair. Its public key is
	// the local member's cmbs.member.public_key, exchanged in discovery.
	// Nil leaves the member without a key, which only plain mode allows.
	Keys *layers.KeyPair
	// Curve secures every layer socket with CURVE (see security.go):
	// receivers admit only the keys Trust lists (any key with
	// TrustOnFirstUse), a request speaks only for the member whose key
	// sent it, and the broker's clients dial each peer at its key. False
	// is plain ZeroMQ, where whoever reaches a socket is heard.
	Curve bool
	// Trust lists the keys admitted with Curve.
	Trust Trust
	// TrustOnFirstUse admits, with Curve, any key: the first member a key
	// speaks for is bound to it, and from then on only that key speaks for
	// that member.
	TrustOnFirstUse bool
}

// Leases share work among servers running one member on one store (a
// CouchDB database behind a load balancer): a lease is held by one server
// at a time, renewed while it lives and taken over when it stops.
type Leases interface {
	// Acquire reports whether this server holds the lease called name,
	// taking it when it is free or expired. A held lease is renewed by the
	// implementation until Release or until the server stops.
	Acquire(ctx context.Context, name string) (bool, error)
	// Release gives up the lease called name, if held.
	Release(ctx context.Context, name string) error
}

// Defaults of Config.
const (
	DefaultWindow     = 256
	DefaultBatch      = 64
	DefaultAckTimeout = 10 * time.Second
	DefaultRetryMin   = 100 * time.Millisecond
	DefaultRetryMax   = 30 * time.Second
	DefaultExpiry     = 24 * time.Hour
	DefaultMaxWait    = 30 * time.Second
)

func (c *Config) applyDefaults() {
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	setDefault(&c.Timeout, time.Second)
	setDefault(&c.Attempts, 3)
	setDefault(&c.Window, DefaultWindow)
	setDefault(&c.Batch, DefaultBatch)
	setDefault(&c.AckTimeout, DefaultAckTimeout)
	setDefault(&c.RetryMin, DefaultRetryMin)
	setDefault(&c.RetryMax, DefaultRetryMax)
	setDefault(&c.Expiry, DefaultExpiry)
	setDefault(&c.MaxWait, DefaultMaxWait)
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	setDefault(&c.DiscoveryInterval, DefaultDiscoveryInterval)
	setDefault(&c.ForgetAfter, DefaultForgetAfter)
	if c.Executor == nil {
		c.Executor = recordExecutor{}
	}
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Broker owns the layers' receivers, the deliverers draining the outbox,
// the recorder of outcomes and the clients they use. Start it after
// registering it; Close stops everything it started.
type Broker struct {
	cfg    Config
	st     store.Store
	log    logrus.FieldLogger
	direct *layers.Client
	// beats is the client of heartbeats: one attempt each, as long as an
	// interval, since the next beat is the retry.
	beats  *layers.Client
	table  *memberTable
	routes *routeTable
	live   *liveness
	rec    *recorder
	keys   keygen
	waits  waiters
	// sessions are the deliver sessions peers opened with this member.
	sessions sessions
	// refusals spaces out the warnings about refused peers.
	refusals refusalLog

	mu         sync.Mutex
	receivers  map[Layer]*layers.Receiver
	deliverers map[streamKey]*deliverer
	started    bool
	closed     bool
	sink       EventSink // see SetEventSink

	// draining refuses new sends (see Drain).
	draining atomic.Bool

	// delivering holds the messages being taken here, so copies of one
	// message take turns (see claim).
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
	if err := cfg.Bind.Check(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if err := cfg.checkSecurity(); err != nil {
		return nil, err
	}
	log := cfg.Logger.WithField("component", "broker")
	// Requests are cut to fit MaxMessageSize (limits.go); a reply may
	// hold somewhat more, as it repeats what ran (an executed message's
	// result), so the client allows twice as much before it drops one.
	ccfg := layers.ClientConfig{Timeout: cfg.Timeout, Attempts: cfg.Attempts, MaxMessageSize: 2 * cfg.MaxMessageSize, Logger: log}
	if cfg.Curve {
		ccfg.Curve = cfg.Keys
	}
	direct, err := layers.NewClient(ccfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	beatTimeout := cfg.HeartbeatInterval
	if beatTimeout <= 0 {
		beatTimeout = cfg.Timeout
	}
	bcfg := ccfg
	bcfg.Timeout, bcfg.Attempts = beatTimeout, 1
	beats, err := layers.NewClient(bcfg)
	if err != nil {
		_ = direct.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{cfg: cfg, st: cfg.Store, log: log, direct: direct, beats: beats,
		routes: newRouteTable(""), live: newLiveness(),
		table:     &memberTable{st: cfg.Store, log: log},
		receivers: map[Layer]*layers.Receiver{}, deliverers: map[streamKey]*deliverer{},
		delivering: map[string]chan struct{}{}, ctx: ctx, cancel: cancel}
	b.rec = newRecorder(b)
	return b, nil
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

// Start resumes the work the broker had when the server last stopped: it
// follows member changes, starts the recorder, hands every pending outbox
// entry and receipt back to its deliverer or to the recorder, and restarts
// the layers the local member had running. A layer that cannot bind is
// logged and stays recorded as running, so the readiness probe reports
// it; it does not stop the server.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.closed || b.started {
		b.mu.Unlock()
		return errors.New("broker: already started or closed")
	}
	b.started = true
	b.mu.Unlock()
	b.background(b.table.follow)
	b.background(b.rec.run)
	b.background(b.pruneSeen)
	if b.cfg.HeartbeatInterval > 0 {
		b.background(b.heartbeat)
	}
	b.startShared()
	if err := b.resume(ctx); err != nil {
		return err
	}
	local, err := b.localMember(ctx)
	if err != nil || local == nil {
		return err
	}
	if b.selfDiffers(local) {
		// The server's key or size limit is new, or changed since the
		// member was stored: the member published is what this server is.
		if local, err = occi.UpdateEntity(ctx, b.st, local.Location, func(e *occi.Entity) error {
			b.markSelf(e)
			return nil
		}); err != nil {
			return fmt.Errorf("broker: record the local member's key and size limit: %w", err)
		}
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

// resume starts a deliverer for every stream with pending entries, and
// hands the receipts not folded in yet to the recorder.
func (b *Broker) resume(ctx context.Context) error {
	streams, err := b.pendingStreams(ctx)
	if err != nil {
		return fmt.Errorf("broker: resume: %w", err)
	}
	for _, k := range streams {
		b.deliverer(k).poke()
	}
	if len(streams) > 0 {
		b.log.WithField("streams", len(streams)).Info("resuming the deliveries of the outbox")
	}
	after := ""
	for {
		docs, err := b.st.Scan(ctx, receiptPrefix, after, 1000)
		if err != nil {
			return fmt.Errorf("broker: resume receipts: %w", err)
		}
		if len(docs) == 0 {
			return nil
		}
		for _, d := range docs {
			var rd receiptDoc
			if err := json.Unmarshal(d.Body, &rd); err != nil {
				b.log.WithError(err).WithField("id", d.ID).Error("skipping an unreadable receipt")
				continue
			}
			b.rec.add(outcome{receipt: &store.Doc{ID: d.ID, Rev: d.Rev}, message: rd.Message, layer: rd.Layer, results: []destResult{rd.Result}})
		}
		after = docs[len(docs)-1].ID
	}
}

// deliverer returns the deliverer of stream k, starting it if needed.
func (b *Broker) deliverer(k streamKey) *deliverer {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.deliverers[k]; ok {
		return d
	}
	d := newDeliverer(b, k)
	b.deliverers[k] = d
	if !b.closed {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			d.run(b.ctx)
		}()
	}
	return d
}

// peerStatus is the state of stream k's deliverer, when there is one.
func (b *Broker) peerStatus(k streamKey) (peerState, bool) {
	b.mu.Lock()
	d, ok := b.deliverers[k]
	b.mu.Unlock()
	if !ok {
		return peerState{}, false
	}
	return d.status(), true
}

// enqueue hands committed entries to their deliverers.
func (b *Broker) enqueue(entries []*entry) {
	byStream := map[streamKey][]*entry{}
	var order []streamKey
	for _, e := range entries {
		k := e.stream()
		if _, ok := byStream[k]; !ok {
			order = append(order, k)
		}
		byStream[k] = append(byStream[k], e)
	}
	for _, k := range order {
		b.deliverer(k).offer(byStream[k]...)
	}
}

// Close stops every receiver, the deliverers and the recorder (which
// records what it holds first), and closes the clients. Entries not
// delivered stay in the outbox for the next start.
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
	errs = append(errs, b.direct.Close(), b.beats.Close())
	return errors.Join(errs...)
}

// Drain prepares a graceful termination: from its call on, a send answers
// 503, while the outbox keeps being delivered. It returns nil once every
// entry is settled and recorded, or ctx's error when ctx ends first; what
// is left stays in the outbox, delivered at the next start. The receivers
// keep serving until Close. A broker never accepts sends again after it.
func (b *Broker) Drain(ctx context.Context) error {
	b.draining.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b.drained() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: outbox not drained: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// drained reports whether no delivery or outcome is pending in memory.
func (b *Broker) drained() bool {
	b.mu.Lock()
	ds := make([]*deliverer, 0, len(b.deliverers))
	for _, d := range b.deliverers {
		ds = append(ds, d)
	}
	b.mu.Unlock()
	for _, d := range ds {
		if !d.idle() {
			return false
		}
	}
	return b.rec.idle()
}

// background runs fn on a goroutine the broker waits for on Close.
func (b *Broker) background(fn func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
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
