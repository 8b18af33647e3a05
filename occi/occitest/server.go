package occitest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// ServerOptions describe a plain OCCI server.
type ServerOptions struct {
	// Store holds the categories and entities. Required. Unless OwnStore
	// is set it stays the caller's: Close leaves it open, so servers can
	// share one.
	Store store.Store
	// OwnStore hands Store to the server: Close closes it, last.
	OwnStore bool
	// OCCI configures the server; its Store is Store, and a nil Logger
	// logs nothing.
	OCCI occi.Options
	// Wrap, when set, wraps the served handler, as middleware does:
	// authentication, the operations endpoints.
	Wrap func(http.Handler) http.Handler
	// Name names the server in failure messages (none when empty).
	Name string
	// User, Password and HTTP configure the server's Client.
	User, Password string
	HTTP           *http.Client
}

// Server is an OCCI server served over HTTP on loopback, closed when its
// test ends. Its embedded Client speaks to it.
type Server struct {
	*Client
	OCCI  *occi.Server
	Store store.Store

	wrap   func(http.Handler) http.Handler
	http   *closer
	extras []*closer // closed after http, latest first
	occi   *closer
	store  *closer
}

// closer is one thing a server closes, once, remembering the outcome.
type closer struct {
	name  string
	close func() error
	once  sync.Once
	err   error
}

func (c *closer) shut() error {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		if err := c.close(); err != nil {
			c.err = fmt.Errorf("close %s: %w", c.name, err)
		}
	})
	return c.err
}

// Serve brings up a plain OCCI server on opts.Store and serves it.
func Serve(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	s := NewServer(t, opts)
	s.Listen(nil)
	return s
}

// NewServer creates and initialises the OCCI server opts describe without
// serving it yet, so that a harness can register more on s.OCCI (and
// OnClose what it started) before Listen. Close runs when t ends and fails
// t when a part does not close cleanly.
func NewServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	s := &Server{
		Client: &Client{T: t, Name: opts.Name, User: opts.User, Password: opts.Password, HTTP: opts.HTTP},
		Store:  opts.Store,
		wrap:   opts.Wrap,
	}
	if opts.OwnStore && opts.Store != nil {
		s.store = &closer{name: "store", close: opts.Store.Close}
	}
	// Registered before anything can fail, so an owned store is closed
	// even when the OCCI server does not come up.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: %v", s.label(), err)
		}
	})
	o := opts.OCCI
	o.Store = opts.Store
	if o.Logger == nil {
		o.Logger = Quiet()
	}
	srv, err := occi.NewServer(o)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	s.OCCI, s.occi = srv, &closer{name: "OCCI server", close: srv.Close}
	if err := srv.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return s
}

func (s *Server) label() string {
	if s.Name == "" {
		return "test server"
	}
	return "test server " + s.Name
}

// Listen serves handler (s.OCCI's own when nil), wrapped in the options'
// Wrap, over HTTP on loopback, and points the Client at it. A server
// listens once.
func (s *Server) Listen(handler http.Handler) {
	s.T.Helper()
	if s.http != nil {
		s.T.Fatalf("%s: Listen called twice", s.label())
	}
	if handler == nil {
		handler = s.OCCI.Handler()
	}
	if s.wrap != nil {
		handler = s.wrap(handler)
	}
	hs := httptest.NewServer(handler)
	s.URL, s.http = hs.URL, &closer{name: "HTTP server", close: func() error { hs.Close(); return nil }}
}

// OnClose adds a part for Close to stop once HTTP has stopped and before
// the OCCI server closes; parts added later close first, as t.Cleanup
// runs them. Add parts from the test's goroutine, before the server is
// shared with others. The function returned closes the part ahead of Close, once,
// and returns what went wrong.
func (s *Server) OnClose(name string, close func() error) func() error {
	c := &closer{name: name, close: close}
	s.extras = append(s.extras, c)
	return c.shut
}

// Close stops the server as serve does on its way out: HTTP first, then
// the parts added with OnClose, the OCCI server and the store when it owns
// it. Each part closes once, so Close can be called again, and after
// CloseStore and the like; it returns what went wrong the first time.
func (s *Server) Close() error {
	order := []*closer{s.http}
	for i := len(s.extras) - 1; i >= 0; i-- {
		order = append(order, s.extras[i])
	}
	order = append(order, s.occi, s.store)
	var errs []error
	for _, c := range order {
		errs = append(errs, c.shut())
	}
	return errors.Join(errs...)
}

// CloseStore closes the store ahead of Close, when the server owns it; a
// store the test passed in is the test's to close.
func (s *Server) CloseStore() error {
	if s.store == nil {
		return errors.New("occitest: the store was passed in; close it where it was opened")
	}
	return s.store.shut()
}
