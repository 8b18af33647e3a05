package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/layers/layertest"
)

// The end-to-end tests run the real cmbs binary as separate processes, each
// with its own embedded store, and drive them over HTTP as a user would.

// e2eBuild is the cmbs binary the end-to-end tests run. It is built once
// per test binary, without -race: the processes are the system under test
// and building them with the race detector would only slow every request;
// the race detector still watches the test's own code.
type e2eBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// e2eBinary is shared by every end-to-end test of this test binary, so the
// build happens once; TestMain removes it.
var e2eBinary e2eBuild

func TestMain(m *testing.M) {
	code := m.Run()
	e2eBinary.remove()
	os.Exit(code)
}

// get builds the binary on first use and returns its path.
func (b *e2eBuild) get(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		// go test puts its own go first on PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("no go command to build cmbs with: %w", err)
			return
		}
		if b.dir, err = os.MkdirTemp("", "cmbs-e2e-bin-"); err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(b.dir, "cmbs")
		start := time.Now()
		out, err := exec.Command(goTool, "build", "-o", b.path, ".").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		t.Logf("built %s in %v", b.path, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func (b *e2eBuild) remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir) // a temporary directory; the test's verdict is in
	}
}

// e2eFreePort returns a TCP port nothing listens on at the moment.
func e2eFreePort(t testing.TB) int {
	t.Helper()
	return layertest.FreePort(t)
}

// e2ePortFree reports whether addr can be listened on right now.
func e2ePortFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// e2eLayers are the broker's layers as actions, mixins and socket
// attributes spell them.
var e2eLayers = []string{"l1", "l2", "l31", "l32", "l4"}

// e2eSockets picks a free loopback port for each layer.
func e2eSockets(t testing.TB) map[string]string {
	out := map[string]string{}
	for _, l := range e2eLayers {
		out[l] = fmt.Sprintf("tcp://127.0.0.1:%d", e2eFreePort(t))
	}
	return out
}

// e2eNodeSpec says how to run one cmbs process.
type e2eNodeSpec struct {
	name string // for logs
	// wrap is put before the binary, as in ip netns exec NS.
	wrap []string
	// httpAddr is the --http address; with port 0 the port the server
	// chose is read from its log.
	httpAddr string
	// client reaches the server; http.DefaultClient-like when nil.
	client *http.Client
	// storeURL, when set, is the --store the server runs on; a fresh
	// embedded store otherwise.
	storeURL string
	// extra are more serve flags.
	extra []string
}

// e2eNode is a cmbs serve process, restartable on the same store.
type e2eNode struct {
	spec   e2eNodeSpec
	bin    string
	store  string
	client *http.Client
	runs   []*e2eRun
	// url is where the current run serves; it changes with each run, and
	// goroutines of a test read it (see baseURL).
	urlMu sync.Mutex
	url   string

	// The local member, once created.
	id      string
	sockets map[string]string
}

// e2eRun is one life of the process.
type e2eRun struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error // what Wait returned, once done is closed
}

// e2eStartNode runs `cmbs serve` on a fresh embedded store and waits until it
// serves. Cleanup kills what is left of its process group and, when the
// test failed, logs what the server wrote.
func e2eStartNode(t *testing.T, bin string, spec e2eNodeSpec) *e2eNode {
	t.Helper()
	n := &e2eNode{spec: spec, bin: bin, store: filepath.Join(t.TempDir(), "store"), client: spec.client}
	if n.client == nil {
		n.client = &http.Client{Timeout: 30 * time.Second}
	}
	t.Cleanup(func() {
		for _, r := range n.runs {
			r.kill(syscall.SIGKILL)
		}
		if t.Failed() {
			for i, r := range n.runs {
				t.Logf("log of %s (run %d), last lines:\n%s", spec.name, i+1, e2eTail(r.log.String(), 60))
			}
		}
	})
	n.start(t)
	return n
}

// e2eTail returns the last n lines of a log.
func e2eTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eServeEnv is the environment without CMBS_* settings, so the servers run
// with their flags alone whatever the test's environment holds.
func e2eServeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CMBS_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs the process (again) on the node's store.
func (n *e2eNode) start(t *testing.T) {
	t.Helper()
	storeURL := n.spec.storeURL
	if storeURL == "" {
		storeURL = "file:" + n.store
	}
	args := append(append([]string{}, n.spec.wrap...), n.bin, "serve",
		"--http", n.spec.httpAddr, "--store", storeURL, "--log-format", "json", "--shutdown-timeout", "5s",
		// Strict: the built-in kinds accept their own values, so every
		// walk-through runs with types and patterns binding.
		"--strict")
	args = append(args, n.spec.extra...)
	r := &e2eRun{cmd: exec.Command(args[0], args[1:]...), log: &syncBuffer{}, done: make(chan struct{})}
	r.cmd.Env = e2eServeEnv()
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	// Its own process group, so cleanup reaches whatever it started.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.spec.name, err)
	}
	n.runs = append(n.runs, r)
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	var addr string
	cmbstest.EventuallyWithin(t, 30*time.Second, n.spec.name+" serves", func() bool {
		select {
		case <-r.done:
			t.Fatalf("%s exited before serving: %v\n%s", n.spec.name, r.err, r.log)
		default:
		}
		addr = e2eServingAddr(r.log.String())
		return addr != ""
	})
	n.urlMu.Lock()
	n.url = "http://" + addr
	n.urlMu.Unlock()
}

// baseURL is where the node's current run serves.
func (n *e2eNode) baseURL() string {
	n.urlMu.Lock()
	defer n.urlMu.Unlock()
	return n.url
}

// e2eServingAddr finds the address in the server's "serving OCCI" JSON log line.
func e2eServingAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving OCCI" {
			return line.Addr
		}
	}
	return ""
}

func (r *e2eRun) kill(sig syscall.Signal) {
	select {
	case <-r.done:
		return
	default:
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, sig)
	if sig == syscall.SIGKILL {
		<-r.done
	}
}

func (n *e2eNode) current() *e2eRun { return n.runs[len(n.runs)-1] }

// stop sends sig to the running process and waits for it to exit,
// returning what it exited with.
func (n *e2eNode) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	r := n.current()
	r.kill(sig)
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of %v", n.spec.name, sig)
		return nil
	}
}

// do sends a JSON request and decodes the JSON answer.
func (n *e2eNode) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, n.baseURL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/occi+json")
	req.Header.Set("Accept", "application/occi+json")
	res, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.spec.name, err)
	}
	defer cmbstest.NoError(t, res.Body.Close)
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.spec.name, err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s on %s: status %d, body is not a JSON object: %v: %s", method, path, n.spec.name, res.StatusCode, err, raw)
		}
	}
	return res.StatusCode, out
}

func (n *e2eNode) must(t *testing.T, status int, method, path string, body any) map[string]any {
	t.Helper()
	got, out := n.do(t, method, path, body)
	if got != status {
		t.Fatalf("%s %s on %s: status %d, want %d: %v", method, path, n.spec.name, got, status, out)
	}
	return out
}

// attrs returns the cmbs.<kind> attributes of the entity at path.
func (n *e2eNode) attrs(t *testing.T, path, kind string) map[string]any {
	t.Helper()
	out := n.must(t, http.StatusOK, "GET", path, nil)
	res, _ := out["resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("GET %s on %s: %v", path, n.spec.name, out)
	}
	e, _ := res[0].(map[string]any)
	a, _ := e["attributes"].(map[string]any)
	c, _ := a["cmbs"].(map[string]any)
	k, _ := c[kind].(map[string]any)
	return k
}

func (n *e2eNode) member(t *testing.T, id string) map[string]any {
	return n.attrs(t, "/cmbs/member/"+id, "member")
}

// has reports whether the node stores message id.
func (n *e2eNode) has(t *testing.T, id string) bool {
	t.Helper()
	status, _ := n.do(t, "GET", "/cmbs/message/"+id, nil)
	return status == http.StatusOK
}

// createMember creates the node's local member with a socket per layer,
// its neighbours' L1 sockets, topics and providers, and starts every layer.
func (n *e2eNode) createMember(t *testing.T, id string, sockets map[string]string, neighbors []*e2eNode, topics, providers []string) {
	t.Helper()
	n.id, n.sockets = id, sockets
	attrs := map[string]any{"local": "true", "state": "active", "topics": e2eList(topics), "providers": e2eList(providers)}
	for l, s := range sockets {
		attrs[l+"_socket"] = s
	}
	ns := []string{}
	for _, nb := range neighbors {
		ns = append(ns, nb.sockets["l1"])
	}
	attrs["neighbors_socket"] = ns
	n.must(t, http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#member", "id": id, "title": "member " + id,
		"attributes": map[string]any{"cmbs": map[string]any{"member": attrs}},
	}}})
	for _, l := range e2eLayers {
		n.action(t, http.StatusOK, "start_"+l)
	}
}

func e2eList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// action runs a member action on the node's local member.
func (n *e2eNode) action(t *testing.T, status int, action string) map[string]any {
	t.Helper()
	return n.must(t, status, "POST", "/cmbs/member/"+n.id+"?action="+action, map[string]any{})
}

// layers returns the local member's layer states.
func (n *e2eNode) layers(t *testing.T) map[string]any {
	t.Helper()
	m, _ := n.member(t, n.id)["layers"].(map[string]any)
	return m
}

// message creates a message for layer with the given extra attributes.
func (n *e2eNode) message(t *testing.T, id, layer string, extra map[string]any) {
	t.Helper()
	attrs := map[string]any{"cmbs_layer": layer, "executable": "True", "sendable": "True", "storable": "True",
		"path_history": []any{}, "message_content": map[string]any{"hello": id}}
	for k, v := range extra {
		attrs[k] = v
	}
	n.must(t, http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#message", "mixins": []any{"http://houssem.org/cmbs#" + layer}, "id": id,
		"attributes": map[string]any{"cmbs": map[string]any{"message": attrs}},
	}}})
}

// send runs send_<layer> on message id, which answers 202 at once, and
// waits until the delivery outcome is recorded on the message.
func (n *e2eNode) send(t *testing.T, id, layer string) map[string]any {
	t.Helper()
	n.must(t, http.StatusAccepted, "POST", "/cmbs/message/"+id+"?action=send_"+layer, map[string]any{})
	return n.outcome(t, id)
}

// sendPending sends message id on layer and waits until the destinations
// in settled have those statuses; those in pending must still wait.
func (n *e2eNode) sendPending(t *testing.T, id, layer string, settled map[string]string, pending ...string) {
	t.Helper()
	n.must(t, http.StatusAccepted, "POST", "/cmbs/message/"+id+"?action=send_"+layer, map[string]any{})
	var d map[string]any
	cmbstest.EventuallyWithin(t, 30*time.Second, "the outcomes of "+id+" on "+n.spec.name, func() bool {
		d, _ = n.attrs(t, "/cmbs/message/"+id, "message")["delivery"].(map[string]any)
		got := e2eStatuses(d)
		for member, status := range settled {
			if got[member] != status {
				return false
			}
		}
		return true
	})
	got := e2eStatuses(d)
	for _, member := range pending {
		if got[member] != "pending" || d["state"] != "pending" {
			t.Fatalf("%s for %s: %v, want pending", id, member, d)
		}
	}
}

// outcome waits until the delivery of message id is done and returns it.
func (n *e2eNode) outcome(t *testing.T, id string) map[string]any {
	t.Helper()
	var d map[string]any
	cmbstest.EventuallyWithin(t, 30*time.Second, "outcome of "+id+" on "+n.spec.name, func() bool {
		d, _ = n.attrs(t, "/cmbs/message/"+id, "message")["delivery"].(map[string]any)
		return d["state"] == "done"
	})
	return d
}

// e2eDestinations returns the per-member results of a delivery.
func e2eDestinations(d map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	dests, _ := d["destinations"].(map[string]any)
	for id, r := range dests {
		out[id], _ = r.(map[string]any)
	}
	return out
}

// e2eStatuses returns member -> status of a delivery.
func e2eStatuses(d map[string]any) map[string]string {
	out := map[string]string{}
	for id, r := range e2eDestinations(d) {
		out[id], _ = r["status"].(string)
	}
	return out
}

// Members of the routing scenario: A sends; B and C receive.
//
//	B: provider compute, topic weather.*
//	C: provider storage, topics weather.paris and alerts.>
var (
	e2eTopicsB    = []string{"weather.*"}
	e2eProvidersB = []string{"compute"}
	e2eTopicsC    = []string{"weather.paris", "alerts.>"}
	e2eProvidersC = []string{"storage"}
)

// e2eCase is a message A sends and the members that must get it.
type e2eCase struct {
	id, layer string
	attrs     map[string]any
	want      []string
}

func e2eRoutingCases(prefix string) []e2eCase {
	p := func(v ...string) map[string]any { return map[string]any{"providers": v} }
	tp := func(v ...string) map[string]any { return map[string]any{"topics": v} }
	e2eBoth := func(providers, topics []string) map[string]any {
		return map[string]any{"providers": providers, "topics": topics}
	}
	bc := []string{"member-b", "member-c"}
	return []e2eCase{
		{prefix + "l2", "l2", nil, bc},
		{prefix + "l31-storage", "l31", p("storage"), []string{"member-c"}},
		{prefix + "l31-either", "l31", p("compute", "storage"), bc},
		{prefix + "l31-none", "l31", p("gpu"), nil},
		{prefix + "l32-one-token", "l32", tp("weather.lyon"), []string{"member-b"}},
		{prefix + "l32-both", "l32", tp("weather.paris"), bc},
		{prefix + "l32-tail", "l32", tp("alerts.fire.north"), []string{"member-c"}},
		// weather.* needs a token after weather; alerts.> at least one.
		{prefix + "l32-none", "l32", tp("weather", "alerts"), nil},
		{prefix + "l4-c", "l4", e2eBoth([]string{"compute", "storage"}, []string{"alerts.fire"}), []string{"member-c"}},
		{prefix + "l4-b", "l4", e2eBoth([]string{"compute"}, []string{"weather.nice"}), []string{"member-b"}},
		// B serves compute but has no alerts topic; C has it but no compute.
		{prefix + "l4-none", "l4", e2eBoth([]string{"compute"}, []string{"alerts.fire"}), nil},
	}
}

// e2eRoute is how a message from A reaches a member: through which next hop
// and along which path.
type e2eRoute struct {
	via  string
	path []string
}

// e2eCheckRouting sends tc from a and checks that exactly tc.want got it:
// the outcome lists them, delivered along routes, and no one else, and
// each receiver stores the message if and only if it is meant for it.
func e2eCheckRouting(t *testing.T, a *e2eNode, receivers []*e2eNode, tc e2eCase, routes map[string]e2eRoute) {
	t.Helper()
	a.message(t, tc.id, tc.layer, tc.attrs)
	d := a.send(t, tc.id, tc.layer)
	want := map[string]string{}
	for _, id := range tc.want {
		want[id] = "delivered"
	}
	if got := e2eStatuses(d); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s on %s: outcome %v, want %v\n%v", tc.id, tc.layer, got, want, d)
	}
	if len(tc.want) == 0 && d["note"] == "" {
		t.Errorf("%s: a delivery to no one has no note: %v", tc.id, d)
	}
	dests := e2eDestinations(d)
	for _, r := range receivers {
		meant := want[r.id] != ""
		if got := r.has(t, tc.id); got != meant {
			t.Errorf("%s stores %s: %v, want %v", r.id, tc.id, got, meant)
		}
		if !meant {
			continue
		}
		rt := routes[r.id]
		if via, _ := dests[r.id]["via"].(string); via != rt.via {
			t.Errorf("%s reached %s via %q, want %q", tc.id, r.id, via, rt.via)
		}
		if got := r.attrs(t, "/cmbs/message/"+tc.id, "message")["path_history"]; !reflect.DeepEqual(got, e2eAnys(rt.path)) {
			t.Errorf("%s stored on %s with path_history %v, want %v", tc.id, r.id, got, rt.path)
		}
	}
}

func e2eAnys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// discover runs check_neighbors on n and returns its answer.
func (n *e2eNode) discover(t *testing.T) (discovered []string, unreachable map[string]any) {
	t.Helper()
	res := n.action(t, http.StatusOK, "check_neighbors")
	unreachable, _ = res["unreachable"].(map[string]any)
	return e2eStrings(res["discovered"]), unreachable
}

func e2eStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestE2EBroker runs three cmbs processes on loopback, chained A→B→C, and
// checks every layer between them, a stopped layer, a killed member and a
// restart on the same store.
func TestE2EBroker(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bin := e2eBinary.get(t)
	start := time.Now()
	spec := func(name string) e2eNodeSpec { return e2eNodeSpec{name: name, httpAddr: "127.0.0.1:0"} }
	a, b, c := e2eStartNode(t, bin, spec("A")), e2eStartNode(t, bin, spec("B")), e2eStartNode(t, bin, spec("C"))
	c.createMember(t, "member-c", e2eSockets(t), nil, e2eTopicsC, e2eProvidersC)
	b.createMember(t, "member-b", e2eSockets(t), []*e2eNode{c}, e2eTopicsB, e2eProvidersB)
	a.createMember(t, "member-a", e2eSockets(t), []*e2eNode{b}, nil, nil)
	t.Logf("three members up in %v", time.Since(start).Round(time.Millisecond))

	// Discovery through the chain: B learns C, then A learns B and,
	// through B's answer, C, which it then reaches directly.
	if got, un := b.discover(t); !reflect.DeepEqual(got, []string{"member-c"}) || len(un) != 0 {
		t.Fatalf("B discovered %v, unreachable %v", got, un)
	}
	if got, un := a.discover(t); !reflect.DeepEqual(got, []string{"member-b", "member-c"}) || len(un) != 0 {
		t.Fatalf("A discovered %v, unreachable %v", got, un)
	}
	for _, m := range []*e2eNode{b, c} {
		rec := a.member(t, m.id)
		if rec["local"] != "false" || rec["l1_socket"] != m.sockets["l1"] || rec["l2_socket"] != m.sockets["l2"] || rec["via"] != "" {
			t.Errorf("A's record of %s: %v", m.id, rec)
		}
	}
	if rec := c.member(t, "member-b"); rec["local"] != "false" || rec["l1_socket"] != b.sockets["l1"] {
		t.Errorf("C did not record B when B asked it: %v", rec)
	}
	if rec := b.member(t, "member-a"); rec["local"] != "false" || rec["l1_socket"] != a.sockets["l1"] {
		t.Errorf("B did not record A when A asked it: %v", rec)
	}
	if state, _ := a.member(t, "member-a")["neighbors_state"].(map[string]any); state[b.sockets["l1"]] != "reachable: member-b" {
		t.Errorf("A's neighbours state: %v", state)
	}

	direct := map[string]e2eRoute{
		"member-b": {path: []string{"member-a", "member-b"}},
		"member-c": {path: []string{"member-a", "member-c"}},
	}
	for _, tc := range e2eRoutingCases("e2e-") {
		t.Run(tc.id, func(t *testing.T) {
			e2eCheckRouting(t, a, []*e2eNode{b, c}, tc, direct)
		})
	}

	t.Run("l1 request and reply", func(t *testing.T) {
		a.message(t, "e2e-l1", "l1", map[string]any{"l1_socket_receiver_member": c.sockets["l1"], "message_content": "ping"})
		d := a.send(t, "e2e-l1", "l1")
		if got := e2eStatuses(d); !reflect.DeepEqual(got, map[string]string{"member-c": "delivered"}) {
			t.Fatalf("outcome %v", d)
		}
		result, _ := a.attrs(t, "/cmbs/message/e2e-l1", "message")["result"].(map[string]any)
		if result["member"] != "member-c" || result["content"] != "ping" || result["status"] != "executed" {
			t.Errorf("the reply is not in the sender's result: %v", result)
		}
		if !c.has(t, "e2e-l1") || b.has(t, "e2e-l1") {
			t.Errorf("l1 message stored on C: %v, on B: %v; want only C", c.has(t, "e2e-l1"), b.has(t, "e2e-l1"))
		}
	})

	t.Run("stop and start a layer", func(t *testing.T) {
		b.action(t, http.StatusOK, "stop_l2")
		b.action(t, http.StatusConflict, "stop_l2")
		if got := b.layers(t)["l2"]; got != "stopped" {
			t.Errorf("B's l2 after stop_l2: %v", got)
		}
		// Store and forward: what A sends while B's l2 is down reaches B
		// once it is up.
		a.message(t, "e2e-l2-stopped", "l2", nil)
		a.sendPending(t, "e2e-l2-stopped", "l2", map[string]string{"member-c": "delivered"}, "member-b")
		if b.has(t, "e2e-l2-stopped") {
			t.Error("B stored a message sent while its l2 was stopped")
		}
		b.action(t, http.StatusOK, "start_l2")
		b.action(t, http.StatusConflict, "start_l2")
		if got := e2eStatuses(a.outcome(t, "e2e-l2-stopped")); got["member-b"] != "delivered" || !b.has(t, "e2e-l2-stopped") {
			t.Fatalf("the message sent while B's l2 was down, once it is up: %v", got)
		}
		a.message(t, "e2e-l2-restarted", "l2", nil)
		if got := e2eStatuses(a.send(t, "e2e-l2-restarted", "l2")); got["member-b"] != "delivered" || got["member-c"] != "delivered" {
			t.Fatalf("after start_l2: %v", got)
		}
		if !b.has(t, "e2e-l2-restarted") {
			t.Error("B does not store the message sent after start_l2")
		}
	})

	t.Run("member down", func(t *testing.T) {
		// l4 stopped, so the restart below shows only running layers come back.
		c.action(t, http.StatusOK, "stop_l4")
		_ = c.stop(t, syscall.SIGKILL) // killed: its exit status says only that
		// Kept for C, which gets it when it is back (next subtest).
		a.message(t, "e2e-down", "l2", nil)
		a.sendPending(t, "e2e-down", "l2", map[string]string{"member-b": "delivered"}, "member-c")
		began := time.Now()
		_, un := a.discover(t)
		t.Logf("check_neighbors with C down answered in %v", time.Since(began).Round(time.Millisecond))
		if _, ok := un[c.sockets["l1"]]; !ok {
			t.Errorf("C not reported unreachable: %v", un)
		}
		state, _ := a.member(t, "member-a")["neighbors_state"].(map[string]any)
		if s, _ := state[c.sockets["l1"]].(string); !strings.HasPrefix(s, "unreachable") {
			t.Errorf("A's neighbours state for C: %q", s)
		}
	})

	t.Run("restart keeps data and running layers", func(t *testing.T) {
		c.start(t)
		want := map[string]any{"l1": "running", "l2": "running", "l31": "running", "l32": "running", "l4": "stopped"}
		if got := c.layers(t); !reflect.DeepEqual(got, want) {
			t.Errorf("C's layers after restart: %v, want %v", got, want)
		}
		for _, id := range []string{"e2e-l2", "e2e-l32-tail", "e2e-l1"} {
			if !c.has(t, id) {
				t.Errorf("C lost message %s in the restart", id)
			}
		}
		// What A sent while C was down reaches it now.
		if got := e2eStatuses(a.outcome(t, "e2e-down")); got["member-c"] != "delivered" || !c.has(t, "e2e-down") {
			t.Errorf("the message sent while C was down, once it is back: %v", got)
		}
		if rec := c.member(t, "member-b"); rec["l1_socket"] != b.sockets["l1"] {
			t.Errorf("C lost its record of B: %v", rec)
		}
		// A finds C directly again.
		if _, un := a.discover(t); len(un) != 0 {
			t.Errorf("after C's restart, unreachable: %v", un)
		}
		if via := a.member(t, "member-c")["via"]; via != "" {
			t.Errorf("A reaches C via %q after rediscovery", via)
		}
		a.message(t, "e2e-after-restart", "l32", map[string]any{"topics": []string{"weather.paris"}})
		if got := e2eStatuses(a.send(t, "e2e-after-restart", "l32")); got["member-b"] != "delivered" || got["member-c"] != "delivered" {
			t.Fatalf("after C's restart: %v", got)
		}
		a.message(t, "e2e-l4-stopped", "l4", e2eBoth("storage", "alerts.x"))
		a.sendPending(t, "e2e-l4-stopped", "l4", nil, "member-c")
		c.action(t, http.StatusOK, "start_l4")
		if got := e2eStatuses(a.outcome(t, "e2e-l4-stopped")); got["member-c"] != "delivered" {
			t.Errorf("l4 to C, sent while its l4 was stopped, once started: %v", got)
		}
		a.message(t, "e2e-l4-started", "l4", e2eBoth("storage", "alerts.x"))
		if got := e2eStatuses(a.send(t, "e2e-l4-started", "l4")); !reflect.DeepEqual(got, map[string]string{"member-c": "delivered"}) {
			t.Errorf("l4 to C after start_l4: %v", got)
		}
	})

	// SIGTERM shuts each down cleanly, layers running.
	for _, n := range []*e2eNode{a, b, c} {
		if err := n.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", n.spec.name, err)
		}
	}
	t.Logf("TestE2EBroker scenario took %v", time.Since(start).Round(time.Millisecond))
}

func e2eBoth(provider, topic string) map[string]any {
	return map[string]any{"providers": []string{provider}, "topics": []string{topic}}
}

// wtFreeBase finds a PORT_BASE whose ports (base+offset) are all free.
func wtFreeBase(t *testing.T, offsets ...int) int {
	t.Helper()
	for range 50 {
		base := 20000 + e2eFreePort(t)%20000
		free := true
		for _, o := range offsets {
			free = free && e2ePortFree(fmt.Sprintf("127.0.0.1:%d", base+o))
		}
		if free {
			return base
		}
	}
	t.Fatal("no free range of ports for the script")
	return 0
}

// TestE2EScripts runs examples/run_test.sh against a server the test
// started (CMBS_URL) and examples/demo.sh on its own, each with a
// PORT_BASE whose ports are free, and checks their summaries; then that a
// port taken stops run_test.sh with a line saying so.
func TestE2EScripts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("no curl to run the scripts with")
	}
	bin := e2eBinary.get(t)
	script := func(name string, env ...string) (string, error) {
		cmd := exec.Command("bash", "../../examples/"+name)
		cmd.Env = append(e2eServeEnv(), append(env, "CMBS_BIN="+bin)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	t.Run("run_test.sh", func(t *testing.T) {
		t.Parallel()
		// PORT_BASE moves 5010-5040 and 6010 (the neighbour, not running).
		base := wtFreeBase(t, 10, 20, 31, 32, 40, 1010)
		n := e2eStartNode(t, bin, e2eNodeSpec{name: "walk-through", httpAddr: "127.0.0.1:0"})
		n.id = "016ad860-2a9a-504f-8861-aeafd0b2ae29"
		out, err := script("run_test.sh", "CMBS_URL="+n.baseURL(), fmt.Sprintf("PORT_BASE=%d", base))
		if err != nil || !strings.HasSuffix(out, "run_test.sh: 23 calls, 23 answered 2xx with JSON\n") {
			t.Fatalf("run_test.sh: %v\n%s", err, out)
		}
		// check_neighbors toward the neighbour that is not running recorded
		// it as unreachable, and every layer started ended stopped.
		state, _ := n.member(t, n.id)["neighbors_state"].(map[string]any)
		if s, _ := state[fmt.Sprintf("tcp://127.0.0.1:%d", base+1010)].(string); len(state) != 1 || !strings.HasPrefix(s, "unreachable") {
			t.Errorf("neighbours state: %v", state)
		}
		for _, l := range e2eLayers {
			if got := n.layers(t)[l]; got != "stopped" {
				t.Errorf("layer %s after the walk-through: %v", l, got)
			}
		}
		for _, id := range []string{"0101d860-2a9a-504f-8861-aeafd0b20101", "0102d860-2a9a-504f-8861-aeafd0a10201"} {
			if !n.has(t, id) {
				t.Errorf("message %s not stored", id)
			}
		}
		// One member kind and one message kind, whatever the script re-posted.
		cats := n.must(t, http.StatusOK, "GET", "/-/", nil)
		kinds := map[string]int{}
		for _, k := range cats["kinds"].([]any) {
			if km, _ := k.(map[string]any); km["scheme"] == "http://houssem.org/cmbs#" {
				kinds[km["term"].(string)]++
			}
		}
		if kinds["member"] != 1 || kinds["message"] != 1 {
			t.Errorf("cmbs kinds after the walk-through: %v, want one member and one message kind", kinds)
		}

		// A port taken stops the script before anything is sent.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+20))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ln.Close() }()
		out, err = script("run_test.sh", "CMBS_URL="+n.baseURL(), fmt.Sprintf("PORT_BASE=%d", base))
		if err == nil || !strings.Contains(out, fmt.Sprintf("run_test.sh: port %d (the member's sockets) is taken", base+20)) {
			t.Errorf("run_test.sh with a port taken: %v\n%s", err, out)
		}
	})

	t.Run("demo.sh", func(t *testing.T) {
		t.Parallel()
		base := wtFreeBase(t, 2091, 2092, 2093, 110, 120, 131, 132, 140, 210, 220, 231, 232, 240, 310, 320, 331, 332, 340)
		out, err := script("demo.sh", fmt.Sprintf("PORT_BASE=%d", base))
		if err != nil || !strings.HasSuffix(out, "demo.sh: 5 messages sent, 6 deliveries, 0 failed\n") {
			t.Fatalf("demo.sh: %v\n%s", err, out)
		}
	})
}
