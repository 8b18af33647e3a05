// Package config holds the settings of `cmbs serve` and the rules for
// assembling them.
//
// A Config starts from Default, then takes the values of a YAML or JSON file,
// then CMBS_* environment variables, then command-line flags: each source
// overrides only what it names. Validate reports every problem at once, each
// naming the field it concerns.
//
// Sections are plain fields: a later section (a nested struct with its own
// yaml key) is added to Config, registered in (*Config).register for its
// flags and environment variables, and checked in Validate.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	// ShutdownTimeout bounds how long in-flight requests may run after a
	// shutdown signal before the server stops anyway.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	// WithInfrastructure registers the OCCI 1.1 Infrastructure kinds,
	// mixins and actions (compute, storage, network and their links) at
	// start, served by the dummy provider.
	WithInfrastructure bool `yaml:"with_infrastructure" json:"with_infrastructure"`
}

// Log formats accepted in Config.LogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Default returns the configuration used for anything no source sets.
func Default() Config {
	return Config{
		HTTP:            ":8090",
		Store:           "file:./data",
		LogLevel:        "info",
		LogFormat:       LogFormatText,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Load returns Default overridden by the file at path (skipped when path is
// empty) and then by the CMBS_* environment variables. Flags, which win over
// both, are applied by (*Flags).Load. Load does not validate the result.
func Load(path string) (Config, error) {
	return load(path, os.LookupEnv)
}

func load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		if err := c.readFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.applyEnv(lookupEnv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// readFile overlays the keys present in a YAML or JSON file onto c. JSON is
// read by the YAML decoder, which accepts it, so both share one set of tags
// and the same unknown-key check.
func (c *Config) readFile(path string) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml", ".json":
	default:
		return fmt.Errorf("config file %s: unsupported extension %q (want .yaml, .yml or .json)", path, ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	// A second document would be silently ignored; say so instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: more than one document", path)
	}
	return nil
}
