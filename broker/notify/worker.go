package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// Callback request headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the subscription's secret; absent without a secret.
	SignatureHeader = "X-CMBS-Signature"
	// EventHeader, EventIDHeader and SubscriptionHeader repeat the body's
	// event, id and subscription for receivers that route on headers.
	EventHeader        = "X-CMBS-Event"
	EventIDHeader      = "X-CMBS-Event-Id"
	SubscriptionHeader = "X-CMBS-Subscription"
)

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under secret, in
// constant time.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// subscription is one subscription as the notifier runs it: a bounded
// queue and the worker that empties it, one event at a time, so events
// reach the callback in the order they were published.
type subscription struct {
	n     *Notifier
	loc   string
	queue chan *Event
	// changed wakes the worker when the subscription's expiry or state
	// may have changed.
	changed chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	// final asks the worker to write its counters once more as it stops
	// (Close); a deleted subscription has nothing to write to.
	final atomic.Bool

	mu   sync.Mutex
	spec spec
	st   Status
	// seenGen is the revision generation of the last stored version whose
	// state this worker wrote or took in; a later one is a client's
	// update, whose state (active again, or expired) wins.
	seenGen   int
	dirty     bool
	lastWrite time.Time
	// startSeq is where on the change feed the subscription was created,
	// when known: a server sharing the store that takes it first, with no
	// checkpoint yet, starts there.
	startSeq string
}

func newSubscription(n *Notifier, loc string, sp spec, st Status, gen int) *subscription {
	ctx, cancel := context.WithCancel(n.ctx)
	return &subscription{n: n, loc: loc, queue: make(chan *Event, n.cfg.QueueSize), changed: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), spec: sp, st: st, seenGen: gen}
}

// reconfigure applies a stored version of the subscription.
func (s *subscription) reconfigure(sp spec, state string, gen int) {
	s.mu.Lock()
	s.spec = sp
	if gen > s.seenGen {
		s.seenGen = gen
		s.st.State = state
	}
	s.mu.Unlock()
	s.wake()
}

func (s *subscription) wake() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// stop ends the worker and waits for it.
func (s *subscription) stop(final bool) {
	s.final.Store(final)
	s.cancel()
	<-s.done
}

// offer queues ev if the subscription wants it, dropping it when the queue
// is full.
func (s *subscription) offer(ev *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State == StateExpired || s.spec.expired(time.Now()) || !s.spec.filter.Match(ev) {
		return
	}
	select {
	case s.queue <- ev:
	default:
		s.st.Dropped++
		s.dirty = true
		if s.st.Dropped == 1 || s.st.Dropped%100 == 0 {
			s.n.log.WithFields(map[string]any{"subscription": s.loc, "dropped": s.st.Dropped}).
				Warn("subscription queue full; events dropped")
		}
	}
}

func (s *subscription) run() {
	defer s.n.wg.Done()
	defer close(s.done)
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	s.arm(expiry)
	for {
		select {
		case <-s.ctx.Done():
			s.writeFinal()
			return
		case <-s.changed:
			s.arm(expiry)
		case <-expiry.C:
			s.expireIfDue()
		case ev := <-s.queue:
			s.deliver(ev)
			s.mu.Lock()
			due := s.dirty && (len(s.queue) == 0 || time.Since(s.lastWrite) >= s.n.cfg.StatusInterval)
			s.mu.Unlock()
			if due {
				s.writeStatus(s.ctx, false)
			}
		}
	}
}

// writeFinal writes the counters once more as the worker stops, when the
// notifier closes (a deleted subscription has nothing to write to).
func (s *subscription) writeFinal() {
	if !s.final.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.writeStatus(ctx, true)
}

// arm sets the expiry timer for the current spec.
func (s *subscription) arm(t *time.Timer) {
	s.mu.Lock()
	expires, state := s.spec.expires, s.st.State
	s.mu.Unlock()
	if expires.IsZero() || state == StateExpired {
		t.Stop()
		return
	}
	t.Reset(max(time.Until(expires), 0))
}

// expireIfDue marks the subscription expired once its time has come and
// discards what it still had queued.
func (s *subscription) expireIfDue() {
	s.mu.Lock()
	if s.st.State == StateExpired || !s.spec.expired(time.Now()) {
		s.mu.Unlock()
		return
	}
	s.st.State = StateExpired
	s.dirty = true
	s.mu.Unlock()
	for len(s.queue) > 0 {
		<-s.queue
	}
	s.n.log.WithField("subscription", s.loc).Info("subscription expired")
	s.writeStatus(s.ctx, true)
}

// deliver posts ev to the callback, trying again with backoff. A failing
// subscription gets one try per event, so a dead receiver does not hold
// every event for the whole retry schedule; one success makes it active
// again.
func (s *subscription) deliver(ev *Event) {
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		sp, state := s.spec, s.st.State
		s.mu.Unlock()
		if state == StateExpired || sp.expired(time.Now()) {
			s.expireIfDue()
			return
		}
		err := s.post(sp, ev)
		if err == nil {
			s.succeeded()
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		limit := s.n.cfg.Retry.Attempts
		if state == StateFailing {
			limit = 1
		}
		if attempt >= limit {
			s.failed(ev, err, attempt)
			return
		}
		s.n.log.WithError(err).WithFields(map[string]any{"subscription": s.loc, "event": ev.ID, "attempt": attempt}).
			Debug("callback failed; retrying")
		pause := time.NewTimer(s.n.cfg.Retry.pause(attempt))
		select {
		case <-s.ctx.Done():
			pause.Stop()
			return
		case <-pause.C:
		}
	}
}

// post makes one callback request.
func (s *subscription) post(sp spec, ev *Event) error {
	out := *ev
	out.Subscription = s.loc
	body, err := json.Marshal(&out)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, sp.callback, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("callback request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "cmbs-notify")
	h.Set(EventHeader, ev.Type)
	h.Set(EventIDHeader, ev.ID)
	h.Set(SubscriptionHeader, s.loc)
	if sp.secret != "" {
		h.Set(SignatureHeader, Sign(sp.secret, body))
	}
	res, err := s.n.cfg.Client.Do(req)
	if err != nil {
		// The error repeats the URL; its password is not for the logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST %s: %w", redact(sp.callback), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("POST %s: answered %s", redact(sp.callback), res.Status)
	}
	return nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(callback)"
	}
	return u.Redacted()
}

func (s *subscription) succeeded() {
	s.mu.Lock()
	s.st.Delivered++
	s.st.LastDelivery = time.Now().UTC()
	s.dirty = true
	recovered := s.st.State == StateFailing
	if recovered {
		s.st.State = StateActive
	}
	s.mu.Unlock()
	if recovered {
		s.n.log.WithField("subscription", s.loc).Info("callback answers again; subscription active")
		s.writeStatus(s.ctx, true)
	}
}

func (s *subscription) failed(ev *Event, err error, attempts int) {
	s.mu.Lock()
	s.st.Failed++
	s.st.LastError = err.Error()
	s.dirty = true
	began := s.st.State == StateActive
	if began {
		s.st.State = StateFailing
	}
	s.mu.Unlock()
	s.n.log.WithError(err).WithFields(map[string]any{"subscription": s.loc, "event": ev.ID, "attempts": attempts}).
		Warn("callback failed; event given up")
	if began {
		s.writeStatus(s.ctx, true)
	}
}

// writeStatus stores the counters and state when they changed (or when
// force is set). A client's update that got in first keeps its state.
func (s *subscription) writeStatus(ctx context.Context, force bool) {
	s.mu.Lock()
	if !s.dirty && !force {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e, err := occi.UpdateEntity(wctx, s.n.st, s.loc, func(e *occi.Entity) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if g := generation(e.Rev); g > s.seenGen {
			s.seenGen = g
			s.st.State = statusOf(e).State
		}
		s.st.apply(e)
		s.dirty = false
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastWrite = time.Now()
	switch {
	case err == nil:
		s.seenGen = max(s.seenGen, generation(e.Rev))
	case errors.Is(err, store.ErrNotFound), ctx.Err() != nil:
		// Deleted, or stopping: nothing to record.
	default:
		s.dirty = true
		s.n.log.WithError(err).WithField("subscription", s.loc).Warn("subscription status not recorded")
	}
}
