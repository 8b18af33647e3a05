package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/houssem/cmbs/config"
)

func TestXAppCommands(t *testing.T) {
	tests := []commandCase{
		{name: "no subcommand", args: []string{"xapp"}, wantErr: errUsage, wantStderr: "Usage: cmbs xapp"},
		{name: "unknown subcommand", args: []string{"xapp", "deploy"}, wantErr: errUsage, wantStderr: "Usage: cmbs xapp"},
		{name: "help", args: []string{"xapp", "help"}, wantStdout: "descriptor [--config FILE]"},
		{name: "descriptor help", args: []string{"xapp", "descriptor", "--help"}, wantStderr: "--image"},
		{name: "descriptor stray argument", args: []string{"xapp", "descriptor", "x"}, wantErr: errUsage},
		{name: "schema with an argument", args: []string{"xapp", "schema", "x"}, wantErr: errUsage},
		{name: "listed in the usage", args: []string{"help"}, wantStdout: "xapp          print the O-RAN SC xApp descriptor"},
		{name: "serve flag", args: []string{"serve", "--help"}, wantStderr: "--xapp-config"},
	}
	runCommandCases(t, tests)
}

func TestXAppSchema(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"xapp", "schema"}, nil, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), config.Schema()) {
		t.Errorf("xapp schema is not the config schema")
	}
}

// TestXAppDescriptorGolden pins the descriptor of testdata/config/member.yaml.
func TestXAppDescriptorGolden(t *testing.T) {
	old := version
	version = "v1.4.0"
	t.Cleanup(func() { version = old })
	var stdout, stderr bytes.Buffer
	args := []string{"xapp", "descriptor", "--config", filepath.Join("testdata", "config", "member.yaml"), "--image", "registry.example.com/ran/cmbs"}
	if err := run(t.Context(), args, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "xapp", "descriptor.golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); got != string(want) {
		t.Errorf("xapp descriptor printed\n%s\nwant (%s; go test -run TestXAppDescriptorGolden -update rewrites it)\n%s", got, golden, want)
	}
	// member.yaml binds loopback: fine for its tests, not for a pod.
	if !strings.Contains(stderr.String(), "note: member.sockets.l1 tcp://127.0.0.1:5010 binds loopback") {
		t.Errorf("stderr = %q, want a note about loopback binds", stderr.String())
	}

	if err := run(t.Context(), []string{"xapp", "descriptor", "--image", "cmbs"}, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "REGISTRY/NAME") {
		t.Errorf("descriptor with a bad image = %v", err)
	}
	if err := run(t.Context(), []string{"xapp", "descriptor", "--config", filepath.Join("testdata", "config", "invalid.yaml")}, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "listen: unknown key") {
		t.Errorf("descriptor of an invalid file = %v", err)
	}
}

// writeXAppDescriptor runs `cmbs xapp descriptor` on a member config whose
// sockets are on free loopback ports, then moves them, in the messaging
// ports only, to other free ports: serve must bind those.
func writeXAppDescriptor(t *testing.T, id string, change func(d map[string]any)) (path string, sockets map[string]string) {
	t.Helper()
	cfgPath, _ := memberConfig(t, id, "", "")
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"xapp", "descriptor", "--config", cfgPath}, nil, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	sockets = map[string]string{}
	for _, p := range d["messaging"].(map[string]any)["ports"].([]any) {
		p := p.(map[string]any)
		if name := p["name"].(string); name != "http" {
			port := freeTCPPort(t)
			p["port"] = port
			sockets[name] = "tcp://127.0.0.1:" + strconv.Itoa(port)
		}
	}
	if change != nil {
		change(d)
	}
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "config-file.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, sockets
}

// TestServeXAppConfig runs serve on a descriptor: the controls configure
// it, the messaging ports give the layers' ports.
func TestServeXAppConfig(t *testing.T) {
	path, sockets := writeXAppDescriptor(t, "xapp-a", nil)
	s := startServe(t, "--xapp-config", path)
	attrs := memberAttrs(t, s, "xapp-a")
	wantLayers := map[string]any{"l1": "running", "l2": "running", "l31": "running", "l32": "running", "l4": "running"}
	if !reflect.DeepEqual(attrs["layers"], wantLayers) {
		t.Errorf("layers = %v", attrs["layers"])
	}
	for l, ep := range sockets {
		if attrs[l+"_socket"] != ep {
			t.Errorf("%s socket = %v, want %s from the messaging ports", l, attrs[l+"_socket"], ep)
		}
	}
	if resp := get(t, s.url+"/health/ready", "", ""); resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Errorf("ready = %d: %s", resp.StatusCode, body)
	}
}

// TestServeXAppConfigErrors: serve refuses a descriptor whose controls
// break the schema, naming the file, line, key path and reason, and
// --config with --xapp-config.
func TestServeXAppConfigErrors(t *testing.T) {
	path, _ := writeXAppDescriptor(t, "xapp-b", func(d map[string]any) {
		d["controls"].(map[string]any)["member"].(map[string]any)["sockets"].(map[string]any)["l2"] = "tcp//nowhere"
		d["controls"].(map[string]any)["log_level"] = "loud"
	})
	raw, _ := os.ReadFile(path)
	line := func(s string) string {
		for i, l := range strings.Split(string(raw), "\n") {
			if strings.Contains(l, s) {
				return path + ":" + strconv.Itoa(i+1) + ": "
			}
		}
		t.Fatalf("%q not in the descriptor", s)
		return ""
	}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--xapp-config", path, "--http", "127.0.0.1:0"}, nil, io.Discard, &stderr)
	var fe *config.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("serve = %v, want a *config.FileError", err)
	}
	for _, want := range []string{
		line(`"tcp//nowhere"`) + `controls.member.sockets.l2: "tcp//nowhere" is not a ZeroMQ endpoint`,
		line(`"loud"`) + `controls.log_level: "loud" is not one of trace`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("serve error does not contain %q:\n%v", want, err)
		}
	}

	err = run(t.Context(), []string{"serve", "--xapp-config", path, "--config", "cmbs.yaml"}, nil, io.Discard, io.Discard)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--config and --xapp-config") {
		t.Errorf("serve with both = %v, want a usage error", err)
	}
}
