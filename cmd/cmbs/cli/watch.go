package cli

import (
	"github.com/houssem/cmbs/broker/api"

	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// EventsPath is where the server streams its events over WebSocket.
const EventsPath = "/events"

// Event is one frame of the event stream.
type Event struct {
	ID       string          `json:"id,omitempty"`
	Event    string          `json:"event"`
	Time     string          `json:"time"`
	Location string          `json:"location"`
	Kind     string          `json:"kind,omitempty"`
	Entity   json.RawMessage `json:"entity,omitempty"`
	// The broker's events (message_received, delivery_failed) say which
	// member received the message or could not be reached, from where,
	// on which layer, and why it failed.
	Layer    string `json:"layer,omitempty"`
	Member   string `json:"member,omitempty"`
	From     string `json:"from,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Via      string `json:"via,omitempty"`
}

// WatchFilter narrows the stream; empty fields match everything.
type WatchFilter struct {
	Kind      string
	Location  string
	Topics    []string
	Providers []string
	Events    []string
}

func (f WatchFilter) query() url.Values {
	q := url.Values{}
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("kind", f.Kind)
	set("location", f.Location)
	set("topics", strings.Join(f.Topics, ","))
	set("providers", strings.Join(f.Providers, ","))
	set("events", strings.Join(f.Events, ","))
	return q
}

// closeWait bounds how long Watch waits to say goodbye to the server once
// its context ends.
const closeWait = time.Second

// Watch streams the server's events to fn, each frame as sent and decoded,
// until ctx ends (nil), the server closes the stream (nil for a normal
// close), the connection fails, or fn returns an error (that error).
// opened, when not nil, is called once the stream is open: every event
// from then on reaches fn.
func (c *Client) Watch(ctx context.Context, f WatchFilter, opened func(), fn func(raw []byte, ev Event) error) error {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += EventsPath
	u.RawQuery = f.query().Encode()
	header := http.Header{}
	if c.auth {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password)))
	}
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 30 * time.Second}
	conn, res, err := d.DialContext(ctx, u.String(), header)
	if err != nil {
		if res != nil {
			defer func() { _ = res.Body.Close() }()
			body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
			return problemOf(res.StatusCode, res.Header, body)
		}
		return fmt.Errorf("cannot open the event stream at %s: %w", u.Redacted(), err)
	}
	// Reads block; ending the context closes the connection under them.
	// WriteControl and Close may run concurrently with a read and with
	// each other, so the goodbye is safe from either side.
	goodbye := func() {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
		_ = conn.Close()
	}
	stop := context.AfterFunc(ctx, goodbye)
	defer func() {
		if stop() {
			goodbye()
		}
	}()
	if opened != nil {
		opened()
	}
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				return nil
			}
			return fmt.Errorf("event stream: %w", err)
		}
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("event stream: a frame is not an event: %w", err)
		}
		if err := fn(raw, ev); err != nil {
			return err
		}
	}
}

// ErrStop ends Watch from its callback without an error.
var ErrStop = errors.New("stop watching")

// FormatEvent renders an event on one line: time, event, kind term,
// location and what the entity says that matters for its kind.
func FormatEvent(ev Event) string {
	when := ev.Time
	if t, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil {
		when = t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	kind := ev.Kind
	if i := strings.LastIndexByte(kind, '#'); i >= 0 {
		kind = kind[i+1:]
	}
	line := fmt.Sprintf("%-24s  %-16s  %-8s  %-24s", when, ev.Event, kind, ev.Location)
	if s := summary(ev); s != "" {
		line += "  " + s
	}
	return strings.TrimRight(cellCleaner.Replace(line), " ")
}

// summary gives what the broker's events say, then the entity's telling
// attributes: a member's state and reach, a message's layer, selectors,
// delivery and content.
func summary(ev Event) string {
	var parts []string
	add := func(label, v string) {
		if v == "" {
			return
		}
		if strings.ContainsAny(v, " \t\n\"") && !json.Valid([]byte(v)) {
			v = strconv.Quote(v)
		}
		parts = append(parts, label+"="+v)
	}
	add("layer", ev.Layer)
	add("member", ev.Member)
	add("from", ev.From)
	add("via", ev.Via)
	add("endpoint", ev.Endpoint)
	add("reason", ev.Reason)
	var e Entity
	if len(ev.Entity) == 0 || string(ev.Entity) == "null" || json.Unmarshal(ev.Entity, &e) != nil {
		return strings.Join(parts, " ")
	}
	switch {
	case strings.HasSuffix(ev.Kind, "#member"):
		add("state", e.Text(api.MemberState))
		add("local", e.Text(api.MemberLocal))
		add("via", e.Text(api.MemberVia))
		add("topics", e.Text(api.MemberTopics))
		add("providers", e.Text(api.MemberProviders))
	case strings.HasSuffix(ev.Kind, "#message"):
		if ev.Layer == "" {
			add("layer", e.Text(api.MessageLayer))
		}
		if ev.From == "" {
			add("origin", e.Text(api.MessageOrigin))
		}
		add("topics", e.Text(api.MessageTopics))
		add("providers", e.Text(api.MessageProviders))
		// A failure event names its destination; the counts are for
		// the changes that record the delivery.
		if d, err := DeliveryOf(&e); err == nil && d != nil && ev.Reason == "" {
			add("delivery", d.State)
			add("delivered", strconv.Itoa(d.Delivered))
			add("failed", strconv.Itoa(d.Failed))
		}
		if c, ok := e.Attr(api.MessageContent); ok {
			add("content", compact(c))
		}
	default:
		add("title", e.Title)
	}
	return strings.Join(parts, " ")
}
