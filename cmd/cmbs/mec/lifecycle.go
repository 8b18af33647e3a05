package mec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/config"
)

// Drainer stops accepting sends and waits until the sends accepted are
// settled: the broker's Drain.
type Drainer interface {
	Drain(ctx context.Context) error
}

// Options configures New.
type Options struct {
	// Config is the whole configuration: its mec section, and the HTTP
	// address, public URL and member section the services describe.
	Config config.Config
	// Version is cmbs's version, the services' version.
	Version string
	// Drainer is told to drain on a termination notice.
	Drainer Drainer
	// Logger; logrus's standard logger when nil.
	Logger logrus.FieldLogger
	// HTTPClient makes the requests to the platform and its token
	// endpoint; one with a 10s timeout when nil.
	HTTPClient *http.Client
	// StopTimeout bounds the deregistration when the server is stopped
	// without a termination notice (10s when zero).
	StopTimeout time.Duration
	// Hostname is the host named for wildcard binds when
	// mec.advertise_host is empty; os.Hostname's when empty.
	Hostname string
}

// CallbackPrefix is where the termination callback is served. The rest
// of the path is a random token given to the platform only, so no one
// else can post a termination notice.
const CallbackPrefix = "/mec/notifications/"

// Lifecycle states, as the readiness probe reports them.
const (
	stateStarting    = "starting"
	stateRegistered  = "registered"
	stateTerminating = "terminating"
	stateStopped     = "stopped"
)

// Lifecycle is cmbs's MEC application life cycle. Create it with New
// before serving (its Handler serves the callback, its Probe gates
// readiness), then Run it once the server listens.
type Lifecycle struct {
	cfg      config.Config
	mec      config.MEC
	version  string
	drainer  Drainer
	log      logrus.FieldLogger
	client   *client
	stopWait time.Duration
	hostname string
	token    string
	notices  chan notice

	mu           sync.Mutex
	state        string
	lastErr      error
	services     []string // serInstanceIds registered
	subscription string   // id of the termination subscription
	noticed      bool
}

// notice is a termination notice as received.
type notice struct {
	action   string
	graceful time.Duration
	received time.Time
}

// New checks opts and builds the life cycle; nothing is sent yet.
func New(opts Options) (*Lifecycle, error) {
	m := opts.Config.MEC
	if !m.Enabled() {
		return nil, errors.New("mec: no platform configured")
	}
	if opts.Drainer == nil {
		return nil, errors.New("mec: a drainer is required")
	}
	if opts.Logger == nil {
		opts.Logger = logrus.StandardLogger()
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	c, err := newClient(m, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("mec: callback token: %w", err)
	}
	return &Lifecycle{
		cfg: opts.Config, mec: m, version: opts.Version, drainer: opts.Drainer,
		log:    opts.Logger.WithFields(logrus.Fields{"component": "mec", "app_instance_id": m.AppInstanceID}),
		client: c, stopWait: opts.StopTimeout, hostname: opts.Hostname,
		token: hex.EncodeToString(raw), notices: make(chan notice, 1), state: stateStarting,
	}, nil
}

// Run performs the start-up sequence, then waits for a termination notice
// or for ctx to end. It returns nil once a termination is confirmed (the
// server should then stop with status 0) or, when ctx ends, once the
// registrations are deleted; an error when the platform refused the
// start-up. httpAddr is the address the server listens on.
func (l *Lifecycle) Run(ctx context.Context, httpAddr net.Addr) error {
	services, err := l.serviceInfos(httpAddr)
	if err != nil {
		return err
	}
	callback, err := l.callbackURL(httpAddr)
	if err != nil {
		return err
	}
	l.log.WithFields(logrus.Fields{"platform": l.mec.Platform, "services": len(services)}).Info("MEC platform: starting the application life cycle")
	if err := l.start(ctx, services, callback); err != nil {
		l.setState(stateStopped, err)
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.stopWait)
		defer cancel()
		l.deregister(stopCtx)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("mec: %w", err)
	}
	select {
	case <-ctx.Done():
		l.log.Info("MEC platform: stopping; deleting the service registrations")
		l.setState(stateStopped, errors.New("the server is stopping"))
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.stopWait)
		defer cancel()
		l.deregister(stopCtx)
		return nil
	case n := <-l.notices:
		return l.terminate(ctx, n)
	}
}

// start confirms READY, registers the services and subscribes to the
// termination, each step retried while the platform is unreachable.
func (l *Lifecycle) start(ctx context.Context, services []serviceInfo, callback string) error {
	readyURL := l.client.appURL(l.client.appSupport, "confirm_ready")
	if err := l.retry(ctx, "confirm_ready", func(ctx context.Context) error {
		_, err := l.client.do(ctx, http.MethodPost, readyURL, appReadyConfirmation{Indication: "READY"}, nil, http.StatusNoContent)
		return err
	}); err != nil {
		return err
	}
	l.log.Info("MEC platform: READY confirmed")

	servicesURL := l.client.appURL(l.client.serviceMgmt, "services")
	for _, s := range services {
		var got serviceInfo
		var location string
		if err := l.retry(ctx, "register service "+s.TransportInfo.ID, func(ctx context.Context) error {
			var err error
			location, err = l.client.do(ctx, http.MethodPost, servicesURL, s, &got, http.StatusCreated)
			return err
		}); err != nil {
			return err
		}
		id := got.SerInstanceID
		if id == "" {
			id = lastSegment(location)
		}
		if id == "" {
			return fmt.Errorf("register service %s: the platform named no serInstanceId nor Location", s.TransportInfo.ID)
		}
		l.mu.Lock()
		l.services = append(l.services, id)
		l.mu.Unlock()
		l.log.WithFields(logrus.Fields{"ser_instance_id": id, "transport": s.TransportInfo.ID, "type": s.TransportInfo.Type,
			"endpoint": strings.Join(s.TransportInfo.Endpoint.URIs, " ")}).Info("MEC platform: service registered")
	}

	subsURL := l.client.appURL(l.client.appSupport, "subscriptions")
	sub := appTerminationNotificationSubscription{SubscriptionType: subscriptionType, CallbackReference: callback, AppInstanceID: l.mec.AppInstanceID}
	var got appTerminationNotificationSubscription
	var location string
	if err := l.retry(ctx, "subscribe to the termination", func(ctx context.Context) error {
		var err error
		location, err = l.client.do(ctx, http.MethodPost, subsURL, sub, &got, http.StatusCreated)
		return err
	}); err != nil {
		return err
	}
	id := lastSegment(got.Links.Self.Href)
	if id == "" {
		id = lastSegment(location)
	}
	l.mu.Lock()
	l.subscription = id
	l.mu.Unlock()
	l.log.WithField("subscription", id).Info("MEC platform: subscribed to the application's termination")
	l.setState(stateRegistered, nil)
	l.log.Info("MEC platform: registered; ready")
	return nil
}

// terminate answers a termination notice: drain, deregister, confirm.
func (l *Lifecycle) terminate(ctx context.Context, n notice) error {
	l.setState(stateTerminating, errors.New("terminating on the platform's notice"))
	deadline := n.received.Add(n.graceful)
	// Keep part of the graceful time for deregistering and confirming,
	// which the platform must hear before it stops the instance.
	reserve := min(2*time.Second, n.graceful/5)
	l.log.WithFields(logrus.Fields{"operation": n.action, "max_graceful_timeout": n.graceful.String()}).
		Info("MEC platform: termination notice; refusing new sends and draining the deliveries running")
	drainCtx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	err := l.drainer.Drain(drainCtx)
	cancel()
	if err != nil {
		l.log.WithError(err).Warn("MEC platform: drain cut short by maxGracefulTimeout; what is pending stays in the outbox for the next start")
	} else {
		l.log.Info("MEC platform: drained; no delivery running")
	}
	// The platform may stop the instance at the deadline anyway; the
	// requests still get StopTimeout when the graceful time is spent.
	endCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), later(deadline, time.Now().Add(l.stopWait)))
	defer cancel()
	l.deregister(endCtx)
	confirmURL := l.client.appURL(l.client.appSupport, "confirm_termination")
	if err := l.retry(endCtx, "confirm_termination", func(ctx context.Context) error {
		_, err := l.client.do(ctx, http.MethodPost, confirmURL, appTerminationConfirmation{OperationAction: n.action}, nil, http.StatusNoContent)
		return err
	}); err != nil {
		l.setState(stateStopped, err)
		return fmt.Errorf("mec: %w", err)
	}
	l.setState(stateStopped, errors.New("terminated"))
	l.log.WithField("operation", n.action).Info("MEC platform: termination confirmed; stopping")
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// deregister deletes the service registrations and the subscription made
// so far. Failures are logged: the platform removes them with the
// application instance anyway.
func (l *Lifecycle) deregister(ctx context.Context) {
	l.mu.Lock()
	services, sub := l.services, l.subscription
	l.services, l.subscription = nil, ""
	l.mu.Unlock()
	for _, id := range services {
		if err := l.remove(ctx, "deregister service "+id, l.client.appURL(l.client.serviceMgmt, "services", id)); err != nil {
			l.log.WithError(err).Warn("MEC platform: service not deregistered")
			continue
		}
		l.log.WithField("ser_instance_id", id).Info("MEC platform: service deregistered")
	}
	if sub == "" {
		return
	}
	if err := l.remove(ctx, "unsubscribe "+sub, l.client.appURL(l.client.appSupport, "subscriptions", sub)); err != nil {
		l.log.WithError(err).Warn("MEC platform: termination subscription not deleted")
		return
	}
	l.log.WithField("subscription", sub).Info("MEC platform: termination subscription deleted")
}

// remove deletes a resource of the application instance; one already
// gone counts as deleted.
func (l *Lifecycle) remove(ctx context.Context, what, target string) error {
	return l.retry(ctx, what, func(ctx context.Context) error {
		_, err := l.client.do(ctx, http.MethodDelete, target, nil, nil, http.StatusNoContent)
		return ignoreNotFound(err)
	})
}

// ignoreNotFound treats a 404 on a deletion as done.
func ignoreNotFound(err error) error {
	var pe *PlatformError
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return nil
	}
	return err
}

func (l *Lifecycle) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return retry(ctx, l.log, l.mec.RetryMax, what, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil {
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
		}
		return err
	})
}

func (l *Lifecycle) setState(state string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.lastErr = state, err
}

// lastSegment is the last path segment of a URL or path, unescaped.
func lastSegment(ref string) string {
	if ref == "" {
		return ""
	}
	if u, err := url.Parse(ref); err == nil {
		ref = u.Path
	}
	seg := path.Base(strings.TrimRight(ref, "/"))
	if seg == "." || seg == "/" {
		return ""
	}
	return seg
}
