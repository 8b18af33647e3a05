package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/lease"
)

// eventsPath is where the event stream is served, ahead of the OCCI
// interface (occi reserves /events/ so no kind can take it).
const eventsPath = "/events"

// startEvents registers the subscription kind on srv, starts the notifier
// on st (stored subscriptions resume) and has brk report its events to it.
// With leases, the subscriptions are shared with the other servers of the
// store. Stop it with closeEvents before the broker and the store close.
func startEvents(ctx context.Context, st store.Store, srv *occi.Server, brk *broker.Broker, leases *lease.Keeper, logger logrus.FieldLogger) (*notify.Notifier, error) {
	cfg := notify.Config{Store: st, Logger: logger}
	if leases != nil {
		cfg.Leases = leases
	}
	n, err := notify.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Register(ctx, srv); err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		if cerr := n.Close(); cerr != nil {
			logger.WithError(cerr).Warn("closing the notifier")
		}
		return nil, fmt.Errorf("start notifications: %w", err)
	}
	brk.SetEventSink(n)
	return n, nil
}

// closeEvents detaches the notifier from the broker and stops it: streams
// are closed with 1001, and subscriptions record their counters.
func closeEvents(n *notify.Notifier, brk *broker.Broker, logger logrus.FieldLogger) {
	brk.SetEventSink(nil)
	if err := n.Close(); err != nil {
		logger.WithError(err).Error("closing the notifier")
	}
}

// withEvents serves GET /events from the notifier and everything else from
// next. It matches the path exactly rather than through a ServeMux, which
// would clean and redirect the OCCI interface's paths.
func withEvents(n *notify.Notifier, next http.Handler) http.Handler {
	stream := n.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == eventsPath {
			stream.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
