package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// TestMessageSendBatch sends many messages at once with message send:
// --count, and --file from a file and from standard input, each request
// of --batch messages one all-or-nothing create that sends them.
func TestMessageSendBatch(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{ID: "batch-b", Topics: []string{"weather.*"}})
	a := brokertest.Start(t, brokertest.Options{ID: "batch-a", Neighbors: []*brokertest.Member{b}})
	a.Discover()
	send := func(t *testing.T, stdin string, args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(t.Context(), append(append([]string{"message", "send"}, args...), "--server", a.URL), strings.NewReader(stdin), &out, &errb)
		return out.String(), err
	}
	delivered := func(t *testing.T, ids ...string) {
		t.Helper()
		for _, id := range ids {
			d := a.WaitDelivery(id)
			if got := brokertest.Outcome(d); got["batch-b"] != api.StatusDelivered {
				t.Errorf("message %s: %v", id, d)
			}
		}
	}

	t.Run("count", func(t *testing.T) {
		out, err := send(t, "", "--layer", "l2", "--content", `{"n":1}`, "--count", "5", "--id", "t", "--batch", "2")
		if err != nil {
			t.Fatal(err)
		}
		if want := "accepted 5 messages in 3 requests, each sent as it was created: t-1, t-2, t-3, t-4, t-5\n"; !strings.HasPrefix(out, want) {
			t.Errorf("send --count:\n%s\nwant %s", out, want)
		}
		delivered(t, "t-1", "t-5")
		// Many are summed up by the first and the last.
		out, err = send(t, "", "--layer", "l2", "--content", "x", "--count", "12", "--id", "u")
		if err != nil || !strings.HasPrefix(out, "accepted 12 messages in 1 request, each sent as it was created: u-1 … u-12\n") {
			t.Errorf("send --count 12: %v\n%s", err, out)
		}
	})

	t.Run("file from standard input", func(t *testing.T) {
		lines := `{"id":"f1","message_content":{"n":1},"title":"first"}

{"id":"f2","cmbs.message.message_content":"two","topics":["weather.paris"],"cmbs_layer":"l32"}
{"message_content":3}
`
		out, err := send(t, lines, "--layer", "l2", "--file", "-", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var l cli.Locations
		if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.OCCI) != 3 {
			t.Fatalf("send --file - -o json: %v\n%s", err, out)
		}
		if !strings.HasSuffix(l.OCCI[0], "/cmbs/message/f1") || !strings.HasSuffix(l.OCCI[1], "/cmbs/message/f2") ||
			!strings.HasPrefix(l.OCCI[2], a.URL+"/cmbs/message/") {
			t.Errorf("locations %v", l.OCCI)
		}
		delivered(t, "f1", "f2", strings.TrimPrefix(l.OCCI[2], a.URL+api.MessageLocation))
		if got := a.Attrs("/cmbs/message/f2", "message"); got["cmbs_layer"] != "l32" || got["message_content"] != "two" {
			t.Errorf("f2 = %v", got)
		}
	})

	t.Run("file refused part way", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "messages.jsonl")
		// Line 2's id is taken already (f1); line 4's is no id.
		lines := `{"id":"g1","message_content":1}
{"id":"f1","message_content":2}
{"id":"g3","message_content":3}
{"id":"g 4","message_content":4}
`
		if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := send(t, "", "--layer", "l2", "--file", path, "--batch", "1")
		var p *cli.Problem
		if !errors.As(err, &p) || p.Status != 409 || !strings.Contains(err.Error(), "line 2 not accepted") {
			t.Errorf("send with a taken id = %v", err)
		}
		if !strings.HasPrefix(out, "accepted 1 message in 1 request, each sent as it was created: g1\n") {
			t.Errorf("what was accepted before the refusal:\n%s", out)
		}
		_, rest, _ := strings.Cut(lines, "{\"id\":\"f1\",\"message_content\":2}\n")
		if err := os.WriteFile(path, []byte(rest), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = send(t, "", "--layer", "l2", "--file", path)
		if !errors.As(err, &p) || p.Status != 400 || !strings.Contains(err.Error(), "lines 1–2 not accepted") ||
			!strings.HasSuffix(err.Error(), "; resources[1] is line 2") {
			t.Errorf("send with a malformed id = %v", err)
		}
		if a.Has("g3") {
			t.Error("g3 was created although its request was refused")
		}
	})

	t.Run("usage", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.jsonl")
		if err := os.WriteFile(path, []byte("{\"id\":\"h1\",\"message_content\":1}\n[1]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			stdin string
			args  []string
			want  string
		}{
			{"", []string{"--file", path, "--layer", "l2"}, path + " line 2: want a JSON object"},
			{`{"message_content":1}`, []string{"--file", "-"}, "standard input line 1: no layer"},
			{`{"cmbs_layer":"l1","message_content":1}`, []string{"--file", "-"}, "an l1 message needs l1_socket_receiver_member"},
			{`{"cmbs_layer":"l9"}`, []string{"--file", "-"}, "cmbs.message.cmbs_layer"},
			{"", []string{"--layer", "l2", "--content", "x", "--count", "2", "--wait"}, "--wait follows one message"},
			{"", []string{"--layer", "l2", "--content", "x", "--count", "0"}, "--count 0"},
			{"", []string{"--layer", "l2", "--content", "x", "--count", "2", "--batch", "0"}, "--batch 0"},
			{"", []string{"--file", "-", "--count", "3"}, "give --count or --file"},
			{"", []string{"--file", "-", "--id", "x"}, "ids come from the lines"},
			{"", []string{"--layer", "l2", "--count", "3"}, "--content is required"},
			{"\n\n", []string{"--file", "-"}, "standard input holds no message"},
		}
		for _, tt := range tests {
			if _, err := send(t, tt.stdin, tt.args...); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("send %v = %v, want a usage error with %q", tt.args, err, tt.want)
			}
		}
		if a.Has("h1") {
			t.Error("h1 was sent although a line of its batch was malformed")
		}
	})
}
