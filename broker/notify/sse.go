package notify

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/houssem/cmbs/occi"
)

// MediaEventStream is the Server-Sent Events media type.
const MediaEventStream = "text/event-stream"

// ssePing is how often an idle event stream gets a comment line, so
// proxies and clients see the connection alive.
const ssePing = 25 * time.Second

// approxSize estimates the bytes an event holds: its strings, and those
// of its entity's attributes, walked without encoding anything, so the
// publish path stays cheap.
func approxSize(ev *Event) int {
	size := 128 + len(ev.ID) + len(ev.Type) + len(ev.Location) + len(ev.Kind) + len(ev.Subscription) +
		len(ev.Layer) + len(ev.Member) + len(ev.From) + len(ev.Reason) + len(ev.Endpoint) + len(ev.Via)
	if e := ev.Entity; e != nil {
		size += len(e.ID) + len(e.Location) + len(e.Kind) + len(e.Title) + len(e.Summary) + len(e.Source) + len(e.Target)
		for _, m := range e.Mixins {
			size += len(m)
		}
		size += valueSize(e.Attributes)
	}
	return size
}

// valueSize estimates the bytes of a decoded JSON value.
func valueSize(v any) int {
	switch t := v.(type) {
	case string:
		return len(t) + 2
	case map[string]any:
		n := 2
		for k, x := range t {
			n += len(k) + 4 + valueSize(x)
		}
		return n
	case []any:
		n := 2
		for _, x := range t {
			n += 1 + valueSize(x)
		}
		return n
	}
	return 8
}

// kept is an event of the history with an estimate of its size.
type kept struct {
	ev   *Event
	size int
}

// remember keeps ev in the history resuming streams read, within
// Config.History events and about Config.HistoryBytes. Called by publish
// under the read lock.
func (n *Notifier) remember(ev *Event) {
	size := approxSize(ev)
	n.histMu.Lock()
	defer n.histMu.Unlock()
	n.history = append(n.history, kept{ev, size})
	n.histBytes += size
	drop := 0
	for drop < len(n.history) && (len(n.history)-drop > n.cfg.History || n.histBytes > n.cfg.HistoryBytes) {
		n.histBytes -= n.history[drop].size
		drop++
	}
	if drop > 0 {
		// Copied down so the dropped events are not kept alive.
		n.history = append(n.history[:0], n.history[drop:]...)
		clear(n.history[len(n.history):cap(n.history)])
	}
}

// since returns the kept events after the one with id that f matches, and
// whether that event is still kept. Called under the write lock, so no
// event is published meanwhile.
func (n *Notifier) since(id string, f Filter) ([]*Event, bool) {
	n.histMu.Lock()
	defer n.histMu.Unlock()
	for i := len(n.history) - 1; i >= 0; i-- {
		if n.history[i].ev.ID != id {
			continue
		}
		var out []*Event
		for _, k := range n.history[i+1:] {
			if f.Match(k.ev) {
				out = append(out, k.ev)
			}
		}
		return out, true
	}
	return nil, false
}

// wantsEventStream reports whether a plain GET accepts Server-Sent Events:
// it asks for them, or for anything (curl's */*, or no Accept at all).
func wantsEventStream(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	for _, part := range strings.Split(strings.Join(accept, ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mt != MediaEventStream && mt != "text/*" && mt != "*/*") {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
			continue
		}
		return true
	}
	return false
}

// serveEvents streams events to an HTTP client as Server-Sent Events: one
// "id:", "event:" and "data:" block per event (data is the event's JSON,
// as WebSocket frames carry it). A client resuming with Last-Event-ID gets
// the kept events after that one first; when it is no longer kept, a
// "gap" event says so and the stream goes on from now. A client that lets
// its buffer fill gets an "error" event and is disconnected, as are all
// clients, after a "close" event, when the notifier closes.
func (n *Notifier) serveEvents(w http.ResponseWriter, r *http.Request, f Filter) {
	rc := http.NewResponseController(w)
	last := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	st, backlog, gap, release, err := n.openStream(f, last)
	if err != nil {
		occi.WriteProblem(w, err)
		return
	}
	defer release()

	h := w.Header()
	h.Set("Content-Type", MediaEventStream)
	h.Set("Cache-Control", "no-cache")
	// Proxies such as nginx would otherwise buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	log := n.log.WithField("client", r.RemoteAddr)
	log.Debug("event stream opened (Server-Sent Events)")
	send := func(block string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(n.cfg.StreamWriteWait))
		if _, err := fmt.Fprint(w, block); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": cmbs events\nretry: 3000\n\n") {
		return
	}
	if gap {
		detail, _ := json.Marshal(map[string]string{"last_event_id": last,
			"detail": "the events after this id are no longer kept; the stream goes on from now"})
		if !send("event: gap\ndata: " + string(detail) + "\n\n") {
			return
		}
	}
	for _, ev := range backlog {
		if !send(sseBlock(ev)) {
			return
		}
	}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		select {
		case <-st.overflow:
			log.Warn("event stream client too slow; disconnected")
			send(fmt.Sprintf("event: error\ndata: too slow: more than %d events waiting\n\n", cap(st.ch)))
			return
		default:
		}
		select {
		case <-st.overflow:
			continue
		case <-n.ctx.Done():
			send("event: close\ndata: server shutting down\n\n")
			return
		case <-r.Context().Done():
			log.Debug("event stream closed by the client")
			return
		case <-ping.C:
			if !send(": ping\n\n") {
				return
			}
		case ev := <-st.ch:
			if !send(sseBlock(ev)) {
				log.Debug("event stream write failed")
				return
			}
		}
	}
}

// sseBlock renders one event as a Server-Sent Events block.
func sseBlock(ev *Event) string {
	data, err := json.Marshal(ev)
	if err != nil {
		data = []byte(`{"error":"event not encodable"}`)
	}
	return "id: " + ev.ID + "\nevent: " + ev.Type + "\ndata: " + string(data) + "\n\n"
}
