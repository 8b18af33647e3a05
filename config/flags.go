package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// envAnnotation is the pflag annotation key holding a flag's environment
// variable, so flags and variables are declared once, side by side.
const envAnnotation = "cmbs-env"

// register declares one flag per setting on fs, bound to c's fields and
// defaulting to their current values, each annotated with its CMBS_*
// variable. Every source other than the file goes through these
// declarations, so a new setting is added here once.
func (c *Config) register(fs *pflag.FlagSet) {
	env := func(name, variable string) {
		f := fs.Lookup(name)
		f.Usage += " (env " + variable + ")"
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[envAnnotation] = []string{variable}
	}
	c.registerMemberSecurity(fs, env)
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address, host:port")
	env("http", "CMBS_HTTP")
	fs.StringVar(&c.Store, "store", c.Store, "store URL: file:DIR (embedded) or http://user:pass@host:5984/dbname (CouchDB)")
	env("store", "CMBS_STORE")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "absolute base URL used in Location headers (default: from each request)")
	env("public-url", "CMBS_PUBLIC_URL")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: trace, debug, info, warn, error")
	env("log-level", "CMBS_LOG_LEVEL")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	env("log-format", "CMBS_LOG_FORMAT")
	fs.BoolVar(&c.Strict, "strict", c.Strict, "make attribute types and patterns binding (refuse values that break them)")
	env("strict", "CMBS_STRICT")
	fs.StringVar(&c.UsersFile, "users", c.UsersFile, "users file of user:bcrypt-hash lines; empty turns authentication off")
	env("users", "CMBS_USERS_FILE")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight requests may run after a shutdown signal")
	env("shutdown-timeout", "CMBS_SHUTDOWN_TIMEOUT")
	fs.BoolVar(&c.WithInfrastructure, "with-infrastructure", c.WithInfrastructure, "register the OCCI 1.1 Infrastructure kinds, mixins and actions at start")
	env("with-infrastructure", "CMBS_WITH_INFRASTRUCTURE")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest HTTP request body or layer message accepted, in bytes")
	env("max-message-bytes", "CMBS_MAX_MESSAGE_BYTES")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) of the HTTPS server; with --tls-key serves HTTPS")
	env("tls-cert", "CMBS_TLS_CERT")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	env("tls-key", "CMBS_TLS_KEY")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM certificate authorities; set, every client must present a certificate they signed")
	env("tls-client-ca", "CMBS_TLS_CLIENT_CA")
	fs.IntVar(&c.PageLimit, "page-limit", c.PageLimit, "entries a collection answer lists when the request sets no ?limit=")
	env("page-limit", "CMBS_PAGE_LIMIT")
	fs.IntVar(&c.MaxPageLimit, "max-page-limit", c.MaxPageLimit, "most entries a request may ask for with ?limit=")
	env("max-page-limit", "CMBS_MAX_PAGE_LIMIT")
	fs.StringVar(&c.BindHost, "bind-host", c.BindHost, "host every layer binds, keeping the port of the member's socket (0.0.0.0 in a container); the sockets stay what peers dial")
	env("bind-host", "CMBS_BIND_HOST")
	fs.Var(newEndpointMap(&c.BindSockets), "bind-socket", "layer=endpoint a layer binds instead of the member's socket, e.g. l1=tcp://0.0.0.0:5010 (repeat, or separate with commas)")
	env("bind-socket", "CMBS_BIND_SOCKETS")
	fs.StringVar(&c.InstanceID, "instance-id", c.InstanceID, "name of this server among those sharing one CouchDB database (default: host name and a random suffix)")
	env("instance-id", "CMBS_INSTANCE_ID")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "how long a lease of servers sharing one CouchDB database lasts unrenewed before another server takes the work over")
	env("lease-ttl", "CMBS_LEASE_TTL")
	fs.IntVar(&c.MaxCollectionRequests, "max-collection-requests", c.MaxCollectionRequests, "requests walking a collection (lists, filters, collection deletes and actions) served at once; others wait")
	env("max-collection-requests", "CMBS_MAX_COLLECTION_REQUESTS")
	c.MEC.register(fs, env)
}

// register declares the mec section's flags, --mec-*.
func (m *MEC) register(fs *pflag.FlagSet, env func(name, variable string)) {
	fs.StringVar(&m.Platform, "mec-platform", m.Platform, "MEC platform base URL; set, cmbs runs the ETSI MEC 011 application life cycle")
	env("mec-platform", "CMBS_MEC_PLATFORM")
	fs.StringVar(&m.AppInstanceID, "mec-app-instance-id", m.AppInstanceID, "application instance id the MEC platform manager allocated")
	env("mec-app-instance-id", "CMBS_MEC_APP_INSTANCE_ID")
	fs.StringVar(&m.AppSupportRoot, "mec-app-support-root", m.AppSupportRoot, "root of the MEC application support API under the platform URL")
	env("mec-app-support-root", "CMBS_MEC_APP_SUPPORT_ROOT")
	fs.StringVar(&m.ServiceMgmtRoot, "mec-service-mgmt-root", m.ServiceMgmtRoot, "root of the MEC service management API under the platform URL")
	env("mec-service-mgmt-root", "CMBS_MEC_SERVICE_MGMT_ROOT")
	fs.StringVar(&m.CallbackURL, "mec-callback-url", m.CallbackURL, "base URL the MEC platform posts notifications to (default: public URL)")
	env("mec-callback-url", "CMBS_MEC_CALLBACK_URL")
	fs.StringVar(&m.AdvertiseHost, "mec-advertise-host", m.AdvertiseHost, "host named in the registered transports for wildcard binds (default: host name)")
	env("mec-advertise-host", "CMBS_MEC_ADVERTISE_HOST")
	fs.DurationVar(&m.RetryMax, "mec-retry-max", m.RetryMax, "longest wait between two attempts while the MEC platform is unreachable")
	env("mec-retry-max", "CMBS_MEC_RETRY_MAX")
	fs.StringVar(&m.OAuth2.TokenURL, "mec-oauth2-token-url", m.OAuth2.TokenURL, "OAuth2 token endpoint for the MEC platform (client credentials grant)")
	env("mec-oauth2-token-url", "CMBS_MEC_OAUTH2_TOKEN_URL")
	fs.StringVar(&m.OAuth2.ClientID, "mec-oauth2-client-id", m.OAuth2.ClientID, "OAuth2 client id for the MEC platform")
	env("mec-oauth2-client-id", "CMBS_MEC_OAUTH2_CLIENT_ID")
	fs.StringVar(&m.OAuth2.ClientSecret, "mec-oauth2-client-secret", m.OAuth2.ClientSecret, "OAuth2 client secret; prefer the variable, a flag shows in ps")
	env("mec-oauth2-client-secret", "CMBS_MEC_OAUTH2_CLIENT_SECRET")
	fs.StringSliceVar(&m.OAuth2.Scopes, "mec-oauth2-scopes", m.OAuth2.Scopes, "OAuth2 scopes to ask for, comma-separated")
	env("mec-oauth2-scopes", "CMBS_MEC_OAUTH2_SCOPES")
}

// applyEnv sets every field whose CMBS_* variable lookupEnv reports, even
// when empty, so a variable can clear what the file set.
func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) error {
	fs := pflag.NewFlagSet("env", pflag.ContinueOnError)
	c.register(fs)
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		names := f.Annotations[envAnnotation]
		if err != nil || len(names) == 0 {
			return
		}
		if v, ok := lookupEnv(names[0]); ok {
			if setErr := f.Value.Set(v); setErr != nil {
				err = fmt.Errorf("environment %s=%q: %w", names[0], v, setErr)
			}
		}
	})
	return err
}

// Flags connects the command-line flags of `cmbs serve` to a Config.
type Flags struct {
	fs   *pflag.FlagSet
	path string
}

// BindFlags declares --config and one flag per setting on fs. After fs is
// parsed, (*Flags).Load assembles the Config.
func BindFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.path, "config", "", "configuration file, YAML (.yaml, .yml) or JSON (.json)")
	// The flags' own values are only read back through Visit in apply; the
	// defaults shown in --help come from here.
	shown := Default()
	shown.register(fs)
	return f
}

// ConfigPath is the value of --config.
func (f *Flags) ConfigPath() string { return f.path }

// Load returns the configuration with every source applied, lowest first:
// defaults, the --config file, CMBS_* variables, then the flags given on the
// command line. It does not validate the result.
func (f *Flags) Load() (Config, error) {
	return f.load(os.LookupEnv)
}

func (f *Flags) load(lookupEnv func(string) (string, bool)) (Config, error) {
	c, err := load(f.path, lookupEnv)
	if err != nil {
		return Config{}, err
	}
	if err := f.apply(&c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadOver returns base with the CMBS_* variables and then the flags given
// on the command line applied, for a configuration that does not come
// from --config (the controls of an xApp descriptor). It fails when
// --config was given too. It does not validate the result.
func (f *Flags) LoadOver(base Config) (Config, error) {
	return f.loadOver(base, os.LookupEnv)
}

func (f *Flags) loadOver(base Config, lookupEnv func(string) (string, bool)) (Config, error) {
	if f.path != "" {
		return Config{}, fmt.Errorf("--config %s: the configuration comes from elsewhere already", f.path)
	}
	c := base
	if err := c.applyEnv(lookupEnv); err != nil {
		return Config{}, err
	}
	if err := f.apply(&c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// apply copies onto c the flags that were set on the command line, leaving
// the other fields as the file and environment left them.
func (f *Flags) apply(c *Config) error {
	target := pflag.NewFlagSet("flags", pflag.ContinueOnError)
	c.register(target)
	var err error
	f.fs.Visit(func(given *pflag.Flag) {
		dst := target.Lookup(given.Name)
		if err != nil || dst == nil {
			return
		}
		var setErr error
		if src, ok := given.Value.(pflag.SliceValue); ok {
			setErr = dst.Value.(pflag.SliceValue).Replace(src.GetSlice())
		} else {
			setErr = dst.Value.Set(given.Value.String())
		}
		if setErr != nil {
			err = fmt.Errorf("flag --%s: %w", given.Name, setErr)
		}
	})
	return err
}

// endpointMap is a flag of layer=endpoint pairs, given repeated or
// separated by commas; a layer named twice takes the last endpoint.
type endpointMap struct {
	m   *map[string]string
	set bool
}

func newEndpointMap(m *map[string]string) *endpointMap { return &endpointMap{m: m} }

func (e *endpointMap) Set(v string) error {
	if !e.set {
		// The first value given replaces what the file or the defaults
		// said; later ones add to it.
		*e.m = map[string]string{}
		e.set = true
	}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, ep, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%q is not layer=endpoint (e.g. l1=tcp://0.0.0.0:5010)", pair)
		}
		(*e.m)[strings.TrimSpace(k)] = strings.TrimSpace(ep)
	}
	return nil
}

func (e *endpointMap) String() string {
	if e.m == nil {
		return ""
	}
	keys := make([]string, 0, len(*e.m))
	for k := range *e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + (*e.m)[k]
	}
	return strings.Join(out, ",")
}

func (e *endpointMap) Type() string { return "layer=endpoint" }
