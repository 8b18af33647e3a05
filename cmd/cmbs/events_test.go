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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/occi/auth"
)

// TestServeEvents runs `cmbs serve` with authentication: /events and the
// subscription kind are served behind it, a callback and a WebSocket client
// both hear a change, and stopping the server closes the stream with 1001.
func TestServeEvents(t *testing.T) {
	line, err := auth.Entry("ops", "secret-pw")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
	defer conn.Close()

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

	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
		req.Header = creds.Clone()
		req.Header.Set("Content-Type", "application/occi+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, raw)
		}
	}
	post(notify.Location, `{"resources":[{"kind":"`+notify.Kind+`","id":"hook","attributes":{"cmbs":{"subscription":{`+
		`"callback":"`+hook.URL+`/in","secret":"hook-key","events":["created"],"location":"/resource/"}}}}]}`)
	post("/resource/", `{"resources":[{"kind":"http://schemas.ogf.org/occi/core#resource","id":"r1","title":"one"}]}`)

	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ev notify.Event
	if err := conn.ReadJSON(&ev); err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	if ev.Type != notify.Created || ev.Location != "/resource/r1" {
		t.Errorf("stream event %+v", ev)
	}
	waitUntil(t, 20*time.Second, func() bool {
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
