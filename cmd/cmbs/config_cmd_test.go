package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/config/cmbstest"
)

var update = flag.Bool("update", false, "rewrite the golden files of config check")

// TestConfigCheckGolden pins what `cmbs config check` prints for a valid
// file, one the schema refuses, one the rules across fields refuse, one
// that is not YAML and one that is missing.
func TestConfigCheckGolden(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "config")
	files := []string{"member.yaml", "invalid.yaml", "rules.yaml", "broken.yaml", "missing.yaml"}
	args := []string{"config", "check"}
	for _, f := range files {
		args = append(args, filepath.Join(dir, f))
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, nil, &stdout, &stderr)
	if !errors.Is(err, errInvalidConfig) {
		t.Fatalf("config check = %v, want errInvalidConfig", err)
	}
	if want := "invalid configuration: testdata/config/invalid.yaml, testdata/config/rules.yaml, testdata/config/broken.yaml, testdata/config/missing.yaml"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	golden := filepath.Join(dir, "check.golden")
	if *update {
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); got != string(want) {
		t.Errorf("config check printed\n%s\nwant (%s; go test -run TestConfigCheckGolden -update rewrites it)\n%s", got, golden, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("config check wrote to stderr: %q", stderr.String())
	}

	// A valid file alone succeeds.
	stdout.Reset()
	if err := run(t.Context(), []string{"config", "check", filepath.Join(dir, "member.yaml")}, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("config check of a valid file = %v", err)
	}
	if stdout.String() != "testdata/config/member.yaml: valid\n" {
		t.Errorf("config check printed %q", stdout.String())
	}
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	tests := []commandCase{
		{name: "no subcommand", args: []string{"config"}, wantErr: errUsage, wantStderr: "Usage: cmbs config"},
		{name: "unknown subcommand", args: []string{"config", "lint"}, wantErr: errUsage, wantStderr: "Usage: cmbs config"},
		{name: "help", args: []string{"config", "--help"}, wantStdout: "check FILE..."},
		{name: "check without a file", args: []string{"config", "check"}, wantErr: errUsage},
		{name: "check help", args: []string{"config", "check", "-h"}, wantStderr: "Usage: cmbs config"},
		{name: "schema with an argument", args: []string{"config", "schema", "x"}, wantErr: errUsage},
		{name: "listed in the usage", args: []string{"help"}, wantStdout: "config        check a config file"},
	}
	runCommandCases(t, tests)
}

func TestConfigSchema(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"config", "schema"}, nil, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), config.Schema()) {
		t.Errorf("config schema printed something else than config.Schema()")
	}
	var doc map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", doc["$schema"])
	}
}

// TestConfigNamesMatchBroker keeps config's copies of the broker's names
// (config does not import broker) equal to them.
func TestConfigNamesMatchBroker(t *testing.T) {
	t.Parallel()
	var layers []string
	for _, l := range broker.Layers() {
		layers = append(layers, string(l))
	}
	if !slices.Equal(layers, config.MemberLayers()) {
		t.Errorf("config.MemberLayers() = %v, broker.Layers() = %v", config.MemberLayers(), layers)
	}
	pairs := [][2]string{
		{config.MemberKind, broker.MemberKind}, {config.MessageKind, broker.MessageKind},
		{config.MemberProvider, broker.MemberProvider}, {config.MessageProvider, broker.MessageProvider},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("config has %q where broker has %q", p[0], p[1])
		}
	}
}

func TestMemberSpec(t *testing.T) {
	t.Parallel()
	got := memberSpec(config.Member{
		ID: "m", Title: "t", Summary: "s",
		Sockets:   map[string]string{"l1": "tcp://127.0.0.1:1", "l31": "tcp://127.0.0.1:2"},
		Neighbors: []string{"tcp://127.0.0.1:3"}, Topics: []string{"a.b"}, Providers: []string{"p"},
		Start: []string{"l31", "l1"}, Discover: true,
	})
	want := broker.LocalMemberSpec{
		ID: "m", Title: "t", Summary: "s",
		Sockets:   map[broker.Layer]string{broker.L1: "tcp://127.0.0.1:1", broker.L31: "tcp://127.0.0.1:2"},
		Neighbors: []string{"tcp://127.0.0.1:3"}, Topics: []string{"a.b"}, Providers: []string{"p"},
		Start: []broker.Layer{broker.L31, broker.L1}, Discover: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("memberSpec =\n%+v\nwant\n%+v", got, want)
	}
}

// memberConfig writes a config file declaring member id with a free
// loopback socket per layer, every layer started; extra is appended to the
// member section. It returns the file and the sockets.
func memberConfig(t *testing.T, id, extra, backends string) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	sockets := map[string]string{}
	var sb strings.Builder
	fmt.Fprintf(&sb, "store: file:%s\nlog_level: debug\n%smember:\n  id: %s\n  title: member %s\n  sockets:\n", filepath.Join(dir, "data"), backends, id, id)
	for _, l := range config.MemberLayers() {
		sockets[l] = fmt.Sprintf("tcp://127.0.0.1:%d", freeTCPPort(t))
		fmt.Fprintf(&sb, "    %s: %s\n", l, sockets[l])
	}
	sb.WriteString("  start: [l1, l2, l31, l32, l4]\n" + extra)
	path := filepath.Join(dir, "member.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := config.CheckFile(path); err != nil {
		t.Fatalf("the test's own config is invalid: %v\n%s", err, sb.String())
	}
	return path, sockets
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, ln.Close)
	return ln.Addr().(*net.TCPAddr).Port
}

// getJSON GETs path from a server and decodes its JSON answer.
func getJSON(t *testing.T, s *server, path string) map[string]any {
	t.Helper()
	resp := get(t, s.url+path, "", "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return out
}

func memberAttrs(t *testing.T, s *server, id string) map[string]any {
	t.Helper()
	res := getJSON(t, s, "/cmbs/member/"+id)["resources"].([]any)[0].(map[string]any)
	return res["attributes"].(map[string]any)["cmbs"].(map[string]any)["member"].(map[string]any)
}

// TestServeMembersFromConfig runs `cmbs serve --config` twice: the first
// member comes up with its layers running and the providers its backends
// section names, the second discovers the first at start. No request
// creates or starts anything.
func TestServeMembersFromConfig(t *testing.T) {
	t.Parallel()
	backends := `backends:
  - kind: http://houssem.org/cmbs#message
    local: [cmbs_message, dummy]
`
	pathA, socketsA := memberConfig(t, "member-a", "  topics: [weather.*]\n", backends)
	a := startServe(t, "--config", pathA)

	attrs := memberAttrs(t, a, "member-a")
	wantLayers := map[string]any{"l1": "running", "l2": "running", "l31": "running", "l32": "running", "l4": "running"}
	if attrs["local"] != "true" || !reflect.DeepEqual(attrs["layers"], wantLayers) || attrs["l32_socket"] != socketsA["l32"] {
		t.Fatalf("member-a = %v", attrs)
	}
	var messageProviders any
	for _, k := range getJSON(t, a, "/-/")["kinds"].([]any) {
		k := k.(map[string]any)
		if k["scheme"].(string)+k["term"].(string) == broker.MessageKind {
			messageProviders = k["providers"].(map[string]any)["local"]
		}
	}
	if !reflect.DeepEqual(messageProviders, []any{"cmbs_message", "dummy"}) {
		t.Errorf("message kind providers = %v, want the backends section's", messageProviders)
	}

	pathB, _ := memberConfig(t, "member-b", "  neighbors: ["+socketsA["l1"]+"]\n  discover: true\n", "")
	b := startServe(t, "--config", pathB)
	known := memberAttrs(t, b, "member-a")
	if known["local"] != "false" || known["l1_socket"] != socketsA["l1"] || !reflect.DeepEqual(known["topics"], []any{"weather.*"}) {
		t.Errorf("member-b's record of member-a = %v", known)
	}
	if got := memberAttrs(t, b, "member-b")["neighbors_state"]; !reflect.DeepEqual(got, map[string]any{socketsA["l1"]: "reachable: member-a"}) {
		t.Errorf("member-b's neighbors_state = %v", got)
	}
	if !strings.Contains(b.stderr.String(), "neighbours checked at start") {
		t.Errorf("serve did not log the discovery:\n%s", b.stderr)
	}
}

// TestServeConfigSectionErrors shows serve stopping on sections it cannot
// apply, naming what is wrong.
func TestServeConfigSectionErrors(t *testing.T) {
	t.Parallel()
	taken := takenAddr(t)
	unknownProvider, _ := memberConfig(t, "m1", "", "backends:\n  - kind: http://houssem.org/cmbs#member\n    local: [cmbs_membre]\n")
	unknownKind, _ := memberConfig(t, "m1", "", "backends:\n  - kind: http://example.org/x#thing\n    local: [dummy]\n")
	portTaken, _ := memberConfig(t, "m1", "", "")
	raw, err := os.ReadFile(portTaken)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "    l4: ") {
			lines[i] = "    l4: tcp://" + taken
		}
	}
	if err := os.WriteFile(portTaken, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(invalid, []byte("member:\n  id: m1\n  start: [l9]\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		file string
		want []string
	}{
		{name: "unknown provider", file: unknownProvider, want: []string{`backends[0].local[0]: no provider is called "cmbs_membre"`, "cmbs_member"}},
		{name: "unknown kind", file: unknownKind, want: []string{"backends[0]: http://example.org/x#thing", "no kind or mixin"}},
		{name: "layer cannot bind", file: portTaken, want: []string{"config member: local member m1", "layer l4 cannot bind tcp://" + taken}},
		{name: "schema", file: invalid, want: []string{"config file " + invalid + ": 1 problem", invalid + `:3: member.start[0]: "l9" is not one of`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), []string{"serve", "--http", "127.0.0.1:0", "--config", tt.file}, nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("serve succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
