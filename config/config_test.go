package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/config/tlstest"
)

// envMap is a lookupEnv over a fixed set of variables, so tests do not touch
// the process environment.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		content string
		want    func(*Config)
		wantErr string
	}{
		{
			name: "yaml",
			file: "cmbs.yaml",
			content: `http: 127.0.0.1:9000
store: http://admin:secret@127.0.0.1:5984/cmbs
public_url: https://cmbs.example.org
log_level: debug
log_format: json
strict: true
users_file: /etc/cmbs/users
shutdown_timeout: 30s
with_infrastructure: true
max_message_bytes: 1048576
tls_cert: /etc/cmbs/tls.crt
tls_key: /etc/cmbs/tls.key
tls_client_ca: /etc/cmbs/clients.pem
page_limit: 100
max_page_limit: 200
max_collection_requests: 8
member_security: curve
member_key: /etc/cmbs/member.key
trusted_keys: /etc/cmbs/trusted-keys
trust_on_first_use: true
bind_host: 0.0.0.0
bind_sockets:
  l1: tcp://*:5010
instance_id: server-a
lease_ttl: 20s
delivery:
  window: 512
  batch: 128
  ack_timeout: 5s
  retry_min: 50ms
  retry_max: 1m
  expiry: 1h
  max_wait: 10s
liveness:
  heartbeat_interval: 0s
  discovery_interval: 1m
  discovery_timeout: 2s
  discovery_attempts: 5
  forget_after: 72h
notifications:
  callback_timeout: 3s
  retry_attempts: 8
  retry_initial: 1s
  retry_max: 2m
  queue_size: 1000
  stream_buffer: 512
  stream_write_wait: 20s
  history: 4096
  history_bytes: 67108864
  status_interval: 5s
`,
			want: func(c *Config) {
				*c = Config{
					HTTP:                  "127.0.0.1:9000",
					Store:                 "http://admin:secret@127.0.0.1:5984/cmbs",
					PublicURL:             "https://cmbs.example.org",
					LogLevel:              "debug",
					LogFormat:             "json",
					Strict:                true,
					UsersFile:             "/etc/cmbs/users",
					ShutdownTimeout:       30 * time.Second,
					WithInfrastructure:    true,
					MaxMessageBytes:       1 << 20,
					TLSCert:               "/etc/cmbs/tls.crt",
					TLSKey:                "/etc/cmbs/tls.key",
					TLSClientCA:           "/etc/cmbs/clients.pem",
					PageLimit:             100,
					MaxPageLimit:          200,
					MaxCollectionRequests: 8,
					MemberSecurity:        "curve",
					MemberKey:             "/etc/cmbs/member.key",
					TrustedKeys:           "/etc/cmbs/trusted-keys",
					TrustOnFirstUse:       true,
					BindHost:              "0.0.0.0",
					BindSockets:           map[string]string{"l1": "tcp://*:5010"},
					InstanceID:            "server-a",
					LeaseTTL:              20 * time.Second,
					Delivery: Delivery{Window: 512, Batch: 128, AckTimeout: 5 * time.Second, RetryMin: 50 * time.Millisecond,
						RetryMax: time.Minute, Expiry: time.Hour, MaxWait: 10 * time.Second},
					Liveness: Liveness{HeartbeatInterval: 0, DiscoveryInterval: time.Minute,
						DiscoveryTimeout: 2 * time.Second, DiscoveryAttempts: 5, ForgetAfter: 72 * time.Hour},
					Notifications: Notifications{CallbackTimeout: 3 * time.Second, RetryAttempts: 8, RetryInitial: time.Second,
						RetryMax: 2 * time.Minute, QueueSize: 1000, StreamBuffer: 512, StreamWriteWait: 20 * time.Second,
						History: 4096, HistoryBytes: 64 << 20, StatusInterval: 5 * time.Second},
					MEC: defaultMEC(),
				}
			},
		},
		{
			name:    "json with tabs keeps unset defaults",
			file:    "cmbs.json",
			content: "{\n\t\"http\": \":9001\",\n\t\"strict\": true,\n\t\"shutdown_timeout\": \"2m\"\n}\n",
			want: func(c *Config) {
				c.HTTP = ":9001"
				c.Strict = true
				c.ShutdownTimeout = 2 * time.Minute
			},
		},
		{name: "yml extension", file: "c.yml", content: "log_level: warn\n", want: func(c *Config) { c.LogLevel = "warn" }},
		{name: "empty file is all defaults", file: "empty.yaml", content: "", want: func(*Config) {}},
		{name: "comments only", file: "c.yaml", content: "# nothing set\n", want: func(*Config) {}},
		{name: "unknown yaml key named", file: "c.yaml", content: "http: :1\nlisten: :2\n", wantErr: "c.yaml:2: listen: unknown key"},
		{name: "unknown json key named", file: "c.json", content: `{"strict": true, "Strict2": 1}`, wantErr: "c.json:1: Strict2: unknown key"},
		{name: "unsupported extension", file: "c.toml", content: "http = ':1'", wantErr: `unsupported extension ".toml"`},
		{name: "bad duration", file: "c.yaml", content: "shutdown_timeout: soon\n", wantErr: `shutdown_timeout: "soon" is not a duration`},
		{name: "wrong type", file: "c.yaml", content: "strict: [1]\n", wantErr: "strict: want boolean, got array"},
		{name: "two documents", file: "c.yaml", content: "http: :1\n---\nhttp: :2\n", wantErr: "more than one document"},
		{name: "not yaml", file: "c.json", content: "{\"http\": ", wantErr: "c.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			got, err := load(path, envMap(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := load(filepath.Join(t.TempDir(), "absent.yaml"), envMap(nil))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("load error = %v, want os.ErrNotExist", err)
	}
}

// TestPrecedence checks default < file < environment < flags, one field at a
// time and all together.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string // yaml content; empty means no --config
		env   map[string]string
		flags []string
		want  func(*Config)
	}{
		{name: "defaults", want: func(*Config) {}},
		{
			name: "file over default",
			file: "http: :7000\nlog_level: debug\n",
			want: func(c *Config) { c.HTTP = ":7000"; c.LogLevel = "debug" },
		},
		{
			name: "env over file",
			file: "http: :7000\nlog_level: debug\n",
			env:  map[string]string{"CMBS_HTTP": ":7001"},
			want: func(c *Config) { c.HTTP = ":7001"; c.LogLevel = "debug" },
		},
		{
			name:  "flag over env and file",
			file:  "http: :7000\n",
			env:   map[string]string{"CMBS_HTTP": ":7001"},
			flags: []string{"--http", ":7002"},
			want:  func(c *Config) { c.HTTP = ":7002" },
		},
		{
			name:  "flag set to its default still wins",
			file:  "log_format: json\n",
			flags: []string{"--log-format=text"},
			want:  func(c *Config) { c.LogFormat = "text" },
		},
		{
			name: "env may clear a file value",
			file: "users_file: /etc/cmbs/users\n",
			env:  map[string]string{"CMBS_USERS_FILE": ""},
			want: func(*Config) {},
		},
		{
			name: "every variable",
			env: map[string]string{
				"CMBS_HTTP":                    "127.0.0.1:1",
				"CMBS_STORE":                   "http://127.0.0.1:5984/x",
				"CMBS_PUBLIC_URL":              "http://a.example",
				"CMBS_LOG_LEVEL":               "trace",
				"CMBS_LOG_FORMAT":              "json",
				"CMBS_STRICT":                  "true",
				"CMBS_USERS_FILE":              "/u",
				"CMBS_SHUTDOWN_TIMEOUT":        "1s",
				"CMBS_WITH_INFRASTRUCTURE":     "true",
				"CMBS_MAX_MESSAGE_BYTES":       "1024",
				"CMBS_TLS_CERT":                "/c.pem",
				"CMBS_TLS_KEY":                 "/k.pem",
				"CMBS_TLS_CLIENT_CA":           "/ca.pem",
				"CMBS_PAGE_LIMIT":              "10",
				"CMBS_MAX_PAGE_LIMIT":          "20",
				"CMBS_MAX_COLLECTION_REQUESTS": "2",
				"CMBS_MEMBER_SECURITY":         "curve",
				"CMBS_MEMBER_KEY":              "/k",
				"CMBS_TRUSTED_KEYS":            "/t",
				"CMBS_TRUST_ON_FIRST_USE":      "true",
				"CMBS_BIND_HOST":               "0.0.0.0",
				"CMBS_BIND_SOCKETS":            "l1=tcp://0.0.0.0:5010, l2=tcp://10.0.0.1:5020",
				"CMBS_INSTANCE_ID":             "server-1",
				"CMBS_LEASE_TTL":               "30s",
			},
			want: func(c *Config) {
				*c = Config{HTTP: "127.0.0.1:1", Store: "http://127.0.0.1:5984/x", PublicURL: "http://a.example",
					LogLevel: "trace", LogFormat: "json", Strict: true, UsersFile: "/u", ShutdownTimeout: time.Second,
					WithInfrastructure: true, MaxMessageBytes: 1024, TLSCert: "/c.pem", TLSKey: "/k.pem", TLSClientCA: "/ca.pem",
					PageLimit: 10, MaxPageLimit: 20, MaxCollectionRequests: 2, MEC: defaultMEC(),
					MemberSecurity: "curve", MemberKey: "/k", TrustedKeys: "/t", TrustOnFirstUse: true,
					BindHost: "0.0.0.0", BindSockets: map[string]string{"l1": "tcp://0.0.0.0:5010", "l2": "tcp://10.0.0.1:5020"},
					InstanceID: "server-1", LeaseTTL: 30 * time.Second,
					Delivery: defaultDelivery(), Liveness: defaultLiveness(), Notifications: defaultNotifications()}
			},
		},
		{
			name: "every flag over every variable",
			env: map[string]string{
				"CMBS_HTTP": "127.0.0.1:1", "CMBS_STORE": "file:/a", "CMBS_PUBLIC_URL": "http://a.example",
				"CMBS_LOG_LEVEL": "trace", "CMBS_LOG_FORMAT": "json", "CMBS_STRICT": "true",
				"CMBS_USERS_FILE": "/u", "CMBS_SHUTDOWN_TIMEOUT": "1s", "CMBS_WITH_INFRASTRUCTURE": "true",
				"CMBS_MAX_MESSAGE_BYTES": "1024", "CMBS_TLS_CERT": "/c.pem", "CMBS_TLS_KEY": "/k.pem", "CMBS_TLS_CLIENT_CA": "/ca.pem",
				"CMBS_PAGE_LIMIT": "10", "CMBS_MAX_PAGE_LIMIT": "20", "CMBS_MAX_COLLECTION_REQUESTS": "2",
				"CMBS_MEMBER_SECURITY": "curve", "CMBS_MEMBER_KEY": "/k", "CMBS_TRUSTED_KEYS": "/t", "CMBS_TRUST_ON_FIRST_USE": "true",
				"CMBS_BIND_HOST": "0.0.0.0", "CMBS_BIND_SOCKETS": "l1=tcp://0.0.0.0:5010", "CMBS_INSTANCE_ID": "a", "CMBS_LEASE_TTL": "30s",
			},
			flags: []string{"--http=:2", "--store=file:/b", "--public-url=http://b.example", "--log-level=error",
				"--log-format=text", "--strict=false", "--users=/v", "--shutdown-timeout=2s", "--with-infrastructure=false",
				"--max-message-bytes=2048", "--tls-cert=/c2.pem", "--tls-key=/k2.pem", "--tls-client-ca=",
				"--page-limit=30", "--max-page-limit=40", "--max-collection-requests=3",
				"--member-security=plain", "--member-key=/k2", "--trusted-keys=", "--trust-on-first-use=false",
				"--bind-host=127.0.0.2", "--bind-socket=l2=tcp://127.0.0.3:5020", "--bind-socket", "l4=tcp://*:5040",
				"--instance-id=b", "--lease-ttl=5s"},
			want: func(c *Config) {
				*c = Config{HTTP: ":2", Store: "file:/b", PublicURL: "http://b.example", LogLevel: "error",
					LogFormat: "text", Strict: false, UsersFile: "/v", ShutdownTimeout: 2 * time.Second,
					MaxMessageBytes: 2048, TLSCert: "/c2.pem", TLSKey: "/k2.pem", PageLimit: 30, MaxPageLimit: 40, MaxCollectionRequests: 3,
					MemberSecurity: "plain", MemberKey: "/k2",
					BindHost: "127.0.0.2", BindSockets: map[string]string{"l2": "tcp://127.0.0.3:5020", "l4": "tcp://*:5040"},
					InstanceID: "b", LeaseTTL: 5 * time.Second, MEC: defaultMEC(),
					Delivery: defaultDelivery(), Liveness: defaultLiveness(), Notifications: defaultNotifications()}
			},
		},
		{
			name: "tuning sections from file, variables and flags",
			file: "delivery:\n  window: 100\n  batch: 10\n  expiry: 2h\nliveness:\n  heartbeat_interval: 2s\nnotifications:\n  history: 10\n  queue_size: 10\n",
			env: map[string]string{
				"CMBS_DELIVERY_WINDOW": "200", "CMBS_DELIVERY_ACK_TIMEOUT": "3s", "CMBS_DELIVERY_RETRY_MIN": "10ms",
				"CMBS_DELIVERY_RETRY_MAX": "5s", "CMBS_DELIVERY_EXPIRY": "3h", "CMBS_DELIVERY_MAX_WAIT": "1m",
				"CMBS_LIVENESS_DISCOVERY_TIMEOUT": "500ms", "CMBS_LIVENESS_DISCOVERY_ATTEMPTS": "2",
				"CMBS_LIVENESS_HEARTBEAT_INTERVAL": "0s", "CMBS_LIVENESS_DISCOVERY_INTERVAL": "10s", "CMBS_LIVENESS_FORGET_AFTER": "1h",
				"CMBS_NOTIFICATIONS_CALLBACK_TIMEOUT": "2s", "CMBS_NOTIFICATIONS_RETRY_ATTEMPTS": "3",
				"CMBS_NOTIFICATIONS_RETRY_INITIAL": "100ms", "CMBS_NOTIFICATIONS_RETRY_MAX": "10s",
				"CMBS_NOTIFICATIONS_QUEUE_SIZE": "20", "CMBS_NOTIFICATIONS_STREAM_BUFFER": "30",
				"CMBS_NOTIFICATIONS_STREAM_WRITE_WAIT": "4s", "CMBS_NOTIFICATIONS_HISTORY": "40",
				"CMBS_NOTIFICATIONS_HISTORY_BYTES": "1048576", "CMBS_NOTIFICATIONS_STATUS_INTERVAL": "250ms",
			},
			flags: []string{"--delivery-window=300", "--delivery-batch=30", "--liveness-heartbeat-interval=500ms",
				"--notifications-history=50", "--notifications-retry-max=20s"},
			want: func(c *Config) {
				c.Delivery = Delivery{Window: 300, Batch: 30, AckTimeout: 3 * time.Second, RetryMin: 10 * time.Millisecond,
					RetryMax: 5 * time.Second, Expiry: 3 * time.Hour, MaxWait: time.Minute}
				c.Liveness = Liveness{HeartbeatInterval: 500 * time.Millisecond, DiscoveryInterval: 10 * time.Second,
					DiscoveryTimeout: 500 * time.Millisecond, DiscoveryAttempts: 2, ForgetAfter: time.Hour}
				c.Notifications = Notifications{CallbackTimeout: 2 * time.Second, RetryAttempts: 3, RetryInitial: 100 * time.Millisecond,
					RetryMax: 20 * time.Second, QueueSize: 20, StreamBuffer: 30, StreamWriteWait: 4 * time.Second,
					History: 50, HistoryBytes: 1 << 20, StatusInterval: 250 * time.Millisecond}
			},
		},
		{
			name: "mec section from file, variables and flags",
			file: "mec:\n  platform: https://mep.example/sbx/mep1\n  app_instance_id: from-file\n  oauth2: {client_id: file-id, scopes: [a]}\n",
			env: map[string]string{
				"CMBS_MEC_APP_INSTANCE_ID": "from-env", "CMBS_MEC_OAUTH2_CLIENT_SECRET": "s3cret",
				"CMBS_MEC_OAUTH2_SCOPES": "mec_app_support,mec_service_mgmt", "CMBS_MEC_RETRY_MAX": "5s",
			},
			flags: []string{"--mec-callback-url=http://cmbs.example:8090", "--mec-oauth2-token-url=https://auth.example/token",
				"--mec-app-support-root=mec_app_support/v1", "--mec-service-mgmt-root=sm/v1", "--mec-advertise-host=cmbs.example"},
			want: func(c *Config) {
				c.MEC = MEC{Platform: "https://mep.example/sbx/mep1", AppInstanceID: "from-env",
					AppSupportRoot: "mec_app_support/v1", ServiceMgmtRoot: "sm/v1",
					CallbackURL: "http://cmbs.example:8090", AdvertiseHost: "cmbs.example", RetryMax: 5 * time.Second,
					OAuth2: OAuth2{TokenURL: "https://auth.example/token", ClientID: "file-id", ClientSecret: "s3cret",
						Scopes: []string{"mec_app_support", "mec_service_mgmt"}}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.flags
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, "cmbs.yaml", tt.file)}, args...)
			}
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			flags := BindFlags(fs)
			if err := fs.Parse(args); err != nil {
				t.Fatalf("parse %v: %v", args, err)
			}
			got, err := flags.load(envMap(tt.env))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		flags   []string
		wantErr string
	}{
		{name: "bad bool variable", env: map[string]string{"CMBS_STRICT": "maybe"}, wantErr: "CMBS_STRICT"},
		{name: "bad duration variable", env: map[string]string{"CMBS_SHUTDOWN_TIMEOUT": "10"}, wantErr: "CMBS_SHUTDOWN_TIMEOUT"},
		{name: "bad infrastructure variable", env: map[string]string{"CMBS_WITH_INFRASTRUCTURE": "sometimes"}, wantErr: "CMBS_WITH_INFRASTRUCTURE"},
		{name: "missing config file", flags: []string{"--config", "/nonexistent/cmbs.yaml"}, wantErr: "/nonexistent/cmbs.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			flags := BindFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			_, err := flags.load(envMap(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("load error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestFlagsAndVariables pins the documented names: every setting has a flag
// and a CMBS_* variable, and --help mentions the variable.
func TestFlagsAndVariables(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	BindFlags(fs)
	got := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[envAnnotation]
		if len(env) == 1 {
			got[f.Name] = env[0]
			if !strings.Contains(f.Usage, env[0]) {
				t.Errorf("usage of --%s does not name %s: %q", f.Name, env[0], f.Usage)
			}
		} else if f.Name != "config" {
			t.Errorf("flag --%s has no environment variable", f.Name)
		}
	})
	want := map[string]string{
		"http":                    "CMBS_HTTP",
		"store":                   "CMBS_STORE",
		"public-url":              "CMBS_PUBLIC_URL",
		"log-level":               "CMBS_LOG_LEVEL",
		"log-format":              "CMBS_LOG_FORMAT",
		"strict":                  "CMBS_STRICT",
		"users":                   "CMBS_USERS_FILE",
		"shutdown-timeout":        "CMBS_SHUTDOWN_TIMEOUT",
		"with-infrastructure":     "CMBS_WITH_INFRASTRUCTURE",
		"max-message-bytes":       "CMBS_MAX_MESSAGE_BYTES",
		"tls-cert":                "CMBS_TLS_CERT",
		"tls-key":                 "CMBS_TLS_KEY",
		"tls-client-ca":           "CMBS_TLS_CLIENT_CA",
		"page-limit":              "CMBS_PAGE_LIMIT",
		"max-page-limit":          "CMBS_MAX_PAGE_LIMIT",
		"max-collection-requests": "CMBS_MAX_COLLECTION_REQUESTS",
		"member-security":         "CMBS_MEMBER_SECURITY",
		"member-key":              "CMBS_MEMBER_KEY",
		"trusted-keys":            "CMBS_TRUSTED_KEYS",
		"trust-on-first-use":      "CMBS_TRUST_ON_FIRST_USE",
		"bind-host":               "CMBS_BIND_HOST",
		"bind-socket":             "CMBS_BIND_SOCKETS",
		"instance-id":             "CMBS_INSTANCE_ID",
		"lease-ttl":               "CMBS_LEASE_TTL",

		"mec-platform":             "CMBS_MEC_PLATFORM",
		"mec-app-instance-id":      "CMBS_MEC_APP_INSTANCE_ID",
		"mec-app-support-root":     "CMBS_MEC_APP_SUPPORT_ROOT",
		"mec-service-mgmt-root":    "CMBS_MEC_SERVICE_MGMT_ROOT",
		"mec-callback-url":         "CMBS_MEC_CALLBACK_URL",
		"mec-advertise-host":       "CMBS_MEC_ADVERTISE_HOST",
		"mec-retry-max":            "CMBS_MEC_RETRY_MAX",
		"mec-oauth2-token-url":     "CMBS_MEC_OAUTH2_TOKEN_URL",
		"mec-oauth2-client-id":     "CMBS_MEC_OAUTH2_CLIENT_ID",
		"mec-oauth2-client-secret": "CMBS_MEC_OAUTH2_CLIENT_SECRET",
		"mec-oauth2-scopes":        "CMBS_MEC_OAUTH2_SCOPES",

		"delivery-window":      "CMBS_DELIVERY_WINDOW",
		"delivery-batch":       "CMBS_DELIVERY_BATCH",
		"delivery-ack-timeout": "CMBS_DELIVERY_ACK_TIMEOUT",
		"delivery-retry-min":   "CMBS_DELIVERY_RETRY_MIN",
		"delivery-retry-max":   "CMBS_DELIVERY_RETRY_MAX",
		"delivery-expiry":      "CMBS_DELIVERY_EXPIRY",
		"delivery-max-wait":    "CMBS_DELIVERY_MAX_WAIT",

		"liveness-heartbeat-interval": "CMBS_LIVENESS_HEARTBEAT_INTERVAL",
		"liveness-discovery-interval": "CMBS_LIVENESS_DISCOVERY_INTERVAL",
		"liveness-discovery-timeout":  "CMBS_LIVENESS_DISCOVERY_TIMEOUT",
		"liveness-discovery-attempts": "CMBS_LIVENESS_DISCOVERY_ATTEMPTS",
		"liveness-forget-after":       "CMBS_LIVENESS_FORGET_AFTER",

		"notifications-callback-timeout":  "CMBS_NOTIFICATIONS_CALLBACK_TIMEOUT",
		"notifications-retry-attempts":    "CMBS_NOTIFICATIONS_RETRY_ATTEMPTS",
		"notifications-retry-initial":     "CMBS_NOTIFICATIONS_RETRY_INITIAL",
		"notifications-retry-max":         "CMBS_NOTIFICATIONS_RETRY_MAX",
		"notifications-queue-size":        "CMBS_NOTIFICATIONS_QUEUE_SIZE",
		"notifications-stream-buffer":     "CMBS_NOTIFICATIONS_STREAM_BUFFER",
		"notifications-stream-write-wait": "CMBS_NOTIFICATIONS_STREAM_WRITE_WAIT",
		"notifications-history":           "CMBS_NOTIFICATIONS_HISTORY",
		"notifications-history-bytes":     "CMBS_NOTIFICATIONS_HISTORY_BYTES",
		"notifications-status-interval":   "CMBS_NOTIFICATIONS_STATUS_INTERVAL",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags and variables = %v, want %v", got, want)
	}
	// Every Config field is reachable from a flag: one flag per field, but
	// for the sections set in the file only; the fields of the mec (and
	// its oauth2), delivery, liveness and notifications sections have one
	// each.
	fileOnly := map[string]bool{"Backends": true, "Member": true}
	sections := map[string]bool{"MEC": true, "OAuth2": true, "Delivery": true, "Liveness": true, "Notifications": true}
	var count func(t reflect.Type) int
	count = func(t reflect.Type) int {
		n := 0
		for f := range t.Fields() {
			switch {
			case fileOnly[f.Name]:
			case sections[f.Name]:
				n += count(f.Type)
			default:
				n++
			}
		}
		return n
	}
	withFlag := count(reflect.TypeFor[Config]())
	if withFlag != len(want) {
		t.Errorf("Config has %d fields settable by flag but %d flags", withFlag, len(want))
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	usersFile := writeFile(t, "users", "alice:$2y$10$abcdefghijklmnopqrstuv\n")
	dir := t.TempDir()
	certs, other := tlstest.Write(t, "cmbs"), tlstest.Write(t, "other")
	certFile, keyFile, otherKey := certs.Cert, certs.Key, other.Key
	tests := []struct {
		name       string
		change     func(*Config)
		wantFields []string
		wantReason string
	}{
		{name: "defaults are valid", change: func(*Config) {}},
		{name: "everything set", change: func(c *Config) {
			c.HTTP = "127.0.0.1:0"
			c.Store = "https://u:p@couch.example:6984/cmbs"
			c.PublicURL = "https://cmbs.example/base"
			c.LogLevel = "warning"
			c.LogFormat = "json"
			c.UsersFile = usersFile
		}},
		{name: "ipv6 listen address", change: func(c *Config) { c.HTTP = "[::1]:8090" }},
		{name: "empty http", change: func(c *Config) { c.HTTP = "" }, wantFields: []string{"http"}, wantReason: "empty"},
		{name: "http without port", change: func(c *Config) { c.HTTP = "localhost" }, wantFields: []string{"http"}, wantReason: "not host:port"},
		{name: "http bad port", change: func(c *Config) { c.HTTP = ":99999" }, wantFields: []string{"http"}, wantReason: "port"},
		{name: "store bad scheme", change: func(c *Config) { c.Store = "mongodb://x/y" }, wantFields: []string{"store"}, wantReason: `unsupported scheme "mongodb"`},
		{name: "store no scheme", change: func(c *Config) { c.Store = "./data" }, wantFields: []string{"store"}, wantReason: "no scheme"},
		{name: "public url relative", change: func(c *Config) { c.PublicURL = "/cmbs" }, wantFields: []string{"public_url"}, wantReason: "scheme"},
		{name: "public url ftp", change: func(c *Config) { c.PublicURL = "ftp://x" }, wantFields: []string{"public_url"}, wantReason: `"ftp"`},
		{name: "public url credentials", change: func(c *Config) { c.PublicURL = "http://u:p@x" }, wantFields: []string{"public_url"}, wantReason: "credentials"},
		{name: "public url query", change: func(c *Config) { c.PublicURL = "http://x/?a=b" }, wantFields: []string{"public_url"}, wantReason: "query"},
		{name: "log level", change: func(c *Config) { c.LogLevel = "loud" }, wantFields: []string{"log_level"}, wantReason: `"loud"`},
		{name: "log format", change: func(c *Config) { c.LogFormat = "xml" }, wantFields: []string{"log_format"}, wantReason: `"xml"`},
		{name: "users file missing", change: func(c *Config) { c.UsersFile = filepath.Join(dir, "nope") }, wantFields: []string{"users_file"}, wantReason: "no such file"},
		{name: "users file is a dir", change: func(c *Config) { c.UsersFile = dir }, wantFields: []string{"users_file"}, wantReason: "directory"},
		{name: "shutdown timeout", change: func(c *Config) { c.ShutdownTimeout = 0 }, wantFields: []string{"shutdown_timeout"}, wantReason: "positive"},
		{name: "message limit", change: func(c *Config) { c.MaxMessageBytes = -1 }, wantFields: []string{"max_message_bytes"}, wantReason: "positive"},
		{name: "page limit", change: func(c *Config) { c.PageLimit = 0 }, wantFields: []string{"page_limit"}, wantReason: "positive"},
		{name: "page limit over the maximum", change: func(c *Config) { c.PageLimit = 100; c.MaxPageLimit = 10 }, wantFields: []string{"max_page_limit"}, wantReason: "at least page_limit (100)"},
		{name: "collection requests", change: func(c *Config) { c.MaxCollectionRequests = 0 }, wantFields: []string{"max_collection_requests"}, wantReason: "positive"},
		{name: "tls key without cert", change: func(c *Config) { c.TLSKey = keyFile }, wantFields: []string{"tls_cert"}, wantReason: "needs both"},
		{name: "tls cert without key", change: func(c *Config) { c.TLSCert = certFile }, wantFields: []string{"tls_key"}, wantReason: "needs both"},
		{name: "tls client ca without tls", change: func(c *Config) { c.TLSClientCA = certFile }, wantFields: []string{"tls_client_ca"}, wantReason: "need HTTPS"},
		{name: "tls", change: func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = certFile, keyFile, certFile }},
		{name: "bind", change: func(c *Config) {
			c.BindHost, c.BindSockets = "0.0.0.0", map[string]string{"l1": "tcp://*:5010", "l32": "ipc:///run/cmbs/l32"}
		}},
		{name: "bind host", change: func(c *Config) { c.BindHost = "0.0.0.0:5010" }, wantFields: []string{"bind_host"}, wantReason: "not an address"},
		{name: "bind socket of no layer", change: func(c *Config) { c.BindSockets = map[string]string{"l5": "tcp://*:1"} }, wantFields: []string{"bind_sockets.l5"}, wantReason: "unknown layer"},
		{name: "bind socket not an endpoint", change: func(c *Config) { c.BindSockets = map[string]string{"l1": "0.0.0.0:5010"} }, wantFields: []string{"bind_sockets.l1"}, wantReason: "not a ZeroMQ endpoint"},
		{name: "lease ttl", change: func(c *Config) { c.LeaseTTL = 100 * time.Millisecond }, wantFields: []string{"lease_ttl"}, wantReason: "at least 1s"},
		{name: "instance id", change: func(c *Config) { c.InstanceID = "a/b" }, wantFields: []string{"instance_id"}, wantReason: "slashes"},
		{name: "tls key of another certificate", change: func(c *Config) { c.TLSCert, c.TLSKey = certFile, otherKey }, wantFields: []string{"tls_cert"}, wantReason: "private key does not match"},
		{name: "tls missing files", change: func(c *Config) { c.TLSCert, c.TLSKey = filepath.Join(dir, "c"), filepath.Join(dir, "k") }, wantFields: []string{"tls_cert"}, wantReason: "no such file"},
		{name: "tls client ca not PEM", change: func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = certFile, keyFile, usersFile }, wantFields: []string{"tls_client_ca"}, wantReason: "no PEM certificate"},
		{name: "liveness off", change: func(c *Config) { c.Liveness.HeartbeatInterval = 0 }},
		{name: "delivery window", change: func(c *Config) { c.Delivery.Window = 0 }, wantFields: []string{"delivery.window"}, wantReason: "positive"},
		{name: "delivery batch over the window", change: func(c *Config) { c.Delivery.Window, c.Delivery.Batch = 8, 16 },
			wantFields: []string{"delivery.batch"}, wantReason: "at most delivery.window (8), got 16"},
		{name: "delivery batch equal to the window", change: func(c *Config) { c.Delivery.Window, c.Delivery.Batch = 16, 16 }},
		{name: "delivery retries", change: func(c *Config) { c.Delivery.RetryMin, c.Delivery.RetryMax = time.Minute, time.Second },
			wantFields: []string{"delivery.retry_max"}, wantReason: "at least delivery.retry_min (1m0s), got 1s"},
		{name: "delivery retry min", change: func(c *Config) { c.Delivery.RetryMin = 0 }, wantFields: []string{"delivery.retry_min"}, wantReason: "positive"},
		{name: "discovery attempts", change: func(c *Config) { c.Liveness.DiscoveryAttempts = 0 },
			wantFields: []string{"liveness.discovery_attempts"}, wantReason: "positive, got 0"},
		{name: "negative heartbeat", change: func(c *Config) { c.Liveness.HeartbeatInterval = -time.Second },
			wantFields: []string{"liveness.heartbeat_interval"}, wantReason: "or 0s to turn liveness off"},
		{name: "notification retries", change: func(c *Config) { c.Notifications.RetryInitial, c.Notifications.RetryMax = time.Minute, time.Second },
			wantFields: []string{"notifications.retry_max"}, wantReason: "at least notifications.retry_initial (1m0s)"},
		{
			name: "every tuning problem at once",
			change: func(c *Config) {
				c.Delivery, c.Liveness, c.Notifications = Delivery{}, Liveness{}, Notifications{}
			},
			wantFields: []string{"delivery.ack_timeout", "delivery.batch", "delivery.expiry", "delivery.max_wait",
				"delivery.retry_max", "delivery.retry_min", "delivery.window",
				"liveness.discovery_attempts", "liveness.discovery_interval", "liveness.discovery_timeout", "liveness.forget_after",
				"notifications.callback_timeout", "notifications.history", "notifications.history_bytes", "notifications.queue_size",
				"notifications.retry_attempts", "notifications.retry_initial", "notifications.retry_max",
				"notifications.status_interval", "notifications.stream_buffer", "notifications.stream_write_wait"},
			wantReason: "must be positive",
		},
		{
			name: "every problem at once",
			change: func(c *Config) {
				*c = Config{HTTP: "x", Store: "s3://b", PublicURL: "nope", LogLevel: "x", LogFormat: "x", UsersFile: dir, TLSKey: "k",
					Delivery: defaultDelivery(), Liveness: defaultLiveness(), Notifications: defaultNotifications()}
			},
			wantFields: []string{"http", "lease_ttl", "log_format", "log_level", "max_collection_requests", "max_message_bytes", "max_page_limit",
				"member_security", "page_limit", "public_url", "shutdown_timeout", "store", "tls_cert", "users_file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			var fields []string
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *FieldError", e)
				}
				fields = append(fields, fe.Field)
				if tt.wantReason != "" && !strings.Contains(fe.Reason, tt.wantReason) {
					t.Errorf("reason %q does not contain %q", fe.Reason, tt.wantReason)
				}
				if !strings.HasPrefix(e.Error(), fe.Field+": ") {
					t.Errorf("error %q does not start with its field", e)
				}
			}
			sort.Strings(fields)
			if !reflect.DeepEqual(fields, tt.wantFields) {
				t.Errorf("fields with errors = %v, want %v (err: %v)", fields, tt.wantFields, err)
			}
		})
	}
}

func TestParseStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    StoreSpec
		wantErr string
	}{
		{raw: "file:./data", want: StoreSpec{Backend: BackendBolt, Dir: "data"}},
		{raw: "file:data/", want: StoreSpec{Backend: BackendBolt, Dir: "data"}},
		{raw: "file:/var/lib/cmbs", want: StoreSpec{Backend: BackendBolt, Dir: "/var/lib/cmbs"}},
		{raw: "file:///var/lib/cmbs", want: StoreSpec{Backend: BackendBolt, Dir: "/var/lib/cmbs"}},
		{raw: "http://admin:pw@127.0.0.1:5984/cmbs", want: StoreSpec{Backend: BackendCouch, URL: "http://admin:pw@127.0.0.1:5984/cmbs"}},
		{raw: "https://couch.example/cmbs", want: StoreSpec{Backend: BackendCouch, URL: "https://couch.example/cmbs"}},
		{raw: "", wantErr: "empty"},
		{raw: "file:", wantErr: "no directory"},
		{raw: "file://remote/x", wantErr: `host "remote"`},
		{raw: "file:./data?x=1", wantErr: "no query"},
		{raw: "http://127.0.0.1:5984", wantErr: "no database"},
		{raw: "http://127.0.0.1:5984/", wantErr: "no database"},
		{raw: "http:///cmbs", wantErr: "no host"},
		{raw: "redis://x/0", wantErr: `unsupported scheme "redis"`},
		{raw: "http://admin:se%zzcret@h/db", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseStore(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStore error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "se%zzcret") {
					t.Errorf("error %q leaks the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStore: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseStore = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"file:./data":                       "file:data",
		"http://admin:pw@127.0.0.1:5984/db": "http://admin:xxxxx@127.0.0.1:5984/db",
		"https://couch.example/db":          "https://couch.example/db",
	}
	for raw, want := range tests {
		spec, err := ParseStore(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := spec.Redacted(); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestBoltPath(t *testing.T) {
	t.Parallel()
	spec, err := ParseStore("file:/var/lib/cmbs")
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.BoltPath(); got != "/var/lib/cmbs/cmbs.db" {
		t.Errorf("BoltPath = %q", got)
	}
}

// TestExampleFile keeps the documented example loadable and valid, both as
// it is and with its commented-out sections switched on.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	c, err := load("cmbs.example.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Store = "file:/var/lib/cmbs"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example = %+v, want the defaults with store %q", c, want.Store)
	}

	raw, err := os.ReadFile("cmbs.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "uncommented.yaml", uncomment(string(raw), "backends:", "member:", "mec:"))
	if err := CheckFile(path); err != nil {
		t.Fatalf("example with its sections switched on: %v", err)
	}
	c, err = load(path, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Backends, DefaultBackends()) {
		t.Errorf("example backends = %+v, want the defaults %+v", c.Backends, DefaultBackends())
	}
	if c.Member == nil || c.Member.ID != "member-a" || len(c.Member.Sockets) != 5 || len(c.Member.Start) != 5 || !c.Member.Discover {
		t.Errorf("example member = %+v", c.Member)
	}
	if c.MEC.Platform == "" || c.MEC.AppInstanceID == "" || c.MEC.OAuth2.ClientID != "cmbs" {
		t.Errorf("example mec = %+v", c.MEC)
	}
}

// uncomment switches on the commented-out sections of a YAML file that
// start with one of keys: the "# key:" line and the "#   ..." lines after it.
func uncomment(content string, keys ...string) string {
	lines := strings.Split(content, "\n")
	in := false
	for i, l := range lines {
		switch {
		case slices.ContainsFunc(keys, func(k string) bool { return l == "# "+k }):
			in = true
		case in && strings.HasPrefix(l, "#   "):
		default:
			in = false
			continue
		}
		lines[i] = strings.TrimPrefix(l, "# ")
	}
	return strings.Join(lines, "\n")
}

// validateCase is a change to the default configuration, the fields
// Validate must then name, and what each reason must contain.
type validateCase struct {
	name       string
	change     func(*Config)
	wantFields []string
	wantReason string
}

// runValidateCases runs each case as a subtest.
func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			var fields []string
			for _, e := range unjoin(c.Validate()) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *FieldError", e)
				}
				fields = append(fields, fe.Field)
				if !strings.Contains(fe.Reason, tt.wantReason) {
					t.Errorf("reason %q does not contain %q", fe.Reason, tt.wantReason)
				}
			}
			sort.Strings(fields)
			if !reflect.DeepEqual(fields, tt.wantFields) {
				t.Errorf("fields with errors = %v, want %v", fields, tt.wantFields)
			}
		})
	}
}
