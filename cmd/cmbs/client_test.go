package main

import (
	"github.com/houssem/cmbs/broker/api"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/broker/notify"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
	"github.com/houssem/cmbs/layers/layertest"
	"github.com/houssem/cmbs/occi/auth"
)

// Golden files are rewritten with CMBS_UPDATE_GOLDEN=1 go test -run TestClient.
const updateGoldenEnv = "CMBS_UPDATE_GOLDEN"

// clServer is a cmbs server in the test's process, wired as serve wires
// it, with loopback sockets reserved for the member it will get.
type clServer struct {
	*brokertest.Member
	name string
}

// clOptions are what a test server has beyond the OCCI interface and
// the broker.
type clOptions struct {
	// users, when not nil, puts the server behind authentication.
	users *auth.Users
	// events serves /events from a notifier fed by the store and the
	// broker.
	events bool
}

// clStartServer runs a server with an embedded store in t.TempDir(); its
// member is left for the commands under test to create.
func clStartServer(t *testing.T, name string, opts clOptions) *clServer {
	t.Helper()
	o := brokertest.Options{ID: name, NoMember: true}
	if opts.events {
		o.Events = &notify.Config{}
	}
	if opts.users != nil {
		o.Wrap = opts.users.Middleware
	}
	return &clServer{Member: brokertest.Start(t, o), name: name}
}

// socketFlags are member create's flags for the server's sockets.
func (s *clServer) socketFlags() []string {
	var out []string
	for _, l := range cli.Layers() {
		out = append(out, "--"+l, s.Sockets[broker.Layer(l)])
	}
	return out
}

// clRun runs one cmbs command line against server (when not empty).
func clRun(t *testing.T, ctx context.Context, server string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if server != "" {
		args = append(append([]string{}, args...), "--server", server)
	}
	var out, errb bytes.Buffer
	err = run(ctx, args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// clNormaliser replaces what changes from run to run (URLs, ports,
// times) with stable names.
type clNormaliser struct {
	replacer *strings.Replacer
}

var (
	clPortRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	clTimeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	clColsRE = regexp.MustCompile(` {2,}`)
)

func clNormalise(servers ...*clServer) clNormaliser {
	var pairs []string
	for _, s := range servers {
		pairs = append(pairs, s.URL, "http://"+s.name)
		for l, socket := range s.Sockets {
			pairs = append(pairs, socket, "tcp://"+s.name+"-"+string(l))
		}
	}
	return clNormaliser{replacer: strings.NewReplacer(pairs...)}
}

// text normalises output and lines its columns up again, since the stable
// names are not as wide as what they replace.
func (n clNormaliser) text(s string) string {
	s = n.replacer.Replace(s)
	s = clPortRE.ReplaceAllString(s, "127.0.0.1:PORT")
	s = clTimeRE.ReplaceAllString(s, "TIME")
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			// Indented lines (JSON) keep their spaces; a line without
			// tabs ends a block of columns.
			line = clColsRE.ReplaceAllString(line, "\t")
		}
		fmt.Fprint(tw, line)
	}
	_ = tw.Flush() // into a bytes.Buffer, which does not fail
	return buf.String()
}

// clGolden compares got with testdata/NAME.golden.
func clGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if os.Getenv(updateGoldenEnv) != "" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with %s=1 to create it)", err, updateGoldenEnv)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with %s=1 to accept):\n--- got\n%s\n--- want\n%s", path, updateGoldenEnv, got, want)
	}
}

// clTranscript records command lines and their normalised output, as a
// reader of the README would see them.
type clTranscript struct {
	t    *testing.T
	norm clNormaliser
	buf  strings.Builder
}

// run runs args on server s, expecting success (or, when wantErr is set,
// an error containing it) and records both.
func (tr *clTranscript) run(s *clServer, wantErr string, args ...string) string {
	tr.t.Helper()
	stdout, _, err := clRun(tr.t, tr.t.Context(), s.URL, args...)
	fmt.Fprintf(&tr.buf, "%s$ cmbs %s\n", s.name, tr.norm.text(clShellJoin(args)))
	tr.buf.WriteString(tr.norm.text(stdout))
	switch {
	case wantErr == "" && err != nil:
		tr.t.Fatalf("cmbs %s: %v\n%s", strings.Join(args, " "), err, stdout)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		tr.t.Fatalf("cmbs %s: error %v, want one containing %q", strings.Join(args, " "), err, wantErr)
	case err != nil:
		fmt.Fprintf(&tr.buf, "cmbs: %s\n", tr.norm.text(err.Error()))
	}
	tr.buf.WriteString("\n")
	return stdout
}

var clShellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=,@+-]+$`)

// clShellJoin quotes args as a shell user would type them.
func clShellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if clShellSafe.MatchString(a) {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

// TestClientDemo is examples/demo.sh in CLI form: members A, B and C where
// A knows B and B knows C; discovery lets A reach C through B; A sends on
// every layer.
func TestClientDemo(t *testing.T) {
	// Not in parallel with the others: its transcript is compared whole,
	// and discovery among in-process members waits 300 ms for an answer
	// (brokertest's default), which a busy machine can miss.
	a := clStartServer(t, "a", clOptions{})
	b := clStartServer(t, "b", clOptions{})
	c := clStartServer(t, "c", clOptions{})
	tr := &clTranscript{t: t, norm: clNormalise(a, b, c)}

	tr.run(a, "", append([]string{"member", "create", "--id", "member-a", "--neighbor", b.Sockets["l1"]}, a.socketFlags()...)...)
	tr.run(b, "", append([]string{"member", "create", "--id", "member-b", "--neighbor", c.Sockets["l1"],
		"--topic", "weather.*", "--provider", "compute"}, b.socketFlags()...)...)
	tr.run(c, "", append([]string{"member", "create", "--id", "member-c", "--topic", "weather.paris,news",
		"--provider", "storage"}, c.socketFlags()...)...)
	for _, s := range []*clServer{a, b, c} {
		tr.run(s, "", "member", "start", "all")
	}
	tr.run(a, "409 Conflict: layer l1 is already running", "member", "start", "l1")
	tr.run(a, "", "member", "start", "all")
	tr.run(b, "", "member", "discover")
	tr.run(a, "", "member", "discover")
	tr.run(a, "", "members")

	tr.run(a, "", "message", "send", "--layer", "l1", "--id", "demo-l1", "--to", c.Sockets["l1"], "--content", "demo l1", "--wait")
	tr.run(a, "", "message", "send", "--layer", "l2", "--id", "demo-l2", "--content", `{"text":"demo l2"}`, "--wait")
	tr.run(a, "", "message", "send", "--layer", "l31", "--id", "demo-l31", "--provider", "storage", "--content", "demo l31", "--wait")
	tr.run(a, "", "message", "send", "--layer", "l32", "--id", "demo-l32", "--topic", "weather.lyon", "--content", "demo l32", "--wait")
	tr.run(a, "", "message", "send", "--layer", "l4", "--id", "demo-l4", "--provider", "compute,storage", "--topic", "news", "--content", "demo l4", "--wait")
	tr.run(a, "", "message", "send", "--layer", "l32", "--id", "nobody", "--topic", "sports", "--content", "anyone?", "--wait")
	tr.run(a, "", "message", "show", "demo-l1")
	tr.run(c, "", "message", "show", "demo-l4")
	tr.run(a, "", "member", "stop", "l4")
	tr.run(a, "", "members")
	clGolden(t, "client_demo", tr.buf.String())

	t.Run("json", func(t *testing.T) {
		out, _, err := clRun(t, t.Context(), a.URL, "members", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Resources []cli.Entity `json:"resources"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("members -o json: %v\n%s", err, out)
		}
		var ids []string
		for _, e := range doc.Resources {
			ids = append(ids, e.ID)
		}
		if got := strings.Join(ids, ","); got != "member-a,member-b,member-c" {
			t.Errorf("members -o json lists %s", got)
		}

		out, _, err = clRun(t, t.Context(), a.URL, "message", "show", "demo-l2", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Resources []cli.Entity `json:"resources"`
		}
		if err := json.Unmarshal([]byte(out), &msg); err != nil || len(msg.Resources) != 1 {
			t.Fatalf("message show -o json: %v\n%s", err, out)
		}
		d, err := cli.DeliveryOf(&msg.Resources[0])
		if err != nil || !d.Done() || d.Delivered != 2 {
			t.Errorf("delivery of demo-l2 = %+v, %v; want done with 2 delivered", d, err)
		}
		if content, _ := msg.Resources[0].Attr(api.MessageContent); !jsonEqual(content, map[string]any{"text": "demo l2"}) {
			t.Errorf("content = %#v, want the JSON object given", content)
		}

		out, _, err = clRun(t, t.Context(), a.URL, "member", "start", "all", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var started []map[string]any
		if err := json.Unmarshal([]byte(out), &started); err != nil || len(started) != 1 || started[0]["layer"] != "l4" {
			t.Errorf("member start all -o json = %v (%v), want the one l4 start", out, err)
		}

		out, _, err = clRun(t, t.Context(), a.URL, "message", "send", "--layer", "l2", "--content", "x", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var sent cli.Locations
		if err := json.Unmarshal([]byte(out), &sent); err != nil || len(sent.Paths()) != 1 || !strings.HasPrefix(sent.Paths()[0], api.MessageLocation) {
			t.Errorf("message send -o json = %s (%v), want the message's location", out, err)
		}
	})
}

func jsonEqual(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return bytes.Equal(ra, rb)
}

func TestClientCategories(t *testing.T) {
	t.Parallel()
	s := clStartServer(t, "s", clOptions{})
	norm := clNormalise(s)
	out, _, err := clRun(t, t.Context(), s.URL, "categories", "list")
	if err != nil {
		t.Fatal(err)
	}
	clGolden(t, "client_categories_list", norm.text(out))

	// The original's request files, as they are.
	tests := []struct {
		file    string
		wantErr string
		golden  string
	}{
		{file: "../../examples/put_providers.json", wantErr: "404 Not Found: no kind or mixin http://schemas.ogf.org/occi/infrastructure#compute is registered (field providers[0].OCCI_ID)"},
		{file: "../../examples/post_categories.json", golden: "client_categories_apply"},
		{file: "../../examples/put_providers.json", golden: "client_categories_apply_providers"},
		{file: "../../examples/put_provider_cmbs_member.json", golden: "client_categories_apply_provider"},
		{file: "../../examples/post_member.json", wantErr: "400 Bad Request"},
		{file: "testdata/no-such-file.json", wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file)+" "+tt.golden, func(t *testing.T) {
			out, _, err := clRun(t, t.Context(), s.URL, "categories", "apply", tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("apply %s: error %v, want %q", tt.file, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			clGolden(t, tt.golden, norm.text(out))
		})
	}

	t.Run("stdin and json", func(t *testing.T) {
		doc := `{"mixins":[{"term":"fast","scheme":"http://example.org/cmbs/test#","title":"fast lane","location":"/fast/"}]}`
		var stdout bytes.Buffer
		err := run(t.Context(), []string{"categories", "apply", "-", "-o", "json", "--server", s.URL}, strings.NewReader(doc), &stdout, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		var got cli.Categories
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || len(got.Mixins) != 1 || got.Mixins[0].Location != "/fast/" {
			t.Fatalf("apply - -o json = %s (%v)", stdout.String(), err)
		}
		out, _, err := clRun(t, t.Context(), s.URL, "categories", "list", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var all cli.Categories
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range all.Mixins {
			found = found || m.ID() == "http://example.org/cmbs/test#fast"
		}
		if !found {
			t.Errorf("categories list -o json does not show the mixin applied:\n%s", out)
		}
	})
}

// TestClientErrors checks that usage mistakes exit with usage errors and
// the server's refusals come back as its problem detail.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	s := clStartServer(t, "s", clOptions{})
	if _, _, err := clRun(t, t.Context(), s.URL, append([]string{"member", "create", "--id", "m"}, s.socketFlags()...)...); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("http://127.0.0.1:%d", layertest.FreePort(t))
	tests := []struct {
		name    string
		server  string
		args    []string
		usage   bool
		wantErr string
	}{
		{name: "no subcommand", args: []string{"member"}, usage: true},
		{name: "unknown subcommand", args: []string{"message", "shout"}, usage: true},
		{name: "bad output", args: []string{"members", "-o", "yaml"}, usage: true},
		{name: "bad server", server: "ftp://x", args: []string{"members"}, usage: true},
		{name: "bad user", args: []string{"members", "--user", "nopassword"}, usage: true},
		{name: "stray argument", args: []string{"members", "now"}, usage: true},
		{name: "no layer", args: []string{"message", "send", "--content", "x"}, usage: true},
		{name: "unknown layer", args: []string{"member", "start", "l5"}, usage: true},
		{name: "l1 without --to", args: []string{"message", "send", "--layer", "l1", "--content", "x"}, usage: true},
		{name: "--to off l1", args: []string{"message", "send", "--layer", "l2", "--to", "tcp://127.0.0.1:1", "--content", "x"}, usage: true},
		{name: "no content", args: []string{"message", "send", "--layer", "l2"}, usage: true},
		{name: "show without id", args: []string{"message", "show"}, usage: true},
		{name: "negative count", args: []string{"watch", "--count", "-1"}, usage: true},
		{name: "missing message", args: []string{"message", "show", "nope"},
			wantErr: "404 Not Found: "},
		{name: "missing member", args: []string{"member", "start", "l1", "--id", "nope"},
			wantErr: "404 Not Found: "},
		{name: "layer not running", args: []string{"member", "stop", "l2"},
			wantErr: "stop l2 of m: 409 Conflict: layer l2 is not running (field action)"},
		{name: "second local member", args: []string{"member", "create", "--id", "m2"},
			wantErr: "409 Conflict: /cmbs/member/m is already the local member of this server"},
		{name: "bad socket", args: []string{"member", "create", "--id", "m3", "--local=false", "--l1", "udp://x"},
			wantErr: "400 Bad Request: cmbs.member.l1_socket"},
		{name: "duplicate message", args: []string{"message", "send", "--layer", "l2", "--id", "twice", "--content", "x"}},
		{name: "duplicate message again", args: []string{"message", "send", "--layer", "l2", "--id", "twice", "--content", "x"},
			wantErr: "409 Conflict"},
		{name: "server down", server: dead, args: []string{"members"}, wantErr: "cannot reach " + dead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := s.URL
			if tt.server != "" {
				server = tt.server
			}
			_, _, err := clRun(t, t.Context(), server, tt.args...)
			switch {
			case tt.usage:
				if !errors.Is(err, errUsage) {
					t.Errorf("cmbs %q = %v, want a usage error", tt.args, err)
				}
			case tt.wantErr == "":
				if err != nil {
					t.Errorf("cmbs %q = %v", tt.args, err)
				}
			default:
				if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("cmbs %q = %v, want an error containing %q", tt.args, err, tt.wantErr)
				}
			}
		})
	}
}

// TestClientDeliveryFailure sends to a member that is not there: --wait
// prints the outcome and the command fails.
func TestClientDeliveryFailure(t *testing.T) {
	t.Parallel()
	s := clStartServer(t, "s", clOptions{})
	ctx := t.Context()
	if _, _, err := clRun(t, ctx, s.URL, append([]string{"member", "create", "--id", "m"}, s.socketFlags()...)...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := clRun(t, ctx, s.URL, "member", "start", "all"); err != nil {
		t.Fatal(err)
	}
	nowhere := layertest.FreeEndpoint(t)
	out, _, err := clRun(t, ctx, s.URL, "message", "send", "--layer", "l1", "--id", "lost", "--to", nowhere, "--content", "hello?", "--expires", "1s", "--wait")
	if err == nil || !strings.Contains(err.Error(), "message lost: 1 of 1 deliveries failed") {
		t.Fatalf("send to nowhere = %v, want a failure", err)
	}
	for _, want := range []string{"message lost on l1: done, 0 delivered, 0 failed, 1 expired", nowhere + "  expired", "no ZeroMQ connection"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = clRun(t, ctx, s.URL, "message", "show", s.URL+"/cmbs/message/lost")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "l1_socket_receiver_member  "+nowhere) || !strings.Contains(out, "1 expired") {
		t.Errorf("message show by URL:\n%s", out)
	}
	// A wait that cannot finish in time says so.
	if _, _, err := clRun(t, ctx, s.URL, "message", "send", "--layer", "l1", "--id", "slow", "--to", nowhere, "--content", "x", "--wait", "--timeout", "1ms"); err == nil || !strings.Contains(err.Error(), "after 1ms") {
		t.Errorf("send --wait --timeout 1ms = %v, want a timeout", err)
	}
}

// TestClientAuthAndEnvironment reaches a server behind authentication with
// the server and user given by flags or the environment.
func TestClientAuthAndEnvironment(t *testing.T) {
	s := clStartServer(t, "s", clOptions{users: brokertest.Users(t, "user_1", "pass")})
	t.Setenv(envServer, "")
	t.Setenv(envUser, "")

	if _, _, err := clRun(t, t.Context(), s.URL, "members"); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: this server requires HTTP Basic authentication") {
		t.Errorf("members without a user = %v, want the server's 401", err)
	}
	if _, _, err := clRun(t, t.Context(), s.URL, "members", "--user", "user_1:wrong"); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: wrong user name or password") {
		t.Errorf("members with a wrong password = %v, want the server's 401", err)
	}
	out, _, err := clRun(t, t.Context(), s.URL, "members", "--user", "user_1:pass")
	if err != nil || !strings.HasPrefix(out, "ID ") {
		t.Errorf("members with the user = %q, %v", out, err)
	}

	t.Setenv(envServer, s.URL)
	t.Setenv(envUser, "user_1:pass")
	out, _, err = clRun(t, t.Context(), "", "categories", "list")
	if err != nil || !strings.Contains(out, "http://houssem.org/cmbs#member") {
		t.Errorf("categories list with CMBS_SERVER and CMBS_USER = %q, %v", out, err)
	}
}

func TestClientHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantStdout string
		wantStderr string
	}{
		{args: []string{"help"}, wantStdout: "Client commands"},
		{args: []string{"help", "client"}, wantStdout: "--server URL (CMBS_SERVER"},
		{args: []string{"member", "--help"}, wantStdout: "start LAYER|all"},
		{args: []string{"help", "client"}, wantStdout: "subscription create"},
		{args: []string{"message", "resend", "--help"}, wantStderr: "Example:\n  cmbs message resend"},
		{args: []string{"members", "--help"}, wantStderr: "Example:\n  cmbs members"},
		{args: []string{"completion", "bash", "--help"}, wantStderr: "source <(cmbs completion bash)"},
		{args: []string{"member", "create", "--help"}, wantStderr: "--neighbor"},
		{args: []string{"message", "send", "-h"}, wantStderr: "--wait"},
		{args: []string{"watch", "--help"}, wantStderr: "--server"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, err := clRun(t, t.Context(), "", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q", stdout, stderr, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
