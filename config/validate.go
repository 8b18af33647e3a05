package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// FieldError is one problem with one setting. Field is the setting's key
// path in a config file: http, log_level, member.sockets.l1,
// member.start[0]. Schema violations and Validate's checks both read so.
type FieldError struct {
	Field  string
	Reason string
	// Line is where the setting is in the config file, when the problem
	// was found in one (CheckFile, a *FileError); 0 otherwise.
	Line int
}

// Error reads "field: reason", or only the reason for a problem of the
// whole file (no field).
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Validate checks every setting and returns all problems joined, each a
// *FieldError, or nil. It reads the users file's metadata to report an
// unreadable file before the server starts.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}

	if err := checkListenAddr(c.HTTP); err != nil {
		bad("http", "%v", err)
	}
	if _, err := ParseStore(c.Store); err != nil {
		bad("store", "%v", err)
	}
	if err := checkPublicURL(c.PublicURL); err != nil {
		bad("public_url", "%v", err)
	}
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		bad("log_level", "unknown level %q (want trace, debug, info, warn, error, fatal or panic)", c.LogLevel)
	}
	if c.LogFormat != LogFormatText && c.LogFormat != LogFormatJSON {
		bad("log_format", "unknown format %q (want text or json)", c.LogFormat)
	}
	if c.UsersFile != "" {
		if err := checkReadableFile(c.UsersFile); err != nil {
			bad("users_file", "%v", err)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive, got %v", c.ShutdownTimeout)
	}
	if c.MaxMessageBytes <= 0 {
		bad("max_message_bytes", "must be positive, got %d", c.MaxMessageBytes)
	}
	if c.PageLimit <= 0 {
		bad("page_limit", "must be positive, got %d", c.PageLimit)
	}
	switch {
	case c.MaxPageLimit <= 0:
		bad("max_page_limit", "must be positive, got %d", c.MaxPageLimit)
	case c.MaxPageLimit < c.PageLimit:
		bad("max_page_limit", "must be at least page_limit (%d), got %d", c.PageLimit, c.MaxPageLimit)
	}
	if c.MaxCollectionRequests <= 0 {
		bad("max_collection_requests", "must be positive, got %d", c.MaxCollectionRequests)
	}
	c.validateBind(bad)
	if c.LeaseTTL < time.Second {
		bad("lease_ttl", "must be at least 1s, got %v", c.LeaseTTL)
	}
	if strings.TrimSpace(c.InstanceID) != c.InstanceID || strings.Contains(c.InstanceID, "/") {
		bad("instance_id", "%q: no surrounding spaces or slashes", c.InstanceID)
	}
	c.validateTLS(bad)
	validateBackends(c.Backends, bad)
	if c.Member != nil {
		validateMember(c.Member, bad)
	}
	c.validateMemberSecurity(bad)
	validateMEC(c, bad)
	return errors.Join(errs...)
}

func checkListenAddr(addr string) error {
	if addr == "" {
		return errors.New("empty (want host:port, e.g. :8090)")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func checkPublicURL(raw string) error {
	if raw == "" {
		return nil
	}
	return checkHTTPURL(raw, false)
}

func checkReadableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

// validateTLS checks the HTTPS settings by loading them as the server
// will, so a key that does not match its certificate is reported before
// the server starts.
func (c Config) validateTLS(bad func(field, format string, args ...any)) {
	switch {
	case c.TLSCert == "" && c.TLSKey == "":
		if c.TLSClientCA != "" {
			bad("tls_client_ca", "client certificates need HTTPS: set tls_cert and tls_key too")
		}
		return
	case c.TLSCert == "":
		bad("tls_cert", "tls_key is set but tls_cert is not; HTTPS needs both")
		return
	case c.TLSKey == "":
		bad("tls_key", "tls_cert is set but tls_key is not; HTTPS needs both")
		return
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		bad("tls_cert", "%v", err)
	}
	if c.TLSClientCA != "" {
		if _, err := LoadCertPool(c.TLSClientCA); err != nil {
			bad("tls_client_ca", "%v", err)
		}
	}
}

// LoadCertPool reads the PEM certificates of a file into a pool, refusing
// a file that holds none.
func LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// bindNamePattern accepts an interface name, which libzmq binds a tcp
// socket on as it does an address or *.
var bindNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validateBind checks bind_host and bind_sockets. The endpoints are
// checked in full by the broker when it binds them.
func (c Config) validateBind(bad func(field, format string, args ...any)) {
	if h := c.BindHost; h != "" && h != "*" && net.ParseIP(h) == nil && !bindNamePattern.MatchString(h) {
		bad("bind_host", "%q is not an address, * or an interface name (e.g. 0.0.0.0)", c.BindHost)
	}
	layers := MemberLayers()
	for l, ep := range c.BindSockets {
		field := "bind_sockets." + l
		switch {
		case !slices.Contains(layers, l):
			bad(field, "unknown layer (want %s)", strings.Join(layers, ", "))
		case !strings.Contains(ep, "://"):
			bad(field, "%q is not a ZeroMQ endpoint such as tcp://0.0.0.0:5010", ep)
		}
	}
}
