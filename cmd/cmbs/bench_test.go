package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
)

// TestBenchEmbedded runs short benchmarks on two embedded members and
// checks what they print: every message delivered, the figures in order.
func TestBenchEmbedded(t *testing.T) {
	t.Run("l2 as JSON", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := run(t.Context(), []string{"bench", "--embedded", "--layer", "l2", "--count", "120", "--batch", "25",
			"--publishers", "3", "--size", "64", "--expires", "10m", "-o", "json"}, strings.NewReader(""), &out, &errb)
		if err != nil {
			t.Fatalf("bench: %v\n%s", err, errb.String())
		}
		var res benchResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("bench -o json: %v\n%s", err, out.String())
		}
		checkBenchResult(t, res, "l2", 120, 5)
		if l := res.Latency; l.Source != "delivery" || l.Samples != 120 || l.Of != 120 {
			t.Errorf("latency from %q, %d of %d samples; want every delivery read", l.Source, l.Samples, l.Of)
		}
		// Not a terminal: plain progress lines.
		if !strings.Contains(errb.String(), "bench: delivering: 120/120 accepted") || strings.Contains(errb.String(), "\r") {
			t.Errorf("progress on a pipe:\n%q", errb.String())
		}
	})

	t.Run("l1 as text on a terminal", func(t *testing.T) {
		var out, errb bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, terminal: func(any) bool { return true }}
		if err := a.run(t.Context(), []string{"bench", "--embedded", "--layer", "l1", "--count", "20", "--publishers", "2"}); err != nil {
			t.Fatalf("bench: %v\n%s", err, errb.String())
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		want := []string{
			`^cmbs bench l1: 20 messages of 128 B, 2 publishers, 1 per request, Prefer: wait; two embedded members, bench-a → bench-b$`,
			`^accepted +20 msgs +in \d+\.\d\ds +\d+ msgs/s +\d+\.\d\d MB/s$`,
			`^delivered +20 msgs +in \d+\.\d\ds +\d+ msgs/s +\d+\.\d\d MB/s$`,
			`^latency +p50 [\d.]+m?s +p90 [\d.]+m?s +p99 [\d.]+m?s +max [\d.]+m?s +\(request round trips, 20 requests\)$`,
		}
		if len(lines) != len(want) {
			t.Fatalf("bench printed %d lines, want %d:\n%s", len(lines), len(want), out.String())
		}
		for i, re := range want {
			if !regexp.MustCompile(re).MatchString(lines[i]) {
				t.Errorf("line %d = %q, want %s", i+1, lines[i], re)
			}
		}
		// A terminal: a bar redrawn in place, cleared at the end.
		if progress := errb.String(); !strings.Contains(progress, "\r\033[K") || !strings.Contains(progress, "] ") ||
			!strings.HasSuffix(progress, "\r\033[K") {
			t.Errorf("progress on a terminal:\n%q", progress)
		}
	})
}

// checkBenchResult checks a run in which every message was delivered to
// one destination.
func checkBenchResult(t *testing.T, res benchResult, layer string, count, requests int) {
	t.Helper()
	if res.Layer != layer || res.Count != count || res.Requests != requests || res.Accepted != count ||
		res.Delivered != count || res.Undelivered != 0 || res.Pending != 0 || res.Destinations != 1 {
		t.Errorf("result %+v: want %d of %d messages on %s delivered, in %d requests, to 1 destination each", res, count, count, layer, requests)
	}
	if res.SendSeconds <= 0 || res.DeliverSeconds < res.SendSeconds || res.AcceptedMsgsPerSec <= 0 || res.DeliveredMsgsPerSec <= 0 {
		t.Errorf("times and rates: %+v", res)
	}
	if got, want := res.AcceptedMBPerSec, res.AcceptedMsgsPerSec*float64(res.Size)/1e6; got < want*0.999 || got > want*1.001 {
		t.Errorf("accepted MB/s = %v, want %v", got, want)
	}
	if l := res.Latency; !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
}

// TestBenchServer runs cmbs bench against a running server whose local
// member knows one subscribed to a topic, by the topic given and by the
// topics it knows; one no member subscribes to reaches nobody.
func TestBenchServer(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{ID: "bench-recv", Topics: []string{"weather.*"}})
	a := brokertest.Start(t, brokertest.Options{ID: "bench-send", Neighbors: []*brokertest.Member{b}})
	a.Discover()
	for _, args := range [][]string{
		{"--topic", "weather.paris"},
		{}, // the topics of the members the server knows
	} {
		out, stderr, err := clRun(t, t.Context(), a.URL, append([]string{"bench", "--layer", "l32", "--count", "40", "--batch", "15", "-o", "json"}, args...)...)
		if err != nil {
			t.Fatalf("bench %v: %v\n%s", args, err, stderr)
		}
		var res benchResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		checkBenchResult(t, res, "l32", 40, 3)
		if res.Target != a.URL || res.From != "bench-send" || strings.Join(res.To, ",") != "bench-recv" {
			t.Errorf("bench %v ran %s → %v on %s", args, res.From, res.To, res.Target)
		}
		if !b.Has("bench-" + res.Run + "-39") {
			t.Errorf("the receiver lacks the last message of run %s", res.Run)
		}
	}
	if _, _, err := clRun(t, t.Context(), a.URL, "bench", "--layer", "l32", "--topic", "sport.results", "--count", "5"); err == nil ||
		!strings.Contains(err.Error(), "reach no member") {
		t.Errorf("bench to a topic nobody subscribes to = %v", err)
	}
	// A server whose member knows nobody.
	alone := brokertest.Start(t, brokertest.Options{ID: "alone", Layers: []broker.Layer{broker.L2}})
	if _, _, err := clRun(t, t.Context(), alone.URL, "bench", "--count", "5"); err == nil || !strings.Contains(err.Error(), "knows no other member") {
		t.Errorf("bench from a member alone = %v", err)
	}
}

// TestBenchUsage: flags that cannot make a run are usage errors, found
// before anything starts.
func TestBenchUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--layer", "l5"}, `--layer "l5"`},
		{[]string{"--count", "0"}, "--count 0"},
		{[]string{"--publishers", "0"}, "--publishers 0"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--layer", "l1", "--batch", "10"}, "l1 sends one message per request"},
		{[]string{"--size", "-1"}, "--size -1"},
		{[]string{"--expires", "soon"}, "--expires"},
		{[]string{"--wait", "10ms", "--layer", "l1"}, "--wait"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--samples", "0"}, "--samples"},
		{[]string{"--server", "http://127.0.0.1:1"}, "takes no --server"},
		{[]string{"--topic", "a", "--layer", "l2"}, "--topic is for l32 and l4"},
		{[]string{"--provider", "p", "--layer", "l32"}, "--provider is for l31 and l4"},
		{[]string{"-o", "yaml"}, `-o "yaml"`},
		{[]string{"extra"}, "wrong number of arguments"},
		{[]string{"--no-such-flag"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := clRun(t, t.Context(), "", append([]string{"bench", "--embedded"}, tt.args...)...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("bench --embedded %v = %v, want a usage error with %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestServeDefaults: the embedded members get every serve setting as a
// flag, so no CMBS_* variable reaches them, and lists come as lists.
func TestServeDefaults(t *testing.T) {
	args := serveDefaults(map[string]string{"http": "127.0.0.1:0"})
	joined := " " + strings.Join(args, " ") + " "
	for _, want := range []string{" --http=127.0.0.1:0 ", " --users= ", " --log-level=info ", " --tls-cert= "} {
		if !strings.Contains(joined, want) {
			t.Errorf("serve flags lack %q: %v", want, args)
		}
	}
	for _, a := range args {
		if strings.Contains(a, "=[") || strings.HasPrefix(a, "--config=") {
			t.Errorf("serve flag %q", a)
		}
	}
}
