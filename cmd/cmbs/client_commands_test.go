package main

import (
	"github.com/houssem/cmbs/broker/api"

	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
	"github.com/houssem/cmbs/layers/layertest"
)

// TestClientCommands runs the commands beyond the demo against two
// servers shared by the subtests, in order: members with picked ports,
// member list, show and delete, message resend, list and delete,
// subscriptions, categories delete, errors as JSON.
func TestClientCommands(t *testing.T) {
	a := clStartServer(t, "a", clOptions{events: true})
	b := clStartServer(t, "b", clOptions{})
	must := func(t *testing.T, s *clServer, args ...string) string {
		t.Helper()
		out, stderr, err := clRun(t, t.Context(), s.URL, args...)
		if err != nil {
			t.Fatalf("cmbs %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	fails := func(t *testing.T, s *clServer, want string, args ...string) string {
		t.Helper()
		out, _, err := clRun(t, t.Context(), s.URL, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("cmbs %s = %v, want an error containing %q", strings.Join(args, " "), err, want)
		}
		return out
	}

	var l1B string // member-b's l1 socket, picked by member create
	t.Run("member create picks free ports", func(t *testing.T) {
		out := must(t, b, "member", "create", "--id", "member-b")
		for _, l := range cli.Layers() {
			if !strings.Contains(out, l+" ") || !strings.Contains(out, "tcp://127.0.0.1:") {
				t.Fatalf("member create without sockets printed no %s socket:\n%s", l, out)
			}
		}
		var doc struct{ Resources []cli.Entity }
		if err := json.Unmarshal([]byte(must(t, b, "member", "show", "-o", "json")), &doc); err != nil || len(doc.Resources) != 1 {
			t.Fatalf("member show -o json: %v", err)
		}
		l1B = doc.Resources[0].Text(api.Layer("l1").SocketAttr())
		if !strings.Contains(out, l1B) {
			t.Errorf("the printed sockets are not the member's: %s\n%s", l1B, out)
		}
		must(t, a, "member", "create", "--id", "member-a", "--neighbor", l1B)
		must(t, a, "member", "start", "all")
		must(t, b, "member", "start", "all")
		must(t, a, "member", "discover")
		// A socket given leaves the others out rather than defaulted.
		out = must(t, b, "member", "create", "--id", "remote", "--local=false", "--l1", "tcp://10.0.0.9:5010")
		if strings.Contains(out, "SOCKET") {
			t.Errorf("sockets were picked although --l1 was given:\n%s", out)
		}
		if got := must(t, b, "member", "show", "remote"); !strings.Contains(clColsRE.ReplaceAllString(got, "  "), "l2_socket  -") {
			t.Errorf("member show remote: l2_socket should be empty:\n%s", got)
		}
	})

	t.Run("member list show delete", func(t *testing.T) {
		list := must(t, a, "member", "list")
		if !strings.Contains(list, "member-a  true") || !strings.Contains(list, "member-b  false") {
			t.Errorf("member list:\n%s", list)
		}
		if got := must(t, a, "members"); got != list {
			t.Errorf("members differs from member list:\n%s", got)
		}
		show := must(t, a, "member", "show")
		for _, want := range []string{"ID  member-a", "LAYER  SOCKET", "l1     tcp://127.0.0.1:", "running", "NEIGHBOUR", "reachable: member-b"} {
			if !strings.Contains(clColsRE.ReplaceAllString(show, "  "), clColsRE.ReplaceAllString(want, "  ")) {
				t.Errorf("member show lacks %q:\n%s", want, show)
			}
		}
		must(t, b, "member", "delete", "remote")
		fails(t, b, "404", "member", "show", "remote")
	})

	t.Run("message resend list delete", func(t *testing.T) {
		out := must(t, a, "message", "send", "--layer", "l2", "--id", "m1", "--content", "hello", "--wait")
		if !strings.Contains(out, "done, 1 delivered, 0 failed") {
			t.Errorf("send:\n%s", out)
		}
		fails(t, a, "cmbs message resend m1", "message", "send", "--layer", "l2", "--id", "m1", "--content", "hello")
		out = must(t, a, "message", "resend", "m1", "--wait")
		if !strings.Contains(out, "delivered (duplicate)") {
			t.Errorf("resend of a message member-b has:\n%s", out)
		}
		must(t, a, "message", "send", "--layer", "l1", "--id", "m2", "--to", l1B, "--content", `{"n":1}`, "--wait")
		list := must(t, a, "message", "list")
		if !strings.Contains(list, "m1  l2") || !strings.Contains(list, `m2  l1`) || !strings.Contains(list, `{"n":1}`) {
			t.Errorf("message list:\n%s", list)
		}
		if got := must(t, a, "message", "list", "--layer", "l1"); strings.Contains(got, "m1") || !strings.Contains(got, "m2") {
			t.Errorf("message list --layer l1:\n%s", got)
		}
		if got := must(t, b, "message", "list"); !strings.Contains(got, "m1") || !strings.Contains(got, "member-a") {
			t.Errorf("received messages on b:\n%s", got)
		}
		if got := must(t, a, "message", "delete", "m1", "m2"); got != "deleted message m1\ndeleted message m2\n" {
			t.Errorf("message delete: %q", got)
		}
		fails(t, a, "404", "message", "show", "m1")
		fails(t, a, "404", "message", "resend", "m1")
	})

	t.Run("subscriptions", func(t *testing.T) {
		must(t, a, "subscription", "create", "--id", "hook", "--callback", "http://127.0.0.1:1/hook",
			"--event", "created,message_received", "--topic", "weather.>", "--expires", "1h")
		list := must(t, a, "subscription", "list")
		if !strings.Contains(list, "hook  active  http://127.0.0.1:1/hook  created,message_received") {
			t.Errorf("subscription list:\n%s", list)
		}
		show := must(t, a, "subscriptions", "show", "hook")
		if !strings.Contains(show, "topics") || !strings.Contains(show, "weather.>") {
			t.Errorf("subscription show:\n%s", show)
		}
		fails(t, a, "usage", "subscription", "create", "--id", "x")
		fails(t, a, "--expires", "subscription", "create", "--callback", "http://x/", "--expires", "soon")
		must(t, a, "subscription", "delete", "hook")
		fails(t, a, "404", "subscription", "show", "hook")
	})

	t.Run("categories delete", func(t *testing.T) {
		doc := `{"mixins":[{"term":"fast","scheme":"http://example.org/cmbs/test#","location":"/fast/"}]}`
		if err := run(t.Context(), []string{"categories", "apply", "-", "--server", a.URL}, strings.NewReader(doc), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if got := must(t, a, "categories", "delete", "http://example.org/cmbs/test#fast"); got != "deleted mixin http://example.org/cmbs/test#fast\n" {
			t.Errorf("categories delete: %q", got)
		}
		fails(t, a, "no category http://example.org/cmbs/test#fast", "categories", "delete", "http://example.org/cmbs/test#fast")
	})

	t.Run("wait shows progress on a terminal", func(t *testing.T) {
		// An l1 send to nowhere takes the client's attempts: progress shows.
		var stdout, stderr bytes.Buffer
		term := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, terminal: func(any) bool { return true }}
		err := term.run(t.Context(), []string{"message", "send", "--layer", "l1", "--id", "slow", "--to", layertest.FreeEndpoint(t),
			"--content", "x", "--expires", "1s", "--wait", "--server", a.URL})
		if err == nil || !strings.Contains(stderr.String(), "\r\033[Kmessage slow: ") || !strings.HasSuffix(stderr.String(), "\r\033[K") {
			t.Errorf("send --wait on a terminal: %v, stderr %q", err, stderr.String())
		}
		if strings.Contains(stdout.String(), "\033") || !strings.Contains(stdout.String(), "0 delivered, 0 failed, 1 expired") {
			t.Errorf("the outcome on stdout: %q", stdout.String())
		}
		// Not a terminal: no progress at all.
		stderr.Reset()
		if _, errOut, _ := clRun(t, t.Context(), a.URL, "message", "resend", "slow", "--wait", "--timeout", "300ms"); errOut != "" {
			t.Errorf("progress written off a terminal: %q", errOut)
		}
	})

	t.Run("errors as JSON", func(t *testing.T) {
		for _, tc := range []struct {
			args  []string
			usage bool
			check func(errorJSON) bool
		}{
			{args: []string{"message", "show", "nope"}, check: func(e errorJSON) bool { return e.Problem != nil && e.Problem.Status == 404 }},
			{args: []string{"member", "start", "l9"}, usage: true, check: func(e errorJSON) bool { return e.Usage && strings.Contains(e.Error, "l9") }},
		} {
			stdout, stderr, err := clRun(t, t.Context(), a.URL, append(tc.args, "-o", "json")...)
			var reported *reportedError
			if !errors.As(err, &reported) || errors.Is(err, errUsage) != tc.usage {
				t.Fatalf("cmbs %q -o json = %v", tc.args, err)
			}
			var doc errorJSON
			if err := json.Unmarshal([]byte(stderr), &doc); err != nil || !tc.check(doc) || stdout != "" {
				t.Errorf("cmbs %q -o json: stdout %q, stderr %q (%v)", tc.args, stdout, stderr, err)
			}
		}
	})
}

// TestClientCompletion checks each shell's script names the commands and
// their flags, and that the shells present here read it.
func TestClientCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			out, _, err := clRun(t, t.Context(), "", "completion", shell)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"resend", "subscription", "layer", "l31", "server", "with-infrastructure"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s completion lacks %q", shell, want)
				}
			}
			sh, err := exec.LookPath(shell)
			if err != nil {
				t.Logf("no %s here to read the script with", shell)
				return
			}
			cmd := exec.Command(sh, "-n")
			cmd.Stdin = strings.NewReader(out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, msg)
			}
		})
	}
	if _, err := exec.LookPath("bash"); err == nil {
		// The script completes as a user would see it.
		script, _, _ := clRun(t, t.Context(), "", "completion", "bash")
		probe := script + `
COMP_WORDS=(cmbs message re); COMP_CWORD=2; _cmbs; echo "${COMPREPLY[*]}"
COMP_WORDS=(cmbs member start ''); COMP_CWORD=3; _cmbs; echo "${COMPREPLY[*]}"
COMP_WORDS=(cmbs message send --layer ''); COMP_CWORD=4; _cmbs; echo "${COMPREPLY[*]}"
`
		out, err := exec.Command("bash", "-c", probe).CombinedOutput()
		want := "resend\nl1 l2 l31 l32 l4 all\nl1 l2 l31 l32 l4\n"
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("bash completion answered %q (%v), want %q", out, err, want)
		}
	}
}
