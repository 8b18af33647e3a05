package occi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/store"
)

// Options configures a Server.
type Options struct {
	// Store holds categories and entities. Required.
	Store store.Store
	// Logger receives request and provider logs; nothing is logged when
	// nil.
	Logger logrus.FieldLogger
	// PublicURL, when set, is the base of every absolute URL the server
	// answers with; otherwise the request's scheme and host are used.
	PublicURL string
	// Strict makes attribute types and patterns binding (see validator).
	Strict bool
	// Providers maps provider names to backends; NewRegistry when nil.
	Providers *Registry
	// MaxBodyBytes bounds request bodies (the max_message_bytes setting);
	// DefaultMaxBodyBytes when zero. A body declared larger is refused
	// with 413 before any of it is read; a chunked one when it gets there.
	MaxBodyBytes int64
	// PageLimit is how many entries a collection answer lists when the
	// request sets no ?limit=; DefaultPageLimit when zero. MaxPageLimit
	// is the most ?limit= may ask for (larger limits are lowered to it);
	// PageLimit when zero or smaller.
	PageLimit, MaxPageLimit int
	// MaxCollectionRequests is how many requests walking a collection run
	// at once; DefaultCollectionRequests when zero.
	MaxCollectionRequests int
	// Aliases are other spellings of action and attribute names.
	Aliases Aliases
	// WithInfrastructure registers the OCCI 1.1 Infrastructure model
	// (InfrastructureCategories) at Init.
	WithInfrastructure bool
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes       = 10 << 20
	DefaultPageLimit          = 1000
	DefaultCollectionRequests = 4
)

// Server answers the OCCI interface. It owns no goroutines: every request is
// served on the caller's.
type Server struct {
	store     store.Store
	log       logrus.FieldLogger
	providers *Registry
	publicURL *url.URL
	valid     validator
	maxBody   int64
	pages     pageLimits
	aliases   Aliases
	infra     bool
	router    *mux.Router
	// walks holds a token per collection request running (see
	// collectionTurn): its capacity is Options.MaxCollectionRequests.
	walks chan struct{}

	categories categoryCache
	// kindLocks serialise writes of kinds with an Exclusive provider.
	kindLocks sync.Map // kind id → *sync.Mutex
	// builtin holds the ids of the categories the server and its
	// providers registered with EnsureCategories: a client's POST adds
	// attributes to them but keeps their definitions.
	builtin sync.Map // category id → struct{}
	// follow owns the goroutine keeping categories fresh; see Init, Close.
	followMu   sync.Mutex
	stopFollow context.CancelFunc
	followDone chan struct{}
}

// NewServer checks opts and builds the server and its routes.
func NewServer(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("occi: a store is required")
	}
	s := &Server{
		store:     opts.Store,
		log:       opts.Logger,
		providers: opts.Providers,
		valid:     validator{strict: opts.Strict},
		maxBody:   opts.MaxBodyBytes,
		aliases:   opts.Aliases,
		infra:     opts.WithInfrastructure,
	}
	if s.log == nil {
		s.log = discardLogger()
	}
	if s.providers == nil {
		s.providers = NewRegistry(s.log)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.pages = pageLimits{def: opts.PageLimit, max: opts.MaxPageLimit}
	if s.pages.def <= 0 {
		s.pages.def = DefaultPageLimit
	}
	if s.pages.max < s.pages.def {
		s.pages.max = s.pages.def
	}
	walks := opts.MaxCollectionRequests
	if walks <= 0 {
		walks = DefaultCollectionRequests
	}
	s.walks = make(chan struct{}, walks)
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("occi: public URL %q must be an absolute http(s) URL", opts.PublicURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		s.publicURL = u
	}
	s.router = s.routes()
	return s, nil
}

// Store returns the server's store, for providers that write through it.
func (s *Server) Store() store.Store { return s.store }

// Providers returns the server's provider registry.
func (s *Server) Providers() *Registry { return s.providers }

// Handler is the server's HTTP interface.
func (s *Server) Handler() http.Handler { return s.router }

// Init prepares the store: the indexes the server's queries use, the OCCI
// Core kinds and, with Options.WithInfrastructure, the OCCI Infrastructure
// model. It is safe to run on every start: categories already there are
// merged, as a POST on the query interface does.
func (s *Server) Init(ctx context.Context) error {
	if err := s.followCategories(); err != nil {
		return err
	}
	for _, idx := range []store.Index{
		{Name: "cmbs-category-location", Fields: [][]string{{"doc"}, {"location"}}},
		{Name: "cmbs-entity-kind", Fields: [][]string{{"kind"}}},
		{Name: "cmbs-entity-source", Fields: [][]string{{"source"}}},
		{Name: "cmbs-entity-target", Fields: [][]string{{"target"}}},
	} {
		if err := store.EnsureIndex(ctx, s.store, idx); err != nil {
			return fmt.Errorf("occi: index %s: %w", idx.Name, err)
		}
	}
	if err := s.EnsureCategories(ctx, coreCategories()); err != nil {
		return err
	}
	if s.infra {
		if err := s.EnsureCategories(ctx, InfrastructureCategories()); err != nil {
			return fmt.Errorf("occi: infrastructure model: %w", err)
		}
	}
	return nil
}

// followCategories starts the goroutine that empties the category cache
// when another writer changes a category. Without a change feed the server
// works uncached.
func (s *Server) followCategories() error {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if s.stopFollow != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes, err := s.store.Watch(ctx)
	if err != nil {
		cancel()
		s.log.WithError(err).Warn("no change feed: categories are read from the store on every request")
		return nil
	}
	s.stopFollow, s.followDone = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		s.followLoop(ctx, changes)
	}(s.followDone)
	return nil
}

// followLoop follows the change feed until ctx ends. A feed that closes
// (a store drops a subscriber that falls behind) is watched again after a
// pause; meanwhile the cache is bypassed, so it never serves a change it
// missed.
func (s *Server) followLoop(ctx context.Context, changes <-chan store.Change) {
	const pause = 100 * time.Millisecond
	for {
		s.categories.setFollowing(true)
		s.categories.follow(ctx, changes)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			var err error
			if changes, err = s.store.Watch(ctx); err == nil {
				break
			}
			s.log.WithError(err).Warn("category cache: cannot follow the change feed; retrying")
		}
	}
}

// Close stops what Init started. The store stays open: it is the caller's.
func (s *Server) Close() error {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if s.stopFollow == nil {
		return nil
	}
	s.stopFollow()
	<-s.followDone
	s.stopFollow, s.followDone = nil, nil
	return nil
}

// routes declares the whole interface in one place. Everything that is not
// the query interface goes to dispatch, which tells kind and mixin
// locations, entities and plain paths apart by looking them up.
func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.SkipClean(true)
	for _, p := range []string{"/-/", "/.well-known/org/ogf/occi/-/"} {
		r.Handle(p, s.endpoint(map[string]handlerFunc{
			http.MethodGet:    s.getCategories,
			http.MethodPost:   s.postCategories,
			http.MethodPut:    s.putCategories,
			http.MethodDelete: s.deleteCategoriesHandler,
		}))
	}
	r.PathPrefix("/").Handler(s.endpoint(map[string]handlerFunc{
		http.MethodGet:    s.dispatch,
		http.MethodHead:   s.dispatch,
		http.MethodPost:   s.dispatch,
		http.MethodPut:    s.dispatch,
		http.MethodDelete: s.dispatch,
	}))
	return r
}

func coreCategories() []*Category {
	return []*Category{
		{
			Class: ClassKind, Scheme: CoreScheme, Term: "entity", Title: "Entity",
			Attributes: map[string]any{"occi": map[string]any{"core": map[string]any{
				"id":    map[string]any{"type": "string", "mutable": false, "required": false},
				"title": map[string]any{"type": "string", "mutable": true, "required": false},
			}}},
		},
		{
			Class: ClassKind, Scheme: CoreScheme, Term: "resource", Title: "Resource",
			Related: []string{EntityKindID}, Location: "/resource/",
			Attributes: map[string]any{"occi": map[string]any{"core": map[string]any{
				"summary": map[string]any{"type": "string", "mutable": true, "required": false},
			}}},
		},
		{
			Class: ClassKind, Scheme: CoreScheme, Term: "link", Title: "Link",
			Related: []string{EntityKindID}, Location: "/link/",
			Attributes: map[string]any{"occi": map[string]any{"core": map[string]any{
				"source": map[string]any{"type": "string", "mutable": true, "required": false},
				"target": map[string]any{"type": "string", "mutable": true, "required": false},
			}}},
		},
	}
}

// discardLogger is the logger of a server built without one: it drops
// everything, so the package never writes to logrus's global logger behind
// its caller's back.
func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
