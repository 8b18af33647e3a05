package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// memberExample is what testdata/member.yaml and member.json declare.
func memberExample() Config {
	c := Default()
	c.HTTP = "127.0.0.1:8090"
	c.Store = "file:/var/lib/cmbs"
	c.Backends = []KindBackends{
		{Kind: MemberKind, Local: []string{"cmbs_member"}},
		{Kind: MessageKind, Local: []string{"cmbs_message"}, Remote: []string{"http://provider.example/cmbs"}},
	}
	c.Member = &Member{
		ID: "member-a", Title: "member A", Summary: "first member",
		Sockets: map[string]string{"l1": "tcp://127.0.0.1:5010", "l2": "tcp://*:5020", "l31": "ipc:///run/cmbs/l31",
			"l32": "inproc://l32", "l4": "tcp://[::1]:5040"},
		Neighbors: []string{"tcp://10.0.0.2:5010", "tcp://member-b.example:5010"},
		Topics:    []string{"weather.paris", "weather.*", "news.>"},
		Providers: []string{"storage", "compute"},
		Start:     []string{"l1", "l2", "l4"},
		Discover:  true,
	}
	return c
}

func TestValidFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want func() Config
	}{
		{name: "example", path: "cmbs.example.yaml", want: func() Config { c := Default(); c.Store = "file:/var/lib/cmbs"; return c }},
		{name: "member yaml", path: "testdata/member.yaml", want: memberExample},
		{name: "member json", path: "testdata/member.json", want: memberExample},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckFile(tt.path); err != nil {
				t.Fatalf("CheckFile: %v", err)
			}
			got, err := load(tt.path, envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("load =\n%+v\n%+v\nwant\n%+v\n%+v", got, got.Member, want, want.Member)
			}
		})
	}
}

// TestValidContent covers what YAML allows beyond JSON.
func TestValidContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "anchors and merge keys",
			content: `member:
  id: m1
  sockets: &sockets
    l1: tcp://127.0.0.1:5010
  start: [l1]
backends:
  - &member {kind: "http://houssem.org/cmbs#member", local: [cmbs_member]}
  - <<: *member
    kind: http://houssem.org/cmbs#message
`,
			check: func(t *testing.T, c Config) {
				if c.Backends[1].Kind != MessageKind || !reflect.DeepEqual(c.Backends[1].Local, []string{"cmbs_member"}) {
					t.Errorf("merged backend = %+v", c.Backends[1])
				}
			},
		},
		{
			name:    "a date-like title stays a string",
			content: "member:\n  id: m1\n  title: 2024-01-02\n",
			check: func(t *testing.T, c Config) {
				if c.Member.Title != "2024-01-02" {
					t.Errorf("title = %q", c.Member.Title)
				}
			},
		},
		{
			name:    "null section is absent",
			content: "member: ~\nbackends:\n",
			check: func(t *testing.T, c Config) {
				if c.Member != nil || len(c.Backends) != 0 {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name:    "infinity is a string where JSON has none",
			content: "member:\n  id: m1\n  title: .inf\n",
			check: func(t *testing.T, c Config) {
				if c.Member.Title != ".inf" {
					t.Errorf("title = %q", c.Member.Title)
				}
			},
		},
		{
			name:    "fractional duration",
			content: "shutdown_timeout: 1.5s\n",
			check: func(t *testing.T, c Config) {
				if c.ShutdownTimeout != 1500*time.Millisecond {
					t.Errorf("shutdown_timeout = %v", c.ShutdownTimeout)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tt.content)
			if err := CheckFile(path); err != nil {
				t.Fatalf("CheckFile: %v", err)
			}
			c, err := load(path, envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// problem is a FieldError without the file, as a test writes it.
type problem struct {
	line   int
	field  string
	reason string // a part of the reason
}

// TestInvalidFiles shows each kind of invalid value reported at its key
// path and line, by the schema or by Validate.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		content string
		want    []problem
	}{
		{name: "unknown top-level key", content: "http: :1\nlisten: :2\n",
			want: []problem{{2, "listen", "unknown key; known keys are backends, bind_host, bind_sockets, http,"}}},
		{name: "wrong type", content: "http: 8090\n", want: []problem{{1, "http", "want string, got number"}}},
		{name: "bad pattern", content: "store: ./data\n", want: []problem{{1, "store", `"./data" is not a store URL`}}},
		{name: "not in enum", content: "log_level: loud\n", want: []problem{{1, "log_level", `"loud" is not one of trace, debug, info`}}},
		{name: "bad duration", content: "\n\nshutdown_timeout: soon\n", want: []problem{{3, "shutdown_timeout", `"soon" is not a duration`}}},
		{name: "yaml yes is not a boolean", content: "strict: yes\n", want: []problem{{1, "strict", "want boolean, got string"}}},
		{name: "section of the wrong type", content: "member: [a]\n", want: []problem{{1, "member", "want null or object, got array"}}},
		{name: "duplicate key", content: "http: :1\nhttp: :2\n", want: []problem{{2, "http", "duplicate key (first set on line 1)"}}},
		{name: "json problems have lines too", file: "c.json", content: "{\n  \"member\": {\n    \"id\": \"m\",\n    \"start\": [\"l3\"]\n  }\n}\n",
			want: []problem{{4, "member.start[0]", `"l3" is not one of l1, l2, l31, l32, l4`}}},
		{
			name: "backends",
			content: `backends:
  - kind: cmbs-member
    local: []
  - local: [cmbs message]
  - kind: http://houssem.org/cmbs#message
    local: [dummy, dummy]
    extra: 1
`,
			want: []problem{
				{2, "backends[0].kind", "is not a category identifier scheme#term"},
				{3, "backends[0].local", "must not be empty"},
				{4, "backends[1].kind", "required"},
				{4, "backends[1].local[0]", `"cmbs message" is not a name`},
				{6, "backends[2].local[1]", "repeats backends[2].local[0]"},
				{7, "backends[2].extra", "unknown key; known keys are kind, local, remote"},
			},
		},
		{
			name: "member",
			content: `member:
  title: no id
  sockets:
    l1: tcp://127.0.0.1:5010
    l9: tcp://127.0.0.1:5090
    l2: 5020
    l4: tcp://127.0.0.1
  neighbors: ["tcp://*:6010", tcp://127.0.0.1:6010, tcp://127.0.0.1:6010]
  topics: ["weather..paris", ""]
  providers: [storage, "a b"]
  start: [l1, l5, l1]
  discover: "yes"
`,
			want: []problem{
				{1, "member.id", "required"},
				{5, "member.sockets.l9", "unknown key; known keys are l1, l2, l31, l32, l4"},
				{6, "member.sockets.l2", "want string, got number"},
				{7, "member.sockets.l4", `"tcp://127.0.0.1" is not a ZeroMQ endpoint`},
				{8, "member.neighbors[0]", "other members can dial"},
				{8, "member.neighbors[2]", "repeats member.neighbors[1]"},
				{9, "member.topics[0]", `"weather..paris" is not a topic`},
				{9, "member.topics[1]", `"" is not a topic`},
				{10, "member.providers[1]", `"a b" is not a name`},
				{11, "member.start[1]", `"l5" is not one of l1, l2, l31, l32, l4`},
				{11, "member.start[2]", "repeats member.start[0]"},
				{12, "member.discover", "want boolean, got string"},
			},
		},
		{
			name: "rules across fields, from Validate",
			content: `http: :99999
member:
  id: m1
  sockets:
    l1: tcp://127.0.0.1:5010
    l2: tcp://127.0.0.1:5010
  neighbors:
    - tcp://127.0.0.1:5010
  start: [l1, l31]
backends:
  - {kind: "http://houssem.org/cmbs#member", local: [cmbs_member]}
  - {kind: "http://houssem.org/cmbs#member", local: [dummy]}
`,
			want: []problem{
				{1, "http", `port "99999" is not a number`},
				{6, "member.sockets.l2", "tcp://127.0.0.1:5010 is also the socket of l1"},
				{8, "member.neighbors[0]", "this member's own l1 socket"},
				{9, "member.start[1]", "layer l31 has no socket; set member.sockets.l31"},
				{12, "backends[1].kind", "is already configured by backends[0]"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.file
			if name == "" {
				name = "c.yaml"
			}
			path := writeFile(t, name, tt.content)
			err := CheckFile(path)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("CheckFile = %v, want a *FileError", err)
			}
			if fe.Path != path {
				t.Errorf("FileError.Path = %q, want %q", fe.Path, path)
			}
			var got []string
			for _, p := range fe.Problems {
				got = append(got, p.Field)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, w.field)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fields = %q, want %q\n%v", got, want, err)
			}
			for i, w := range tt.want {
				p := fe.Problems[i]
				if p.Line != w.line || !strings.Contains(p.Reason, w.reason) {
					t.Errorf("problem %d = line %d %q, want line %d and a reason containing %q", i, p.Line, p.Reason, w.line, w.reason)
				}
				if line := fe.Problem(p); !strings.HasPrefix(line, path+":") || !strings.HasSuffix(line, p.Field+": "+p.Reason) {
					t.Errorf("problem line %q is not FILE:LINE: field: reason", line)
				}
			}
			// Loading refuses the file the same way, schema problems first.
			if _, err := load(path, envMap(nil)); err == nil && tt.name != "rules across fields, from Validate" {
				t.Errorf("load accepted the file")
			}
		})
	}
}

// TestFileErrorMessage pins the message serve stops with.
func TestFileErrorMessage(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "c.yaml", "http: 1\nmember: {id: m, start: [l9]}\n")
	_, err := load(path, envMap(nil))
	want := "config file " + path + ": 2 problems\n" +
		"  " + path + ":1: http: want string, got number\n" +
		"  " + path + `:2: member.start[0]: "l9" is not one of l1, l2, l31, l32, l4`
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "http" {
		t.Errorf("errors.As(*FieldError) = %v", fe)
	}
}

// TestSchemaMatchesConfig keeps the schema and the structs in step: the
// same keys at every level, and the schema's defaults those of Default.
func TestSchemaMatchesConfig(t *testing.T) {
	t.Parallel()
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", schema["$schema"])
	}
	defs := schema["$defs"].(map[string]any)
	mecSchema := schema["properties"].(map[string]any)["mec"].(map[string]any)
	sections := []struct {
		name   string
		typ    reflect.Type
		schema map[string]any
	}{
		{"config", reflect.TypeFor[Config](), schema},
		{"backend", reflect.TypeFor[KindBackends](), defs["backend"].(map[string]any)},
		{"member", reflect.TypeFor[Member](), defs["member"].(map[string]any)},
		{"mec", reflect.TypeFor[MEC](), mecSchema},
		{"mec.oauth2", reflect.TypeFor[OAuth2](), mecSchema["properties"].(map[string]any)["oauth2"].(map[string]any)},
	}
	for _, s := range sections {
		var tags []string
		for f := range s.typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			tags = append(tags, tag)
		}
		sort.Strings(tags)
		var props []string
		for k := range s.schema["properties"].(map[string]any) {
			props = append(props, k)
		}
		sort.Strings(props)
		if !slices.Equal(tags, props) {
			t.Errorf("%s: struct keys %v, schema properties %v", s.name, tags, props)
		}
		if s.schema["additionalProperties"] != false {
			t.Errorf("%s: schema allows unknown keys", s.name)
		}
	}
	sockets := defs["member"].(map[string]any)["properties"].(map[string]any)["sockets"].(map[string]any)["properties"].(map[string]any)
	var layers []string
	for l := range sockets {
		layers = append(layers, l)
	}
	sort.Strings(layers)
	if want := slices.Sorted(slices.Values(MemberLayers())); !slices.Equal(layers, want) {
		t.Errorf("schema sockets %v, MemberLayers %v", layers, want)
	}

	raw, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var defaults map[string]any
	if err := yaml.Unmarshal(raw, &defaults); err != nil {
		t.Fatal(err)
	}
	checkDefaults := func(prefix string, props map[string]any, defaults map[string]any) {
		for key, p := range props {
			def, ok := p.(map[string]any)["default"]
			if !ok {
				continue
			}
			got := defaults[key]
			if n, ok := got.(int); ok {
				// JSON numbers decode as float64, YAML integers as int.
				got = float64(n)
			}
			if !reflect.DeepEqual(got, def) {
				t.Errorf("schema default of %s%s = %#v, Default() has %#v", prefix, key, def, got)
			}
		}
	}
	checkDefaults("", schema["properties"].(map[string]any), defaults)
	mecDefaults := defaults["mec"].(map[string]any)
	checkDefaults("mec.", mecSchema["properties"].(map[string]any), mecDefaults)
	checkDefaults("mec.oauth2.", mecSchema["properties"].(map[string]any)["oauth2"].(map[string]any)["properties"].(map[string]any),
		mecDefaults["oauth2"].(map[string]any))
}

// TestUnparsableFiles shows a file that is not YAML, or holds more than one
// document, reported as a problem of the whole file at its line.
func TestUnparsableFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		content string
		want    problem
	}{
		{"http: [", problem{1, "", "not YAML: did not find expected node content"}},
		// The line is the parser's, which for an unclosed flow is not
		// always where it should be closed.
		{"member:\n  id: [m\n", problem{1, "", "not YAML: did not find expected ',' or ']'"}},
		{"a: 1\n---\nb: 2\n", problem{2, "", "more than one document"}},
		{"a: 1\n---\nb: [\n", problem{3, "", "not YAML"}},
		// Without a line from the parser, the problem reads FILE: reason.
		{"\tx: 1\n", problem{0, "", "not YAML: found character that cannot start any token"}},
	}
	for _, tt := range tests {
		path := writeFile(t, "c.yaml", tt.content)
		err := CheckFile(path)
		var fe *FileError
		if !errors.As(err, &fe) || len(fe.Problems) != 1 {
			t.Errorf("CheckFile(%q) = %v, want one problem", tt.content, err)
			continue
		}
		p := fe.Problems[0]
		if p.Line != tt.want.line || p.Field != "" || !strings.Contains(p.Reason, tt.want.reason) {
			t.Errorf("CheckFile(%q) = %d %q %q, want %v", tt.content, p.Line, p.Field, p.Reason, tt.want)
		}
		want := fmt.Sprintf("%s:%d: %s", path, p.Line, p.Reason)
		if p.Line == 0 {
			want = path + ": " + p.Reason
		}
		if got := fe.Problem(p); got != want {
			t.Errorf("problem reads %q", got)
		}
	}
}
