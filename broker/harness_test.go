package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store/bolt"
)

// member is one cmbs server in-process: its own store, OCCI server,
// broker and local member with a socket per layer on loopback.
type member struct {
	t       testing.TB
	id      string
	url     string
	broker  *broker.Broker
	sockets map[string]string
	close   func()
}

func freePort(t testing.TB) int {
	t.Helper()
	return layertest.FreePort(t)
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

type memberSpec struct {
	id        string
	neighbors []*member
	topics    []string
	providers []string
}

// startMember brings up a server whose local member is described by spec,
// with every layer running.
func startMember(t testing.TB, spec memberSpec) *member {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cmbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := quiet()
	srv, err := occi.NewServer(occi.Options{Store: st, Logger: log, Aliases: broker.Aliases()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Init(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Store: st, Logger: log, Timeout: 300 * time.Millisecond, Attempts: 2, RouteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, srv); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	m := &member{t: t, id: spec.id, url: hs.URL, broker: b, sockets: map[string]string{}}
	closed := false
	m.close = func() {
		if closed {
			return
		}
		closed = true
		hs.Close()
		b.Close()
		st.Close()
	}
	t.Cleanup(m.close)
	attrs := map[string]any{"local": "true", "state": "active", "topics": spec.topics, "providers": spec.providers}
	for _, l := range broker.Layers() {
		m.sockets[string(l)] = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		attrs[string(l)+"_socket"] = m.sockets[string(l)]
	}
	var neighbors []string
	for _, n := range spec.neighbors {
		neighbors = append(neighbors, n.sockets["l1"])
	}
	attrs["neighbors_socket"] = neighbors
	body := map[string]any{"resources": []any{map[string]any{
		"kind": broker.MemberKind, "id": spec.id, "title": "member " + spec.id,
		"attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}}
	m.must(http.StatusCreated, "POST", "/cmbs/member/", body)
	for _, l := range broker.Layers() {
		m.must(http.StatusOK, "POST", "/cmbs/member/"+spec.id+"?action=start_"+string(l), map[string]any{})
	}
	return m
}

// do sends a JSON request to the member's server and decodes the answer.
func (m *member) do(method, path string, body any) (int, map[string]any) {
	m.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			m.t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, m.url+path, rd)
	req.Header.Set("Content-Type", "application/occi+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			m.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return res.StatusCode, out
}

func (m *member) must(status int, method, path string, body any) map[string]any {
	m.t.Helper()
	got, out := m.do(method, path, body)
	if got != status {
		m.t.Fatalf("%s %s on %s: status %d, want %d: %v", method, path, m.id, got, status, out)
	}
	return out
}

// attrs returns the cmbs.<kind> attributes of an entity.
func (m *member) attrs(path, kind string) map[string]any {
	m.t.Helper()
	out := m.must(http.StatusOK, "GET", path, nil)
	res := out["resources"].([]any)[0].(map[string]any)
	return res["attributes"].(map[string]any)["cmbs"].(map[string]any)[kind].(map[string]any)
}

// has reports whether the member stores message id.
func (m *member) has(id string) bool {
	m.t.Helper()
	status, _ := m.do("GET", "/cmbs/message/"+id, nil)
	return status == http.StatusOK
}

// message creates a message on m with the given layer and attributes.
func (m *member) message(id string, layer string, extra map[string]any) {
	m.t.Helper()
	attrs := map[string]any{"cmbs_layer": layer, "executable": "True", "sendable": "True", "storable": "True",
		"path_history": []any{}, "message_content": map[string]any{"hello": id}}
	for k, v := range extra {
		attrs[k] = v
	}
	m.must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": broker.MessageKind, "mixins": []any{"http://houssem.org/cmbs#" + layer}, "id": id,
		"attributes": map[string]any{"cmbs": map[string]any{"message": attrs}},
	}}})
}

// send triggers the send action and waits until the outcome is recorded.
func (m *member) send(id, layer string) map[string]any {
	m.t.Helper()
	out := m.must(http.StatusAccepted, "POST", "/cmbs/message/"+id+"?action=send_"+layer, map[string]any{})
	if loc := out["Location"].([]any)[0].(string); !strings.HasSuffix(loc, "/cmbs/message/"+id) {
		m.t.Fatalf("send answered location %q", loc)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, _ := m.attrs("/cmbs/message/"+id, "message")["delivery"].(map[string]any)
		if d["state"] == "done" {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.t.Fatalf("send of %s on %s: no outcome recorded in time", id, layer)
	return nil
}

// outcome lists destination -> status of a delivery.
func outcome(d map[string]any) map[string]string {
	out := map[string]string{}
	dests, _ := d["destinations"].(map[string]any)
	for id, r := range dests {
		out[id] = r.(map[string]any)["status"].(string)
	}
	return out
}
