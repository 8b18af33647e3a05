// Package brokertest runs cmbs servers inside a test's process, wired as
// cmbs serve wires them, and speaks to them over real HTTP: Serve brings
// up an OCCI server on a store, Start a broker member with a socket per
// layer on loopback. Client's helpers send JSON requests and wait for
// deliveries with deadlines.
//
// It is for tests only; production code never imports it.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// EventsPath is where a server with events streams them over WebSocket.
const EventsPath = "/events"

// ServerOptions describe a plain OCCI server, without a broker.
type ServerOptions struct {
	// Store holds the categories and entities. Required. It stays the
	// caller's: Close leaves it open, so servers can share one.
	Store store.Store
	// OCCI configures the server; its Store is Store, and a nil Logger
	// logs nothing.
	OCCI occi.Options
	// Events, when set, attaches a notifier built from it (Store and a
	// nil Logger filled in) that serves EventsPath.
	Events *notify.Config
	// Wrap, when set, wraps the server's handler, as middleware does:
	// authentication, the operations endpoints.
	Wrap func(http.Handler) http.Handler
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
	// Notifier serves EventsPath; nil without events.
	Notifier *notify.Notifier

	parts parts
}

// parts are what a server closes, in Close's order; nil when absent.
type parts struct {
	http, notifier, broker, occi, store *part
}

// part is one thing a server closes, once, remembering the outcome.
type part struct {
	name  string
	close func() error
	once  sync.Once
	err   error
}

func newPart(name string, close func() error) *part {
	return &part{name: name, close: close}
}

func (p *part) shut() error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		if err := p.close(); err != nil {
			p.err = fmt.Errorf("close %s: %w", p.name, err)
		}
	})
	return p.err
}

// Serve brings up a plain OCCI server on opts.Store.
func Serve(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	s := newServer(t, opts.Store, "", opts.User, opts.Password, opts.HTTP)
	if opts.OCCI.Logger == nil {
		opts.OCCI.Logger = Quiet()
	}
	s.init(opts.OCCI)
	if opts.Events != nil {
		s.attachEvents(*opts.Events, opts.OCCI.Logger, nil)
	}
	s.listen(opts.Wrap)
	return s
}

// newServer starts a Server's life: its Close runs when t ends, and
// fails t when a part does not close cleanly.
func newServer(t testing.TB, st store.Store, name, user, pw string, hc *http.Client) *Server {
	s := &Server{Client: &Client{T: t, Name: name, User: user, Password: pw, HTTP: hc}, Store: st}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: %v", s.label(), err)
		}
	})
	return s
}

func (s *Server) label() string {
	if s.Name == "" {
		return "test server"
	}
	return "test server " + s.Name
}

// init creates and initialises the OCCI server on s.Store.
func (s *Server) init(opts occi.Options) {
	s.T.Helper()
	opts.Store = s.Store
	srv, err := occi.NewServer(opts)
	if err != nil {
		s.T.Fatalf("NewServer: %v", err)
	}
	s.OCCI, s.parts.occi = srv, newPart("OCCI server", srv.Close)
	if err := srv.Init(context.Background()); err != nil {
		s.T.Fatalf("Init: %v", err)
	}
}

// attachEvents registers and starts a notifier, fed by brk when not nil,
// as cmbs serve does.
func (s *Server) attachEvents(cfg notify.Config, log logrus.FieldLogger, brk *broker.Broker) {
	s.T.Helper()
	ctx := context.Background()
	cfg.Store = s.Store
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	n, err := notify.New(cfg)
	if err != nil {
		s.T.Fatal(err)
	}
	s.parts.notifier = newPart("notifier", func() error {
		if brk != nil {
			brk.SetEventSink(nil)
		}
		return n.Close()
	})
	if err := n.Register(ctx, s.OCCI); err != nil {
		s.T.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		s.T.Fatal(err)
	}
	if brk != nil {
		brk.SetEventSink(n)
	}
	s.Notifier = n
}

// listen serves the OCCI interface, with the notifier's stream at
// EventsPath ahead of it and wrap around both.
func (s *Server) listen(wrap func(http.Handler) http.Handler) {
	handler := s.OCCI.Handler()
	if s.Notifier != nil {
		// Matched exactly, as serve does: a ServeMux would clean and
		// redirect the OCCI interface's paths.
		stream, occiHandler := s.Notifier.Handler(), handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == EventsPath {
				stream.ServeHTTP(w, r)
				return
			}
			occiHandler.ServeHTTP(w, r)
		})
	}
	if wrap != nil {
		handler = wrap(handler)
	}
	hs := httptest.NewServer(handler)
	s.URL, s.parts.http = hs.URL, newPart("HTTP server", func() error { hs.Close(); return nil })
}

// Close stops the server as serve does on its way out: HTTP first, then
// the notifier, the broker, the OCCI server and the store it opened. Each
// part closes once, so Close can be called again, and after CloseStore
// and the like; it returns what went wrong the first time.
func (s *Server) Close() error {
	var errs []error
	for _, p := range []*part{s.parts.http, s.parts.notifier, s.parts.broker, s.parts.occi, s.parts.store} {
		errs = append(errs, p.shut())
	}
	return errors.Join(errs...)
}

// CloseNotifier stops the notifier (once) ahead of Close; streams end with
// 1001 and subscriptions record their counters.
func (s *Server) CloseNotifier() error { return s.parts.notifier.shut() }

// CloseStore closes the store ahead of Close, when the server opened it;
// a store the test passed in is the test's to close.
func (s *Server) CloseStore() error {
	if s.parts.store == nil {
		return errors.New("brokertest: the store was passed in; close it where it was opened")
	}
	return s.parts.store.shut()
}
