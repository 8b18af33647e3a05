package xapp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/houssem/cmbs/cmd/cmbs/xapp"
	"github.com/houssem/cmbs/config"
)

const onboarderRoot = "http://o-ran-sc.org/xapp_root.json"

// onboarderSchema compiles the O-RAN SC onboarder's schema as the
// onboarder uses it: with properties.controls replaced by the xApp's
// controls schema, or, when controls is nil, as it is shipped.
func onboarderSchema(t *testing.T, controls []byte) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "onboarder", "embedded-schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if controls != nil {
		ctl, err := jsonschema.UnmarshalJSON(bytes.NewReader(controls))
		if err != nil {
			t.Fatalf("controls schema: %v", err)
		}
		root.(map[string]any)["properties"].(map[string]any)["controls"] = ctl
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(onboarderRoot, root); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(onboarderRoot)
	if err != nil {
		t.Fatalf("compile the onboarder schema: %v", err)
	}
	return sch
}

func instance(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func descriptor(t *testing.T, opts xapp.Options) (*xapp.Descriptor, []byte, []string) {
	t.Helper()
	d, notes, err := xapp.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	raw, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return d, raw, notes
}

// richConfig sets every section: backends, a member with TCP, ipc and
// inproc sockets, MEC with OAuth2, CouchDB with a password.
func richConfig() config.Config {
	c := config.Default()
	c.HTTP = ":9090"
	c.Store = "http://admin:secret@couch.example:5984/cmbs"
	c.LogFormat = config.LogFormatJSON
	c.Backends = config.DefaultBackends()
	c.Member = &config.Member{
		ID: "edge-1", Title: "edge member",
		Sockets:   map[string]string{"l1": "tcp://*:6010", "l2": "tcp://0.0.0.0:6020", "l31": "ipc:///run/cmbs/l31", "l32": "inproc://l32", "l4": "tcp://[::]:6040"},
		Neighbors: []string{"tcp://core.example:5010"},
		Topics:    []string{"ran.kpi.>"}, Providers: []string{"storage"},
		Start: []string{"l1", "l2", "l4"}, Discover: true,
	}
	c.MEC.Platform, c.MEC.AppInstanceID = "https://mec.example/sbx/mep1", "app-1"
	c.MEC.OAuth2 = config.OAuth2{TokenURL: "https://mec.example/token", ClientID: "cmbs", ClientSecret: "s3cret"}
	return c
}

// TestDescriptorOnboards validates descriptors the way the O-RAN SC
// onboarder does: its schema with properties.controls replaced by
// `cmbs xapp schema`.
func TestDescriptorOnboards(t *testing.T) {
	sch := onboarderSchema(t, xapp.Schema())
	shipped := onboarderSchema(t, nil)
	for name, cfg := range map[string]config.Config{"defaults": config.Default(), "every section": richConfig()} {
		t.Run(name, func(t *testing.T) {
			_, raw, _ := descriptor(t, xapp.Options{Config: cfg, Version: "v1.4.0"})
			if err := sch.Validate(instance(t, raw)); err != nil {
				t.Errorf("the onboarder refuses the descriptor:\n%v\n%s", err, raw)
			}
			// As shipped, the schema refuses any controls: an xApp must
			// bring its controls schema.
			if err := shipped.Validate(instance(t, raw)); err == nil || !strings.Contains(err.Error(), "__empty_control_section__") {
				t.Errorf("the shipped schema = %v, want it to want __empty_control_section__", err)
			}
		})
	}
}

// TestDescriptorRefusedControls: controls that break cmbs's schema are
// refused by the onboarder, at their path.
func TestDescriptorRefusedControls(t *testing.T) {
	sch := onboarderSchema(t, xapp.Schema())
	_, raw, _ := descriptor(t, xapp.Options{Config: config.Default(), Version: "v1.0.0"})
	for _, tc := range []struct {
		change func(d map[string]any)
		want   string
	}{
		{func(d map[string]any) {
			ctl(d)["member"].(map[string]any)["sockets"].(map[string]any)["l1"] = "nowhere"
		}, "/controls/member/sockets/l1"},
		{func(d map[string]any) { ctl(d)["listen"] = ":1" }, "/controls"},
		{func(d map[string]any) { ctl(d)["shutdown_timeout"] = 10 }, "/controls/shutdown_timeout"},
		{func(d map[string]any) { d["version"] = "1.0" }, "/version"},
	} {
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		tc.change(d)
		changed, _ := json.Marshal(d)
		err := sch.Validate(instance(t, changed))
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "at '"+tc.want) {
			t.Errorf("validation = %v, want a problem at %s", err, tc.want)
		}
	}
}

func ctl(d map[string]any) map[string]any { return d["controls"].(map[string]any) }

func TestDescriptorContent(t *testing.T) {
	d, raw, notes := descriptor(t, xapp.Options{Config: richConfig(), Version: "v1.4.0 0123456789ab", Image: "registry.example.com:5000/ran/cmbs", Name: "cmbs-edge"})
	if d.XAppName != "cmbs-edge" || d.Version != "1.4.0+0123456789ab" {
		t.Errorf("name, version = %q, %q", d.XAppName, d.Version)
	}
	want := xapp.Container{Name: "cmbs-edge", Image: xapp.Image{Registry: "registry.example.com:5000", Name: "ran/cmbs", Tag: "1.4.0-0123456789ab"},
		Command: "cmbs serve --xapp-config /opt/ric/config/config-file.json"}
	if !reflect.DeepEqual(d.Containers, []xapp.Container{want}) {
		t.Errorf("containers = %+v", d.Containers)
	}
	if d.LivenessProbe.HTTPGet != (xapp.HTTPGet{Path: "/health/alive", Port: 9090}) || d.ReadinessProbe.HTTPGet != (xapp.HTTPGet{Path: "/health/ready", Port: 9090}) {
		t.Errorf("probes = %+v %+v", d.LivenessProbe, d.ReadinessProbe)
	}
	ports := map[string]int{}
	for _, p := range d.Messaging.Ports {
		ports[p.Name] = p.Port
		if p.Container != "cmbs-edge" {
			t.Errorf("port %s is for container %q", p.Name, p.Container)
		}
		if p.Name != "http" && (len(p.RxMessages) == 0 || !reflect.DeepEqual(p.RxMessages, p.TxMessages) || p.Policies == nil) {
			t.Errorf("layer port %+v lacks its message types", p)
		}
	}
	if want := map[string]int{"http": 9090, "l1": 6010, "l2": 6020, "l4": 6040}; !reflect.DeepEqual(ports, want) {
		t.Errorf("ports = %v, want %v (ipc and inproc sockets have none)", ports, want)
	}
	if !reflect.DeepEqual(xapp.MessageTypes("l1"), []string{"CMBS_DESCRIBE", "CMBS_DELIVER_L1"}) || !reflect.DeepEqual(xapp.MessageTypes("l32"), []string{"CMBS_DELIVER_L32"}) {
		t.Errorf("message types l1 %v, l32 %v", xapp.MessageTypes("l1"), xapp.MessageTypes("l32"))
	}
	if bytes.Contains(raw, []byte("s3cret")) || bytes.Contains(raw, []byte("admin:secret")) {
		t.Errorf("the descriptor carries a secret:\n%s", raw)
	}
	if got := ctl(map[string]any{"controls": d.Controls})["store"]; got != "http://admin@couch.example:5984/cmbs" {
		t.Errorf("controls store = %v", got)
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{"CMBS_STORE", "CMBS_MEC_OAUTH2_CLIENT_SECRET", "member.sockets.l31 ipc:///run/cmbs/l31 is not a TCP socket"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes do not mention %q:\n%s", want, joined)
		}
	}
	names := map[string]bool{}
	for _, m := range d.Metrics {
		if names[m.Name] || m.ObjectName == "" || m.Description == "" {
			t.Errorf("metric %+v repeated or incomplete", m)
		}
		names[m.Name] = true
	}

	// Without a member section, the image's member is declared.
	d, _, notes = descriptor(t, xapp.Options{Config: config.Default(), Version: "v1.0.0"})
	if m := ctl(map[string]any{"controls": d.Controls})["member"].(map[string]any); m["id"] != "cmbs" || len(d.Messaging.Ports) != 6 {
		t.Errorf("default member = %v, ports %v", m, d.Messaging.Ports)
	}
	// Nor a store: the image's volume, not this machine's data directory.
	if got := d.Controls["store"]; got != xapp.ImageStore {
		t.Errorf("default store = %v, want %s", got, xapp.ImageStore)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "names no store") || !strings.Contains(notes[1], "declares no member") {
		t.Errorf("notes = %q", notes)
	}
}

func TestNewErrors(t *testing.T) {
	loopback := config.Default()
	loopback.HTTP = "127.0.0.1:0"
	anyPort := config.Default()
	anyPort.Member = &config.Member{ID: "m", Sockets: map[string]string{"l1": "tcp://*:*"}}
	invalid := config.Default()
	invalid.LogLevel = "loud"
	for _, tc := range []struct {
		name string
		opts xapp.Options
		want string
	}{
		{"image without registry", xapp.Options{Config: config.Default(), Image: "cmbs:1"}, "want REGISTRY/NAME[:TAG]"},
		{"registry without a domain", xapp.Options{Config: config.Default(), Image: "localhost:5000/cmbs:1"}, "not a domain"},
		{"empty tag", xapp.Options{Config: config.Default(), Image: "ghcr.io/cmbs:"}, "with a name and a tag"},
		{"bad name", xapp.Options{Config: config.Default(), Name: "Cmbs_1"}, "DNS label"},
		{"http port 0", xapp.Options{Config: loopback}, "fixed port"},
		{"layer on any port", xapp.Options{Config: anyPort}, "member.sockets.l1 tcp://*:*"},
		{"invalid config", xapp.Options{Config: invalid}, "log_level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := xapp.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSemVer(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                      "1.2.3",
		"1.2.3":                       "1.2.3",
		"v1.2.3-4-gabcdef0":           "1.2.3-4-gabcdef0",
		"v1.2.3-4-gabcdef0-dirty":     "1.2.3-4-gabcdef0-dirty",
		"v1.2.3 0123456789ab":         "1.2.3+0123456789ab",
		"c7ec907":                     "0.0.0-dev+c7ec907",
		"c7ec907-dirty":               "0.0.0-dev+c7ec907.dirty",
		"(devel)":                     "0.0.0-dev",
		"(devel) 0123456789ab":        "0.0.0-dev+0123456789ab",
		"":                            "0.0.0-dev",
		"v0.0.0-20260101-abcdef":      "0.0.0-20260101-abcdef",
		"v2":                          "0.0.0-dev",
		"(unknown)":                   "0.0.0-dev",
		"v1.2.3+meta 0123456789ab":    "1.2.3+meta",
		"v1.2.3 rev/with:odd*chars!!": "1.2.3+rev-with-odd-chars--",
	} {
		if got := xapp.SemVer(in); got != want {
			t.Errorf("SemVer(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeDescriptor writes d, changed by change, as config-file.json.
func writeDescriptor(t *testing.T, d *xapp.Descriptor, change func(d map[string]any)) string {
	t.Helper()
	raw, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		if raw, err = json.MarshalIndent(m, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "config-file.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ports(d map[string]any) []any { return d["messaging"].(map[string]any)["ports"].([]any) }

func TestReadConfig(t *testing.T) {
	cfg := richConfig()
	d, _, _ := descriptor(t, xapp.Options{Config: cfg, Version: "v1.0.0"})

	// As written, the descriptor reads back as its configuration, but for
	// the secrets it leaves out.
	got, err := xapp.ReadConfig(writeDescriptor(t, d, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Store = "http://admin@couch.example:5984/cmbs"
	want.MEC.OAuth2.ClientSecret = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadConfig =\n%+v\n%+v\nwant\n%+v\n%+v", got, got.Member, want, want.Member)
	}

	// The messaging ports win over the controls.
	got, err = xapp.ReadConfig(writeDescriptor(t, d, func(m map[string]any) {
		ps := ports(m)
		ps[0].(map[string]any)["port"] = 7090 // http
		ps[1].(map[string]any)["port"] = 7010 // l1
		ps = append(ps, map[string]any{"name": "l32", "container": "cmbs", "port": 7032},
			map[string]any{"name": "rmr-data", "container": "sidecar", "port": 4560})
		m["messaging"].(map[string]any)["ports"] = ps
		delete(ctl(m)["member"].(map[string]any)["sockets"].(map[string]any), "l32")
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got.HTTP != ":7090" || got.Member.Sockets["l1"] != "tcp://*:7010" || got.Member.Sockets["l32"] != "tcp://*:7032" ||
		got.Member.Sockets["l4"] != "tcp://[::]:6040" {
		t.Errorf("ports applied: http %q, sockets %v", got.HTTP, got.Member.Sockets)
	}

	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		want   string
	}{
		{"controls against the schema", func(m map[string]any) { ctl(m)["member"].(map[string]any)["start"] = []any{"l9"} },
			`controls.member.start[0]: "l9" is not one of l1, l2, l31, l32, l4`},
		{"repeated port name", func(m map[string]any) {
			m["messaging"].(map[string]any)["ports"] = append(ports(m), map[string]any{"name": "l1", "port": 1})
		}, "messaging.ports[4]: port name \"l1\" repeats messaging.ports[1]"},
		{"port out of range", func(m map[string]any) { ports(m)[0].(map[string]any)["port"] = 70000 }, "messaging.ports[0].port: 70000"},
		{"port for an ipc socket", func(m map[string]any) {
			m["messaging"].(map[string]any)["ports"] = append(ports(m), map[string]any{"name": "l31", "port": 7031})
		}, "controls.member.sockets.l31 is ipc:///run/cmbs/l31, not a TCP socket"},
		{"port without a member", func(m map[string]any) { delete(ctl(m), "member") }, "the controls declare no member"},
		{"not JSON", func(m map[string]any) { m["messaging"] = "none" }, "not an xApp descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDescriptor(t, d, tc.change)
			_, err := xapp.ReadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadConfig = %v, want an error naming the file and %q", err, tc.want)
			}
		})
	}
}
