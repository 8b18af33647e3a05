package brokertest

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/bolt"
)

// The broker settings a member gets when Options leave them zero: quick
// discovery attempts keep unreachable neighbours cheap, and short backoffs
// bring a peer's deliveries back soon after it returns.
const (
	DefaultTimeout  = 300 * time.Millisecond
	DefaultAttempts = 2
	DefaultRetryMin = 20 * time.Millisecond
	DefaultRetryMax = 500 * time.Millisecond
)

// Options describe a member Start brings up. The zero value but for ID is
// a member on a bbolt store of its own with every layer running.
type Options struct {
	// ID is the local member's id; it also names the server in failures.
	ID string
	// Neighbors are the members whose l1 sockets the local member lists
	// as neighbours.
	Neighbors []*Member
	// Topics and Providers are the local member's attributes.
	Topics, Providers []string
	// Sockets are the layers' endpoints; a layer missing gets a free
	// loopback port.
	Sockets map[broker.Layer]string
	// Layers are the layers started once the member is created: all when
	// nil, none when empty.
	Layers []broker.Layer
	// NoMember leaves the server without a local member: sockets are
	// reserved, nothing is created or started (see CreateMember and
	// StartLayer), as a freshly served cmbs is.
	NoMember bool

	// Store, when set, is the store the member runs on; it stays the
	// caller's. Otherwise a bbolt store is opened at DBPath (a file in
	// t.TempDir() when empty) with BoltOptions, and closed by Close.
	Store       store.Store
	DBPath      string
	BoltOptions []bolt.Option
	// WrapStore, when set, wraps the store before anything uses it (to
	// instrument or meter it); the wrapper is what Close closes.
	WrapStore func(store.Store) store.Store
	// Logger logs the server's parts; nothing is logged when nil.
	Logger logrus.FieldLogger
	// Strict makes attribute types and patterns binding, as cmbs serve
	// --strict does.
	Strict bool

	// Broker configures the broker; Store and Logger are set by Start,
	// and a zero Timeout, Attempts, RetryMin or RetryMax takes the
	// Default above; heartbeats are off unless HeartbeatInterval is set.
	// The broker is started as cmbs serve starts it: it resumes the
	// outbox and restarts the layers the store records running.
	Broker broker.Config
	// Events, when set, attaches a notifier built from it (Store and a nil
	// Logger filled in): registered on the server, fed by the broker and
	// serving EventsPath, as cmbs serve wires it.
	Events *notify.Config
	// Attach, when set, runs once the broker is registered (and the
	// notifier attached), before the broker starts and HTTP is served: it
	// registers what else the test's server has, e.g. metrics watching
	// m.Broker.
	Attach func(m *Member) error
	// Wrap, when set, wraps the server's handler, as middleware does:
	// authentication, the operations endpoints.
	Wrap func(http.Handler) http.Handler

	// User, Password and HTTP configure the member's Client.
	User, Password string
	HTTP           *http.Client
}

// Member is a cmbs server in the test's process, with a broker whose
// local member has a socket per layer on loopback. It is closed when its
// test ends.
type Member struct {
	*Server
	ID      string
	Broker  *broker.Broker
	Sockets map[broker.Layer]string

	opts        Options
	closeBroker func() error
}

// Start brings up the member opts describe: store, OCCI server with the
// broker's aliases, broker registered, HTTP on loopback, then (unless
// opts.NoMember) the local member created over HTTP and its layers
// started.
func Start(t testing.TB, opts Options) *Member {
	t.Helper()
	ctx := context.Background()
	if opts.Logger == nil {
		opts.Logger = Quiet()
	}
	st := opts.Store
	own := st == nil
	if own {
		path := opts.DBPath
		if path == "" {
			path = filepath.Join(t.TempDir(), "cmbs.db")
		}
		db, err := bolt.Open(path, opts.BoltOptions...)
		if err != nil {
			t.Fatal(err)
		}
		st = db
	}
	if opts.WrapStore != nil {
		st = opts.WrapStore(st)
	}
	srv := occitest.NewServer(t, occitest.ServerOptions{
		Store: st, OwnStore: own,
		OCCI: occi.Options{Logger: opts.Logger, Aliases: broker.Aliases(), Strict: opts.Strict},
		Wrap: opts.Wrap, Name: opts.ID, User: opts.User, Password: opts.Password, HTTP: opts.HTTP,
	})
	m := &Member{Server: &Server{Server: srv}, ID: opts.ID, Sockets: map[broker.Layer]string{}, opts: opts}
	for l, ep := range opts.Sockets {
		m.Sockets[l] = ep
	}
	for _, l := range broker.Layers() {
		if _, ok := m.Sockets[l]; !ok {
			m.Sockets[l] = layertest.FreeEndpoint(t)
		}
	}

	cfg := opts.Broker
	cfg.Store, cfg.Logger = st, opts.Logger
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.HeartbeatInterval == 0 {
		// Off unless a test asks: routes then change only when the test
		// discovers or edits them.
		cfg.HeartbeatInterval = -1
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Added before the notifier, so Close stops the notifier first.
	m.Broker, m.closeBroker = b, m.OnClose("broker", b.Close)
	if err := b.Register(ctx, m.OCCI); err != nil {
		t.Fatal(err)
	}
	if opts.Events != nil {
		m.attachEvents(*opts.Events, opts.Logger, b)
	}
	if opts.Attach != nil {
		if err := opts.Attach(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m.listen()
	if opts.NoMember {
		return m
	}
	m.CreateMember()
	layers := opts.Layers
	if layers == nil {
		layers = broker.Layers()
	}
	for _, l := range layers {
		m.StartLayer(l)
	}
	return m
}

// CreateMember creates the local member Options describe over HTTP: local,
// active, with its sockets, its neighbours' l1 sockets, topics and
// providers.
func (m *Member) CreateMember() {
	m.T.Helper()
	attrs := map[string]any{"local": "true", "state": "active", "topics": m.opts.Topics, "providers": m.opts.Providers}
	for l, ep := range m.Sockets {
		attrs[string(l)+"_socket"] = ep
	}
	var neighbors []string
	for _, n := range m.opts.Neighbors {
		neighbors = append(neighbors, n.Sockets[broker.L1])
	}
	attrs["neighbors_socket"] = neighbors
	m.Must(http.StatusCreated, "POST", broker.MemberLocation, map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": m.ID, "title": "member " + m.ID,
		"attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}})
}

// StartLayer starts layer l of the local member.
func (m *Member) StartLayer(l broker.Layer) {
	m.T.Helper()
	m.Must(http.StatusOK, "POST", broker.MemberLocation+m.ID+"?action=start_"+string(l), map[string]any{})
}

// Discover runs the local member's check_neighbors action and returns its
// answer.
func (m *Member) Discover() map[string]any {
	m.T.Helper()
	return m.Must(http.StatusOK, "POST", broker.MemberLocation+m.ID+"?action=check_neighbors", map[string]any{})
}

// CloseBroker closes the broker (once) ahead of Close.
func (m *Member) CloseBroker() error { return m.closeBroker() }
