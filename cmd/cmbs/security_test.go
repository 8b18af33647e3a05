package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker/keys"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers"
)

func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	if err := a.run(context.Background(), []string{"keygen", "--out", dir, "--comment", "member a"}); err != nil {
		t.Fatal(err)
	}
	kp, err := keys.Load(filepath.Join(dir, keys.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := kp.Public + " member a\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	info, err := os.Stat(filepath.Join(dir, keys.SecretFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("member.key: %v, %v", info, err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, keys.PublicFile))
	if err != nil || string(pub) != out.String() {
		t.Errorf("member.pub = %q, %v; want what was printed", pub, err)
	}
	if err := a.run(context.Background(), []string{"keygen", "--out", dir}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("keygen over an existing key: %v", err)
	}
	if err := a.run(context.Background(), []string{"keygen"}); !errors.Is(err, errUsage) {
		t.Errorf("keygen without --out: %v", err)
	}
	if err := a.run(context.Background(), []string{"keygen", "--out", dir, "extra"}); !errors.Is(err, errUsage) {
		t.Errorf("keygen with an argument: %v", err)
	}
}

// TestServeGeneratesMemberKey: in plain mode, the default, serve warns, and
// keeps the member's key in the data directory, made at the first start
// and the same at the next.
func TestServeGeneratesMemberKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, "--store", "file:"+dir, "--log-format", "json")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.stderr.String(), "member security is plain") || !strings.Contains(s.stderr.String(), "generated this member's key pair") {
		t.Errorf("serve's log says nothing of the key or plain mode:\n%s", s.stderr)
	}
	path := filepath.Join(dir, keys.SecretFile)
	first, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.CheckMode(path); err != nil {
		t.Error(err)
	}
	s = startServe(t, "--store", "file:"+dir, "--log-format", "json")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if again, err := keys.Load(path); err != nil || again != first {
		t.Errorf("the key changed across restarts: %v", err)
	}
	if strings.Contains(s.stderr.String(), "generated this member's key pair") {
		t.Error("the key was generated again")
	}
}

// TestE2ECurve runs cmbs processes with --member-security curve and keys
// made by cmbs keygen: discovery and delivery work, each member publishes
// its key, a third member is trusted by editing a running member's
// trusted-keys file, and a process without CURVE is refused and counted
// on /metrics.
func TestE2ECurve(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	dir := t.TempDir()
	type member struct {
		name, keyDir, trusted, pub string
		node                       *e2eNode
	}
	newMember := func(name string) *member {
		m := &member{name: name, keyDir: filepath.Join(dir, name), trusted: filepath.Join(dir, name+".trusted")}
		out, err := exec.Command(bin, "keygen", "--out", m.keyDir, "--comment", "member "+name).Output()
		if err != nil {
			t.Fatalf("keygen: %v", err)
		}
		m.pub = string(out)
		return m
	}
	a, b, c := newMember("a"), newMember("b"), newMember("c")
	trust := func(m *member, others ...*member) {
		var lines string
		for _, o := range others {
			lines += o.pub
		}
		if err := os.WriteFile(m.trusted, []byte("# members "+m.name+" admits\n"+lines), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trust(a, b)
	trust(b, a)
	trust(c, a)
	start := func(m *member) {
		m.node = e2eStartNode(t, bin, e2eNodeSpec{name: strings.ToUpper(m.name), httpAddr: "127.0.0.1:0", extra: []string{
			"--member-security", "curve", "--member-key", filepath.Join(m.keyDir, keys.SecretFile), "--trusted-keys", m.trusted}})
	}
	for _, m := range []*member{a, b, c} {
		start(m)
	}
	a.node.createMember(t, "a", e2eSockets(t), nil, nil, nil)
	b.node.createMember(t, "b", e2eSockets(t), []*e2eNode{a.node}, nil, nil)
	c.node.createMember(t, "c", e2eSockets(t), []*e2eNode{a.node}, nil, nil)
	for _, m := range []*member{a, b, c} {
		key, _, _ := strings.Cut(m.pub, " ")
		if got := m.node.member(t, m.name)["public_key"]; got != key {
			t.Errorf("%s publishes key %v, want %s", m.name, got, key)
		}
	}

	if got, unreachable := b.node.discover(t); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("b discovered %v (%v)", got, unreachable)
	}
	b.node.message(t, "b-to-a", "l2", nil)
	if got := e2eStatuses(b.node.send(t, "b-to-a", "l2")); got["a"] != "delivered" {
		t.Errorf("b to a: %v", got)
	}
	a.node.message(t, "a-to-b", "l2", nil)
	if got := e2eStatuses(a.node.send(t, "a-to-b", "l2")); got["b"] != "delivered" {
		t.Errorf("a to b: %v", got)
	}

	// c is not trusted by a yet: refused, and c's neighbors_state says so.
	if got, _ := c.node.discover(t); len(got) != 0 {
		t.Fatalf("c discovered %v before a trusts it", got)
	}
	state, _ := c.node.member(t, "c")["neighbors_state"].(map[string]any)[a.node.sockets["l1"]].(string)
	if !strings.HasPrefix(state, "refused: ") {
		t.Errorf("c's neighbors_state for a: %q", state)
	}
	// a's operator adds c's key; a is not restarted.
	trust(a, b, c)
	cmbstest.EventuallyWithin(t, 30*time.Second, "c discovers a once trusted", func() bool {
		got, _ := c.node.discover(t)
		return reflect.DeepEqual(got, []string{"a", "b"})
	})
	c.node.message(t, "c-to-all", "l2", nil)
	if got := e2eStatuses(c.node.send(t, "c-to-all", "l2")); got["a"] != "delivered" {
		t.Errorf("c to a: %v", got)
	}

	// A process without CURVE, at every layer of a.
	rogue, err := layers.NewClient(layers.ClientConfig{Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, rogue.Close)
	for _, l := range e2eLayers {
		_, err := rogue.Request(context.Background(), a.node.sockets[l], []byte(`{"type":"describe","layer":"l1","from":{"id":"rogue"}}`))
		// The client mostly learns of the mechanism mismatch; when the
		// receiver closes first, only that the handshake failed.
		if !errors.Is(err, layers.ErrAuth) && (err == nil || !strings.Contains(err.Error(), "handshake failed")) {
			t.Errorf("a rogue on %s: %v", l, err)
		}
	}
	cmbstest.EventuallyWithin(t, 10*time.Second, "the rogue counted on every layer", func() bool {
		for _, l := range e2eLayers {
			if refusedOn(t, a.node.url, l, "handshake") < 1 {
				return false
			}
		}
		return true
	})
	if status, _ := a.node.do(t, "GET", "/cmbs/member/rogue", nil); status != http.StatusNotFound {
		t.Errorf("the rogue is a member of a: %d", status)
	}
}

// refusedOn reads cmbs_layer_peers_refused_total for layer and reason from
// a server's /metrics.
func refusedOn(t *testing.T, url, layer, reason string) float64 {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, res.Body.Close)
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^cmbs_layer_peers_refused_total\{layer="` + layer + `",reason="` + reason + `"\} (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no refusal series for %s/%s in /metrics", layer, reason)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestE2ELayerMessageLimit replays issue 10's 50 MB message over ZeroMQ: sent
// raw to a member's l2 socket, it is cut off at its frame header (the
// member's limit is max_message_bytes, 10 MiB), nothing is stored, the
// server's peak memory stays far below the message's size, and the member
// goes on serving.
func TestE2ELayerMessageLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cmbs process")
	}
	bin := e2eBinary.get(t)
	n := e2eStartNode(t, bin, e2eNodeSpec{name: "A", httpAddr: "127.0.0.1:0"})
	n.createMember(t, "a", e2eSockets(t), nil, nil, nil)
	c, err := layers.NewClient(layers.ClientConfig{Timeout: 3 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, c.Close)
	ctx := context.Background()
	big := append(append([]byte(`{"type":"deliver","layer":"l2","from":{"id":"big"},"session":"s","entries":[{"seq":1,"kind":"message","message":{"id":"big","attributes":{"cmbs":{"message":{"message_content":"`),
		bytes.Repeat([]byte("x"), 50<<20)...), []byte(`"}}}}}]}`)...)
	if _, err := c.Request(ctx, n.sockets["l2"], big); err == nil {
		t.Fatal("a 50 MB request was answered")
	}
	if reply, err := c.Request(ctx, n.sockets["l1"], []byte(`{"type":"describe","layer":"l1"}`)); err != nil || !bytes.Contains(reply, []byte(`"id":"a"`)) {
		t.Errorf("the member after the big request: %s, %v", reply, err)
	}
	if n.has(t, "big") {
		t.Error("the 50 MB message was stored")
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(n.current().cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no VmHWM in the server's status:\n%s", data)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	if kb > 45<<10 {
		t.Errorf("the server's peak memory is %d MiB: it read the 50 MB message", kb>>10)
	}
	t.Logf("the server's peak memory: %d MiB", kb>>10)
}
