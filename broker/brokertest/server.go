// Package brokertest runs cmbs servers inside a test's process, wired as
// cmbs serve wires them, and speaks to them over real HTTP: Serve brings
// up an OCCI server on a store, with the event notifier when asked, Start
// a broker member with a socket per layer on loopback. It builds on
// occi/occitest, whose Client, Response and store helpers it shares; its
// own helpers send messages and wait for deliveries with deadlines.
//
// It is for tests only; production code never imports it.
package brokertest

import (
	"context"
	"net/http"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
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

// Server is an occitest.Server, closed when its test ends, with the event
// notifier cmbs serve attaches when it has one.
type Server struct {
	*occitest.Server
	// Notifier serves EventsPath; nil without events.
	Notifier *notify.Notifier

	closeNotifier func() error
}

// Serve brings up a plain OCCI server on opts.Store.
func Serve(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if opts.OCCI.Logger == nil {
		opts.OCCI.Logger = Quiet()
	}
	s := &Server{Server: occitest.NewServer(t, occitest.ServerOptions{
		Store: opts.Store, OCCI: opts.OCCI, Wrap: opts.Wrap,
		User: opts.User, Password: opts.Password, HTTP: opts.HTTP,
	})}
	if opts.Events != nil {
		s.attachEvents(*opts.Events, opts.OCCI.Logger, nil)
	}
	s.listen()
	return s
}

// attachEvents registers and starts a notifier, fed by brk when not nil,
// as cmbs serve does. Close stops it after HTTP and before the broker.
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
	s.closeNotifier = s.OnClose("notifier", func() error {
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
// EventsPath ahead of it; the options' Wrap goes around both.
func (s *Server) listen() {
	s.T.Helper()
	if s.Notifier == nil {
		s.Listen(nil)
		return
	}
	// Matched exactly, as serve does: a ServeMux would clean and redirect
	// the OCCI interface's paths.
	stream, occiHandler := s.Notifier.Handler(), s.OCCI.Handler()
	s.Listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == EventsPath {
			stream.ServeHTTP(w, r)
			return
		}
		occiHandler.ServeHTTP(w, r)
	}))
}

// CloseNotifier stops the notifier (once) ahead of Close; streams end with
// 1001 and subscriptions record their counters.
func (s *Server) CloseNotifier() error {
	if s.closeNotifier == nil {
		return nil
	}
	return s.closeNotifier()
}
