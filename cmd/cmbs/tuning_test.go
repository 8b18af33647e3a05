package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
	"github.com/houssem/cmbs/config"
)

// TestTuningDefaultsMatchPackages keeps the defaults of the delivery,
// liveness and notifications sections those of the broker and the
// notifier (config does not import them), so a server left untuned runs
// as the packages do.
func TestTuningDefaultsMatchPackages(t *testing.T) {
	t.Parallel()
	c := config.Default()
	wantDelivery := config.Delivery{Window: broker.DefaultWindow, Batch: broker.DefaultBatch, AckTimeout: broker.DefaultAckTimeout,
		RetryMin: broker.DefaultRetryMin, RetryMax: broker.DefaultRetryMax, Expiry: broker.DefaultExpiry, MaxWait: broker.DefaultMaxWait}
	if c.Delivery != wantDelivery {
		t.Errorf("config delivery defaults %+v, broker's %+v", c.Delivery, wantDelivery)
	}
	wantLiveness := config.Liveness{HeartbeatInterval: broker.DefaultHeartbeatInterval, DiscoveryInterval: broker.DefaultDiscoveryInterval,
		DiscoveryTimeout: broker.DefaultTimeout, DiscoveryAttempts: broker.DefaultAttempts, ForgetAfter: broker.DefaultForgetAfter}
	if c.Liveness != wantLiveness {
		t.Errorf("config liveness defaults %+v, broker's %+v", c.Liveness, wantLiveness)
	}
	wantNotifications := config.Notifications{CallbackTimeout: notify.DefaultCallbackTimeout,
		RetryAttempts: notify.DefaultRetryAttempts, RetryInitial: notify.DefaultRetryInitial, RetryMax: notify.DefaultRetryMax,
		QueueSize: notify.DefaultQueueSize, StreamBuffer: notify.DefaultStreamBuffer, StreamWriteWait: notify.DefaultStreamWriteWait,
		History: notify.DefaultHistory, HistoryBytes: notify.DefaultHistoryBytes, StatusInterval: notify.DefaultStatusInterval}
	if c.Notifications != wantNotifications {
		t.Errorf("config notifications defaults %+v, notify's %+v", c.Notifications, wantNotifications)
	}
}

// TestServeTuningPassedOn: every setting of the three sections reaches the
// broker's or the notifier's configuration, and a heartbeat interval of 0s
// is the broker's "off".
func TestServeTuningPassedOn(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.MaxMessageBytes = 4096
	c.Delivery = config.Delivery{Window: 11, Batch: 7, AckTimeout: 2 * time.Second, RetryMin: 3 * time.Millisecond,
		RetryMax: 4 * time.Second, Expiry: 5 * time.Hour, MaxWait: 6 * time.Second}
	c.Liveness = config.Liveness{HeartbeatInterval: 7 * time.Second, DiscoveryInterval: 8 * time.Second,
		DiscoveryTimeout: 9 * time.Second, DiscoveryAttempts: 10, ForgetAfter: 11 * time.Hour}
	c.Notifications = config.Notifications{CallbackTimeout: 12 * time.Second, RetryAttempts: 13, RetryInitial: 14 * time.Millisecond,
		RetryMax: 15 * time.Second, QueueSize: 16, StreamBuffer: 17, StreamWriteWait: 18 * time.Second, History: 19,
		HistoryBytes: 20, StatusInterval: 21 * time.Second}
	logger := quietLogger()

	b := brokerConfig(c, nil, logger)
	gotB := [...]any{b.MaxMessageSize, b.Window, b.Batch, b.AckTimeout, b.RetryMin, b.RetryMax, b.Expiry, b.MaxWait,
		b.HeartbeatInterval, b.DiscoveryInterval, b.Timeout, b.Attempts, b.ForgetAfter}
	wantB := [...]any{int64(4096), 11, 7, 2 * time.Second, 3 * time.Millisecond, 4 * time.Second, 5 * time.Hour, 6 * time.Second,
		7 * time.Second, 8 * time.Second, 9 * time.Second, 10, 11 * time.Hour}
	if gotB != wantB {
		t.Errorf("broker config %v, want %v", gotB, wantB)
	}
	if b.Logger != logger {
		t.Errorf("broker config has another logger")
	}
	c.Liveness.HeartbeatInterval = 0
	if hb := brokerConfig(c, nil, logger).HeartbeatInterval; hb >= 0 {
		t.Errorf("heartbeat_interval 0s gives the broker %v, want a negative interval (off)", hb)
	}

	n := notifyConfig(c, nil, logger)
	gotN := [...]any{n.Retry, n.QueueSize, n.StreamBuffer, n.StreamWriteWait, n.History, n.HistoryBytes, n.StatusInterval}
	wantN := [...]any{notify.Retry{Attempts: 13, Initial: 14 * time.Millisecond, Max: 15 * time.Second}, 16, 17, 18 * time.Second, 19, 20, 21 * time.Second}
	if gotN != wantN {
		t.Errorf("notify config %v, want %v", gotN, wantN)
	}
	if n.Client == nil || n.Client.Timeout != 12*time.Second {
		t.Fatalf("callback client %+v, want a timeout of 12s", n.Client)
	}
	// Callbacks follow no redirects, as notify's own default client.
	if n.Client.CheckRedirect == nil || !errors.Is(n.Client.CheckRedirect(nil, nil), http.ErrUseLastResponse) {
		t.Errorf("callback client follows redirects")
	}
}

// TestServeTuningFlags runs `cmbs serve` with flags of the delivery and
// liveness sections and sees their effect: liveness is off, and an L1
// send's Prefer: wait is capped at --delivery-max-wait.
func TestServeTuningFlags(t *testing.T) {
	t.Parallel()
	path, sockets := memberConfig(t, "member-tuned", "", "")
	s := startServe(t, "--config", path, "--liveness-heartbeat-interval=0s", "--delivery-max-wait=1s",
		"--notifications-retry-attempts=2")
	if !strings.Contains(s.stderr.String(), "liveness is off") {
		t.Errorf("serve did not log that liveness is off:\n%s", s.stderr)
	}
	if got := memberAttrs(t, s, "member-tuned")["l1_socket"]; got != sockets["l1"] {
		t.Fatalf("member-tuned l1 socket = %v, want %s", got, sockets["l1"])
	}

	// Nobody answers at this socket: the send stays pending past the wait.
	nowhere := fmt.Sprintf("tcp://127.0.0.1:%d", freeTCPPort(t))
	m := api.Message{Layer: api.L1, Receiver: nowhere, Executable: true, Sendable: true, Storable: true,
		Content: map[string]any{"hello": "tuned"}, SendOnCreate: true}
	e := &cli.Entity{Kind: api.MessageKind, Mixins: []string{api.L1.Mixin()}, ID: "tuned-l1", Attributes: m.Attributes()}
	raw, err := json.Marshal(map[string]any{"resources": []*cli.Entity{e}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+api.MessageLocation, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/occi+json")
	req.Header.Set("Accept", "application/occi+json")
	req.Header.Set("Prefer", "wait=20")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("the send was held %v, past --delivery-max-wait=1s", elapsed)
	}
	// The wait applied is the server's maximum, not the 20s asked for.
	if got := resp.Header.Get("Preference-Applied"); resp.StatusCode != http.StatusCreated || got != "wait=1" {
		t.Errorf("POST = %d with Preference-Applied %q, want 201 and wait=1: %s", resp.StatusCode, got, body)
	}
}
