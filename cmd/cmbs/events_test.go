package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
)

// TestServeEvents runs `cmbs serve` with authentication: /events and the
// subscription kind are served behind it, a callback and a WebSocket client
// both hear a change, and stopping the server closes the stream with 1001.
func TestServeEvents(t *testing.T) {
	t.Parallel()
	users := brokertest.UsersFile(t, "ops", "secret-pw")
	s := startServe(t, "--store", "file:"+t.TempDir(), "--users", users)
	wsURL := "ws" + strings.TrimPrefix(s.url, "http") + "/events?events=created&location=/resource/"
	creds := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("ops:secret-pw"))}}

	if _, res, err := websocket.DefaultDialer.Dial(wsURL, nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/events without credentials: %v %v; want 401", err, res)
	}
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, creds)
	if err != nil {
		t.Fatalf("dial /events: %v", err)
	}
	defer func() { _ = conn.Close() }()

	var mu sync.Mutex
	var got []notify.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev notify.Event
		if notify.Verify("hook-key", body, r.Header.Get(notify.SignatureHeader)) && json.Unmarshal(body, &ev) == nil {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	c := &brokertest.Client{T: t, URL: s.url, User: "ops", Password: "secret-pw"}
	c.Must(http.StatusCreated, "POST", notify.Location, map[string]any{"resources": []any{map[string]any{
		"kind": notify.Kind, "id": "hook", "attributes": map[string]any{"cmbs": map[string]any{"subscription": map[string]any{
			"callback": hook.URL + "/in", "secret": "hook-key", "events": []any{"created"}, "location": "/resource/"}}},
	}}})
	c.Must(http.StatusCreated, "POST", "/resource/", map[string]any{"resources": []any{map[string]any{
		"kind": occi.ResourceKind, "id": "r1", "title": "one"}}})

	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ev notify.Event
	if err := conn.ReadJSON(&ev); err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	if ev.Type != notify.Created || ev.Location != "/resource/r1" {
		t.Errorf("stream event %+v", ev)
	}
	cmbstest.Eventually(t, "the callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].Location == "/resource/r1" && got[0].Subscription == notify.Location+"hook"
	})

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("stream ended with %v, want close 1001", err)
	}
}

// TestServeStartIsNotified: subscriptions stored before a restart hear what
// serve does as it starts, here the local member the config creates, since
// the notifier runs before the broker and the config act.
func TestServeStartIsNotified(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		if json.NewDecoder(r.Body).Decode(&ev) == nil {
			mu.Lock()
			got = append(got, ev.Type+" "+ev.Location)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	dir := t.TempDir()
	s := startServe(t, "--store", "file:"+dir)
	c := &brokertest.Client{T: t, URL: s.url}
	c.Must(http.StatusCreated, "POST", notify.Location, map[string]any{"resources": []any{map[string]any{
		"kind": notify.Kind, "id": "members", "attributes": map[string]any{"cmbs": map[string]any{"subscription": map[string]any{
			"callback": hook.URL, "events": []any{"created"}, "location": "/cmbs/member/"}}},
	}}})
	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}

	cfg := filepath.Join(t.TempDir(), "member.yaml")
	if err := os.WriteFile(cfg, []byte("member:\n  id: m-start\n  sockets:\n    l1: tcp://127.0.0.1:"+strconv.Itoa(freeTCPPort(t))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, "--store", "file:"+dir, "--config", cfg)
	cmbstest.Eventually(t, "the member's creation notified", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, "created /cmbs/member/m-start")
	})
}
