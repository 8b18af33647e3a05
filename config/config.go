// Package config holds the settings of `cmbs serve` and the rules for
// assembling them.
//
// A Config starts from Default, then takes the values of a YAML or JSON file,
// then CMBS_* environment variables, then command-line flags: each source
// overrides only what it names. Validate reports every problem at once, each
// naming the field it concerns.
//
// A file is checked against the JSON Schema in schema.json (Schema) before
// any of its values is used; a file the schema refuses gives a *FileError
// listing every problem with its key path and line. CheckFile adds the
// checks of Validate, for `cmbs config check`.
//
// Sections are plain fields: a later section (a nested struct with its own
// yaml key) is added to Config and to schema.json, registered in
// (*Config).register for its flags and environment variables when it has
// any, and checked in Validate. The backends and member sections are set
// in the file only.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is everything `cmbs serve` needs. The yaml keys are also the names
// Validate uses when it reports a field.
type Config struct {
	// HTTP is the address the OCCI server listens on, host:port.
	HTTP string `yaml:"http" json:"http"`
	// Store names the document store: file:DIR for the embedded store kept
	// in DIR/cmbs.db, or http(s)://[user:pass@]host:port/dbname for CouchDB.
	Store string `yaml:"store" json:"store"`
	// PublicURL is the absolute base URL clients reach the server at, used
	// to build Location headers. Empty means: derive it from each request.
	PublicURL string `yaml:"public_url" json:"public_url"`
	// LogLevel is a logrus level: trace, debug, info, warn, error, fatal,
	// panic.
	LogLevel string `yaml:"log_level" json:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format" json:"log_format"`
	// Strict makes the server reject attributes its kinds and mixins do not
	// declare, instead of storing them as given.
	Strict bool `yaml:"strict" json:"strict"`
	// UsersFile is the path of a users file (user:bcrypt-hash lines). Empty
	// turns authentication off.
	UsersFile string `yaml:"users_file" json:"users_file"`
	// MemberSecurity secures the layer sockets between members: curve
	// (each member proves its key, and only trusted keys are admitted) or
	// plain (whoever reaches a socket is heard; for development).
	MemberSecurity string `yaml:"member_security" json:"member_security"`
	// MemberKey is the member's secret key file (cmbs keygen). Empty means
	// member.key in the data directory of a file: store, generated at the
	// first start when absent.
	MemberKey string `yaml:"member_key" json:"member_key"`
	// TrustedKeys is a file of the public keys admitted on the layers with
	// curve, one per line with an optional comment, like SSH's
	// authorized_keys. It is read again when it changes.
	TrustedKeys string `yaml:"trusted_keys" json:"trusted_keys"`
	// TrustOnFirstUse admits, with curve, keys that are not trusted: each
	// is bound to the first member it speaks for, and from then on only it
	// speaks for that member.
	TrustOnFirstUse bool `yaml:"trust_on_first_use" json:"trust_on_first_use"`
	// ShutdownTimeout bounds how long in-flight requests may run after a
	// shutdown signal before the server stops anyway.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	// WithInfrastructure registers the OCCI 1.1 Infrastructure kinds,
	// mixins and actions (compute, storage, network and their links) at
	// start, served by the dummy provider.
	WithInfrastructure bool `yaml:"with_infrastructure" json:"with_infrastructure"`
	// MaxMessageBytes bounds every message a member accepts: an HTTP
	// request body (larger ones are refused with 413 before they are
	// read) and a layer frame.
	MaxMessageBytes int64 `yaml:"max_message_bytes" json:"max_message_bytes"`
	// TLSCert and TLSKey are PEM files of the HTTP server's certificate
	// (chain) and private key. Both set serves HTTPS; both empty, plain
	// HTTP. They are read again when they change, so a renewed
	// certificate needs no restart.
	TLSCert string `yaml:"tls_cert" json:"tls_cert"`
	TLSKey  string `yaml:"tls_key" json:"tls_key"`
	// TLSClientCA is a PEM file of the certificate authorities client
	// certificates must chain to. Set, every client must present one.
	TLSClientCA string `yaml:"tls_client_ca" json:"tls_client_ca"`
	// PageLimit is how many entries one answer of a collection lists
	// when the request sets no ?limit=; MaxPageLimit is the most a
	// request may ask for.
	PageLimit    int `yaml:"page_limit" json:"page_limit"`
	MaxPageLimit int `yaml:"max_page_limit" json:"max_page_limit"`
	// MaxCollectionRequests is how many requests that walk a collection
	// (lists, filters, collection deletes and actions) run at once;
	// others wait for a turn.
	MaxCollectionRequests int `yaml:"max_collection_requests" json:"max_collection_requests"`
	// BindHost is the host every layer of the local member binds, keeping
	// the port of the member's socket: 0.0.0.0 in a container, whose
	// member advertises a name peers resolve (tcp://broker-a:5010). Empty
	// binds the member's sockets as they are.
	BindHost string `yaml:"bind_host" json:"bind_host"`
	// BindSockets binds a layer (l1, l2, l31, l32, l4) on exactly this
	// endpoint, whatever the member's socket for it; it wins over
	// BindHost.
	BindSockets map[string]string `yaml:"bind_sockets,omitempty" json:"bind_sockets,omitempty"`
	// InstanceID names this server among those sharing one CouchDB
	// database: it holds leases under it. Empty: the host name and a
	// random suffix, new at every start.
	InstanceID string `yaml:"instance_id" json:"instance_id"`
	// LeaseTTL is how long a lease of a server sharing a CouchDB database
	// lasts without renewal: another server takes its work over that long
	// after it stopped renewing.
	LeaseTTL time.Duration `yaml:"lease_ttl" json:"lease_ttl"`
	// Backends names the providers backing kinds, attached at start over
	// whatever was attached before. Empty leaves the broker's defaults.
	// Set in the file only, like Member: neither fits a flag.
	Backends []KindBackends `yaml:"backends,omitempty" json:"backends,omitempty"`
	// Member declares the local member, created or updated at start. Nil
	// leaves the stored local member, if any, as it is.
	Member *Member `yaml:"member,omitempty" json:"member,omitempty"`
	// MEC runs cmbs as an ETSI MEC application; off while MEC.Platform is
	// empty.
	MEC MEC `yaml:"mec" json:"mec"`
}

// Member security modes accepted in Config.MemberSecurity.
const (
	MemberSecurityCurve = "curve"
	MemberSecurityPlain = "plain"
)

// Log formats accepted in Config.LogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// DataDir is where cmbs keeps its embedded store unless told otherwise:
// $XDG_DATA_HOME/cmbs, else ~/.local/share/cmbs (the XDG Base Directory
// default), else ./data when there is no home directory. make run and
// cmbs serve share it, so both see the same data.
func DataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cmbs")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "share", "cmbs")
	}
	return "data"
}

// Default returns the configuration used for anything no source sets.
func Default() Config {
	return Config{
		HTTP:                  ":8090",
		Store:                 "file:" + DataDir(),
		LogLevel:              "info",
		LogFormat:             LogFormatText,
		ShutdownTimeout:       10 * time.Second,
		MaxMessageBytes:       DefaultMaxMessageBytes,
		PageLimit:             1000,
		MaxPageLimit:          5000,
		MaxCollectionRequests: 4,
		MemberSecurity:        MemberSecurityPlain,
		LeaseTTL:              DefaultLeaseTTL,
		MEC:                   defaultMEC(),
	}
}

// DefaultLeaseTTL is the default of Config.LeaseTTL.
const DefaultLeaseTTL = 10 * time.Second

// DefaultMaxMessageBytes is the default of Config.MaxMessageBytes, 10 MiB.
const DefaultMaxMessageBytes = 10 << 20

// Load returns Default overridden by the file at path (skipped when path is
// empty) and then by the CMBS_* environment variables. Flags, which win over
// both, are applied by (*Flags).Load. Load does not validate the result.
func Load(path string) (Config, error) {
	return load(path, os.LookupEnv)
}

func load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		if _, err := c.readFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.applyEnv(lookupEnv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// readFile overlays the keys present in a YAML or JSON file onto c, after
// checking the file against the schema. JSON is read by the YAML parser,
// which accepts it, so both share one set of tags. A file the schema
// refuses gives a *FileError listing every problem; c is then unchanged.
// The document is returned for the line numbers of later problems.
func (c *Config) readFile(path string) (*document, error) {
	return c.readSection(path, "")
}

// readSection is readFile for the mapping under a top-level key of the
// file (the whole file when key is empty): its problems name their keys
// from the file's root, key.http, with the file's lines.
func (c *Config) readSection(path, key string) (*document, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml", ".json":
	default:
		return nil, fmt.Errorf("config file %s: unsupported extension %q (want .yaml, .yml or .json)", path, ext)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	root, problem := parseOne(data)
	if problem != nil {
		return nil, &FileError{Path: path, Problems: []*FieldError{problem}}
	}
	node := root
	if key != "" {
		if node = sectionNode(root, key); node == nil {
			return &document{lines: map[string]int{}}, nil
		}
	}
	doc := parseDocument(node)
	if key != "" {
		// Problems of the section as a whole are at its line.
		doc.lines[""] = node.Line
	}
	checker, err := newSchemaChecker()
	if err != nil {
		return nil, err
	}
	if problems := checker.check(doc); len(problems) > 0 {
		sortProblems(problems)
		for _, p := range problems {
			p.Field = prefixField(key, p.Field)
		}
		return nil, &FileError{Path: path, Problems: problems}
	}
	if doc.value == nil {
		return doc, nil
	}
	// The schema and the struct declare the same keys (a test keeps them
	// in step); KnownFields still guards the decoding should they not.
	if key != "" {
		if data, err = yaml.Marshal(node); err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", path, key, err)
		}
	}
	next := *c
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&next); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	*c = next
	return doc, nil
}

// parseOne parses data as one YAML document: a syntax error, or a second
// document that would otherwise be silently ignored, is the file's problem.
func parseOne(data []byte) (*yaml.Node, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxProblem(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &FieldError{Reason: "more than one document; a config file holds one", Line: extra.Line}
	case !errors.Is(err, io.EOF):
		return nil, syntaxProblem(err)
	}
	return &root, nil
}

// sectionNode returns the value of key in a document whose root is a
// mapping, or nil when it has no such key or holds null there.
func sectionNode(root *yaml.Node, key string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			if v.ShortTag() == "!!null" {
				return nil
			}
			return v
		}
	}
	return nil
}

// prefixField names a problem of a section from the file's root.
func prefixField(key, field string) string {
	switch {
	case key == "":
		return field
	case field == "" || field == "(file)":
		return key
	case strings.HasPrefix(field, "["):
		return key + field
	default:
		return key + "." + field
	}
}

// LoadSection returns Default overridden by the mapping under key in the
// YAML or JSON file at path, such as the controls of an xApp descriptor:
// the section is a config file of its own, checked against the schema.
// Problems are a *FileError whose fields start with key and whose lines
// are the file's. An absent or null key leaves the defaults. Neither the
// environment nor flags are applied, nor Validate.
func LoadSection(path, key string) (Config, error) {
	c := Default()
	if _, err := c.readSection(path, key); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Document returns c as a config file would state it, every key set, in
// the values encoding/json writes and the schema describes: durations as
// strings such as "10s". The mec section is left out while it is off.
func (c Config) Document() (map[string]any, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	doc := parseDocument(&root)
	out, ok := doc.value.(map[string]any)
	if !ok || len(doc.problems) > 0 {
		return nil, fmt.Errorf("config: cannot be written as a document")
	}
	if !c.MEC.Enabled() {
		delete(out, "mec")
	}
	return out, nil
}

// yamlLine finds the line in the YAML parser's messages.
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// syntaxProblem turns a YAML parser error into a problem of the whole file
// at its line.
func syntaxProblem(err error) *FieldError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Reason: "not YAML: " + m[2], Line: line}
	}
	return &FieldError{Reason: "not YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// CheckFile checks the file at path on its own, without the environment or
// flags: against the schema and then, when the schema accepts it, with
// Validate on the defaults overridden by the file. It returns nil, a
// *FileError listing every problem with its line, or the error that kept
// the file from being read.
func CheckFile(path string) error {
	c := Default()
	doc, err := c.readFile(path)
	if err != nil {
		return err
	}
	verr := c.Validate()
	if verr == nil {
		return nil
	}
	fe := &FileError{Path: path}
	for _, e := range unjoin(verr) {
		var p *FieldError
		if !errors.As(e, &p) {
			p = &FieldError{Field: "(file)", Reason: e.Error()}
		}
		p.Line = doc.line(p.Field)
		fe.Problems = append(fe.Problems, p)
	}
	sortProblems(fe.Problems)
	return fe
}

// unjoin splits errors.Join's result into its parts.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
