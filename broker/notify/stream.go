package notify

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/occi"
)

// WebSocket timings: a frame that cannot be written in Config.StreamWriteWait fails the
// stream; pings go out every pingPeriod and a client that answers none
// within pongWait is gone.
const (
	pongWait   = 60 * time.Second
	pingPeriod = 25 * time.Second
	closeWait  = time.Second
)

// CloseTooSlow is the close code (1008, policy violation) sent to a stream
// client that let its buffer fill up.
const CloseTooSlow = websocket.ClosePolicyViolation

// stream is one /events client: its filter and the events waiting for it.
type stream struct {
	filter   Filter
	ch       chan *Event
	overflow chan struct{}
	once     sync.Once
}

// offer queues ev for the client; a full buffer marks it too slow rather
// than wait for it.
func (st *stream) offer(ev *Event) {
	if !st.filter.Match(ev) {
		return
	}
	select {
	case st.ch <- ev:
	default:
		st.once.Do(func() { close(st.overflow) })
	}
}

// Handler serves GET /events: a WebSocket stream of the events matching
// the query's filter (kind, location, topics, providers, events), one JSON
// event per text frame; or, for a plain GET accepting text/event-stream
// (curl -N does), the same events as Server-Sent Events (serveEvents). A client that falls StreamBuffer events behind is
// sent a close frame with code 1008 (CloseTooSlow) and disconnected, so it
// never holds up others; it may reconnect. Closing the notifier closes
// every stream with 1001 (going away).
func (n *Notifier) Handler() http.Handler {
	up := websocket.Upgrader{HandshakeTimeout: 10 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			occi.WriteProblem(w, &occi.Error{Status: http.StatusMethodNotAllowed,
				Detail: fmt.Sprintf("method %s is not allowed on /events; it is a WebSocket opened with GET", r.Method)})
			return
		}
		f, err := FilterFromQuery(r.URL.Query())
		if err != nil {
			occi.WriteProblem(w, err)
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			if wantsEventStream(r) {
				n.serveEvents(w, r, f)
				return
			}
			occi.WriteProblem(w, &occi.Error{Status: http.StatusUpgradeRequired,
				Detail: "/events is a WebSocket stream, or Server-Sent Events for a client accepting " + MediaEventStream})
			return
		}
		// Registered before the handshake completes, so every event after
		// the client's Dial returns reaches it.
		st, _, _, release, err := n.openStream(f, "")
		if err != nil {
			occi.WriteProblem(w, err)
			return
		}
		defer release()
		// The upgrader answers a failed handshake itself.
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		n.serveStream(conn, st)
	})
}

// openStream registers a stream client with filter f. With last, the id
// of the last event the client got, it also returns the kept events after
// that one that f matches, or gap when that event is no longer kept; they
// are read under the same lock, so none is missed or sent twice. release
// unregisters the client; it must be called.
func (n *Notifier) openStream(f Filter, last string) (st *stream, backlog []*Event, gap bool, release func(), err error) {
	st = &stream{filter: f, ch: make(chan *Event, n.cfg.StreamBuffer), overflow: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, false, nil, &occi.Error{Status: http.StatusServiceUnavailable, Detail: "the server is shutting down"}
	}
	if last != "" {
		var kept bool
		backlog, kept = n.since(last, f)
		gap = !kept
	}
	n.streams[st] = struct{}{}
	n.wg.Add(1)
	release = func() {
		n.mu.Lock()
		delete(n.streams, st)
		n.mu.Unlock()
		n.wg.Done()
	}
	return st, backlog, gap, release, nil
}

// serveStream writes events to conn until the client leaves, falls behind
// or the notifier closes. Its reader goroutine only answers control frames.
func (n *Notifier) serveStream(conn *websocket.Conn, st *stream) {
	log := n.log.WithField("client", conn.RemoteAddr().String())
	log.Debug("event stream opened")
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadLimit(4096)
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	// goodbye sends a close frame, gives the client a moment to answer it,
	// and lets the deferred Close end the reader.
	goodbye := func(code int, text string) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(n.cfg.StreamWriteWait))
		select {
		case <-gone:
		case <-time.After(closeWait):
		}
	}
	defer func() {
		_ = conn.Close()
		<-gone
	}()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		// A client already too slow is told so before anything else.
		select {
		case <-st.overflow:
			log.Warn("event stream client too slow; disconnected")
			goodbye(CloseTooSlow, fmt.Sprintf("too slow: more than %d events waiting", cap(st.ch)))
			return
		default:
		}
		select {
		case <-st.overflow:
			continue
		case <-n.ctx.Done():
			goodbye(websocket.CloseGoingAway, "server shutting down")
			return
		case <-gone:
			log.Debug("event stream closed by the client")
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(n.cfg.StreamWriteWait)); err != nil {
				return
			}
		case ev := <-st.ch:
			_ = conn.SetWriteDeadline(time.Now().Add(n.cfg.StreamWriteWait))
			if err := conn.WriteJSON(ev); err != nil {
				log.WithError(err).Debug("event stream write failed")
				return
			}
		}
	}
}
