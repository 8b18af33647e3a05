package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestValidateMEC(t *testing.T) {
	on := func(c *Config) {
		c.MEC.Platform = "https://mec-platform.etsi.org/sbx1x2y3z/mep1"
		c.MEC.AppInstanceID = "e3a6ec8b-81fa-48e2-bf16-cc24a1028df9"
	}
	tests := []validateCase{
		{name: "off by default", change: func(*Config) {}},
		{name: "on", change: on},
		{name: "on with everything", change: func(c *Config) {
			on(c)
			c.MEC.CallbackURL = "http://cmbs.example:8090/base"
			c.MEC.AdvertiseHost = "10.0.0.7"
			c.MEC.OAuth2 = OAuth2{TokenURL: "https://auth.example/token", ClientID: "cmbs", ClientSecret: "s"}
			c.Member = &Member{ID: "m", Sockets: map[string]string{"l1": "tcp://*:5010", "l2": "tcp://127.0.0.1:*"}, Start: []string{"l1"}}
		}},
		{name: "settings without platform", change: func(c *Config) { c.MEC.AppInstanceID = "x" },
			wantFields: []string{"mec.platform"}, wantReason: "other mec settings are set"},
		{name: "platform not a URL", change: func(c *Config) { on(c); c.MEC.Platform = "mep1" },
			wantFields: []string{"mec.platform"}, wantReason: "scheme"},
		{name: "platform with a query", change: func(c *Config) { on(c); c.MEC.Platform = "http://mep/?x=1" },
			wantFields: []string{"mec.platform"}, wantReason: "query"},
		{name: "no app instance id", change: func(c *Config) { on(c); c.MEC.AppInstanceID = "" },
			wantFields: []string{"mec.app_instance_id"}, wantReason: "empty"},
		{name: "app instance id with a slash", change: func(c *Config) { on(c); c.MEC.AppInstanceID = "a/b" },
			wantFields: []string{"mec.app_instance_id"}, wantReason: "not a path segment"},
		{name: "bad roots", change: func(c *Config) { on(c); c.MEC.AppSupportRoot = "/"; c.MEC.ServiceMgmtRoot = "a/../b" },
			wantFields: []string{"mec.app_support_root", "mec.service_mgmt_root"}},
		{name: "callback relative", change: func(c *Config) { on(c); c.MEC.CallbackURL = "/cb" },
			wantFields: []string{"mec.callback_url"}, wantReason: "scheme"},
		{name: "advertise host with a port", change: func(c *Config) { on(c); c.MEC.AdvertiseHost = "cmbs:80" },
			wantFields: []string{"mec.advertise_host"}, wantReason: "not a host name"},
		{name: "retry max", change: func(c *Config) { on(c); c.MEC.RetryMax = 0 },
			wantFields: []string{"mec.retry_max"}, wantReason: "positive"},
		{name: "half the client credentials", change: func(c *Config) { on(c); c.MEC.OAuth2.ClientID = "cmbs" },
			wantFields: []string{"mec.oauth2.client_secret", "mec.oauth2.token_url"}},
		{name: "started layer on a kernel-chosen port", change: func(c *Config) {
			on(c)
			c.Member = &Member{ID: "m", Sockets: map[string]string{"l1": "tcp://127.0.0.1:*"}, Start: []string{"l1"}}
		}, wantFields: []string{"member.sockets.l1"}, wantReason: "no fixed port"},
	}
	runValidateCases(t, tests)
}

// TestLoadSection reads the controls of an xApp descriptor as a config
// file: values and problems alike, problems named from the file's root at
// the file's lines.
func TestLoadSection(t *testing.T) {
	descriptor := `{
  "xapp_name": "cmbs",
  "controls": {
    "http": ":9090",
    "shutdown_timeout": "3s",
    "member": {"id": "edge-1", "sockets": {"l1": "tcp://*:5010"}, "start": ["l1"]},
    "mec": {"platform": "http://mep.example", "app_instance_id": "a1"}
  }
}
`
	path := writeFile(t, "config-file.json", descriptor)
	got, err := LoadSection(path, "controls")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.HTTP = ":9090"
	want.ShutdownTimeout = 3 * time.Second
	want.Member = &Member{ID: "edge-1", Sockets: map[string]string{"l1": "tcp://*:5010"}, Start: []string{"l1"}}
	want.MEC.Platform, want.MEC.AppInstanceID = "http://mep.example", "a1"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadSection =\n%+v\nwant\n%+v", got, want)
	}

	for _, content := range []string{`{"xapp_name": "cmbs"}`, `{"controls": null}`} {
		got, err := LoadSection(writeFile(t, "d.json", content), "controls")
		if err != nil || !reflect.DeepEqual(got, Default()) {
			t.Errorf("LoadSection of %s = %+v, %v; want the defaults", content, got, err)
		}
	}

	bad := `{
  "controls": {
    "member": {
      "id": "edge-1",
      "sockets": {"l1": "nowhere"}
    },
    "listen": ":1"
  }
}
`
	path = writeFile(t, "config-file.json", bad)
	_, err = LoadSection(path, "controls")
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("LoadSection of bad controls = %v, want a *FileError", err)
	}
	var got2 []string
	for _, p := range fe.Problems {
		got2 = append(got2, fe.Problem(p))
	}
	want2 := []string{
		path + `:5: controls.member.sockets.l1: "nowhere" is not a ZeroMQ endpoint tcp://host:port, ipc://path or inproc://name`,
		path + ":7: controls.listen: unknown key; known keys are backends, bind_host, bind_sockets, delivery, http, ",
	}
	if len(got2) != 2 || got2[0] != want2[0] || !strings.HasPrefix(got2[1], want2[1]) || !strings.Contains(got2[1], " mec, member, ") {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got2, "\n"), strings.Join(want2, "\n"))
	}
	_, err = LoadSection(writeFile(t, "d.json", `{"controls": [1]}`), "controls")
	if err == nil || !strings.Contains(err.Error(), ":1: controls: want object, got array") {
		t.Errorf("controls of the wrong type = %v", err)
	}
}

// TestDocument: a config written as a document reads back the same, and
// the document passes the schema.
func TestDocument(t *testing.T) {
	c := memberExample()
	c.ShutdownTimeout = 90 * time.Second
	doc, err := c.Document()
	if err != nil {
		t.Fatal(err)
	}
	if doc["shutdown_timeout"] != "1m30s" {
		t.Errorf("shutdown_timeout = %#v, want the duration as a string", doc["shutdown_timeout"])
	}
	if _, ok := doc["mec"]; ok {
		t.Errorf("document of a config without MEC has a mec section: %v", doc["mec"])
	}
	raw, err := json.Marshal(map[string]any{"controls": doc})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSection(path, "controls")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("read back\n%+v\nwant\n%+v", back, c)
	}

	c.MEC.Platform, c.MEC.AppInstanceID = "http://mep", "a"
	doc, err = c.Document()
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := doc["mec"].(map[string]any); m["platform"] != "http://mep" || m["retry_max"] != "30s" {
		t.Errorf("mec section = %v", doc["mec"])
	}
}

func TestLoadOver(t *testing.T) {
	base := Default()
	base.HTTP = ":9000"
	base.LogLevel = "debug"
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags := BindFlags(fs)
	if err := fs.Parse([]string{"--log-level=warn"}); err != nil {
		t.Fatal(err)
	}
	got, err := flags.loadOver(base, envMap(map[string]string{"CMBS_HTTP": ":9001", "CMBS_LOG_LEVEL": "error"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.HTTP != ":9001" || got.LogLevel != "warn" {
		t.Errorf("LoadOver = http %q level %q, want :9001 (env) and warn (flag)", got.HTTP, got.LogLevel)
	}

	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags = BindFlags(fs)
	if err := fs.Parse([]string{"--config", "c.yaml"}); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.loadOver(base, envMap(nil)); err == nil || !strings.Contains(err.Error(), "--config c.yaml") {
		t.Errorf("LoadOver with --config = %v, want an error naming it", err)
	}
}
