package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// MEC is the mec section: cmbs run as an ETSI MEC application (GS MEC
// 011). With Platform set, serve confirms READY to the platform once the
// layers are bound, registers the HTTP API and each layer endpoint as MEC
// services, subscribes to the application's termination, and on a
// termination notice drains, deregisters and confirms the termination.
type MEC struct {
	// Platform is the base URL of the MEC platform's Mp1 APIs, the part
	// before AppSupportRoot and ServiceMgmtRoot, such as
	// https://mec-platform.etsi.org/sbx1x2y3z/mep1. Empty turns the life
	// cycle off.
	Platform string `yaml:"platform" json:"platform"`
	// AppInstanceID is the id the MEC platform manager allocated to this
	// application instance.
	AppInstanceID string `yaml:"app_instance_id" json:"app_instance_id"`
	// AppSupportRoot and ServiceMgmtRoot are the two APIs' roots under
	// Platform, API name and version.
	AppSupportRoot  string `yaml:"app_support_root" json:"app_support_root"`
	ServiceMgmtRoot string `yaml:"service_mgmt_root" json:"service_mgmt_root"`
	// CallbackURL is the base URL at which the platform reaches this
	// server for notifications. Empty: PublicURL, else http on the
	// advertised host and the HTTP port.
	CallbackURL string `yaml:"callback_url" json:"callback_url"`
	// AdvertiseHost is the host named in the service transports for the
	// sockets bound to every interface (tcp://*:5010), and for the HTTP
	// API when PublicURL is empty. Empty: the host name.
	AdvertiseHost string `yaml:"advertise_host" json:"advertise_host"`
	// RetryMax caps the wait between two attempts while the platform is
	// unreachable or failing.
	RetryMax time.Duration `yaml:"retry_max" json:"retry_max"`
	// OAuth2 holds the client credentials for the platform's token
	// endpoint; empty sends requests without a token.
	OAuth2 OAuth2 `yaml:"oauth2" json:"oauth2"`
}

// OAuth2 is an OAuth 2.0 client of the client credentials grant (RFC 6749
// section 4.4), as MEC 009 has applications authenticate to Mp1.
type OAuth2 struct {
	TokenURL     string   `yaml:"token_url" json:"token_url"`
	ClientID     string   `yaml:"client_id" json:"client_id"`
	ClientSecret string   `yaml:"client_secret" json:"client_secret"`
	Scopes       []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// Enabled reports whether the mec section turns the life cycle on.
func (m MEC) Enabled() bool { return m.Platform != "" }

// Enabled reports whether client credentials are configured.
func (o OAuth2) Enabled() bool { return o.TokenURL != "" || o.ClientID != "" || o.ClientSecret != "" }

// Defaults of the mec section. The roots are those of the ETSI MEC Sandbox.
const (
	DefaultAppSupportRoot  = "mec_app_support/v2"
	DefaultServiceMgmtRoot = "mec_service_mgmt/v1"
	DefaultMECRetryMax     = 30 * time.Second
)

func defaultMEC() MEC {
	return MEC{AppSupportRoot: DefaultAppSupportRoot, ServiceMgmtRoot: DefaultServiceMgmtRoot, RetryMax: DefaultMECRetryMax}
}

// validateMEC adds the mec section's problems. Nothing is checked while
// the section is off, but what would be refused when it is turned on.
func validateMEC(c Config, bad func(field, format string, args ...any)) {
	m := c.MEC
	if !m.Enabled() {
		if m.AppInstanceID != "" || m.OAuth2.Enabled() {
			bad("mec.platform", "empty, but other mec settings are set; set it to the MEC platform's base URL to turn the MEC life cycle on")
		}
		return
	}
	if err := checkHTTPURL(m.Platform, false); err != nil {
		bad("mec.platform", "%v", err)
	}
	switch {
	case m.AppInstanceID == "":
		bad("mec.app_instance_id", "empty; the MEC platform manager allocates it to the application instance")
	case strings.ContainsAny(m.AppInstanceID, "/?#") || strings.TrimSpace(m.AppInstanceID) != m.AppInstanceID:
		bad("mec.app_instance_id", "%q is not a path segment (no /, ?, # or surrounding spaces)", m.AppInstanceID)
	}
	for field, root := range map[string]string{"mec.app_support_root": m.AppSupportRoot, "mec.service_mgmt_root": m.ServiceMgmtRoot} {
		if err := checkRoot(root); err != nil {
			bad(field, "%v", err)
		}
	}
	if m.CallbackURL != "" {
		if err := checkHTTPURL(m.CallbackURL, false); err != nil {
			bad("mec.callback_url", "%v", err)
		}
	}
	if strings.ContainsAny(m.AdvertiseHost, "/:*[] ") && net.ParseIP(m.AdvertiseHost) == nil {
		bad("mec.advertise_host", "%q is not a host name or IP address", m.AdvertiseHost)
	}
	if m.RetryMax <= 0 {
		bad("mec.retry_max", "must be positive, got %v", m.RetryMax)
	}
	if o := m.OAuth2; o.Enabled() {
		if err := checkHTTPURL(o.TokenURL, true); err != nil {
			bad("mec.oauth2.token_url", "%v", err)
		}
		if o.ClientID == "" {
			bad("mec.oauth2.client_id", "empty; client credentials need the client id and secret")
		}
		if o.ClientSecret == "" {
			bad("mec.oauth2.client_secret", "empty; client credentials need the client id and secret (env CMBS_MEC_OAUTH2_CLIENT_SECRET)")
		}
	}
	validateMECSockets(c.Member, bad)
}

// validateMECSockets refuses what cannot be registered: a started layer
// whose port the kernel picks is known only once bound, too late to tell
// the platform.
func validateMECSockets(m *Member, bad func(field, format string, args ...any)) {
	if m == nil {
		return
	}
	for _, l := range m.Start {
		if ep := m.Sockets[l]; strings.HasPrefix(ep, "tcp://") && strings.HasSuffix(ep, ":*") {
			bad("member.sockets."+l, "%s has no fixed port; the MEC service registration needs one", ep)
		}
	}
}

// checkHTTPURL accepts an absolute http(s) URL without query or fragment;
// credentials only when allowed.
func checkHTTPURL(raw string, credentials bool) error {
	if raw == "" {
		return errors.New("empty (want an absolute http or https URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return errors.New("names no host")
	case u.User != nil && !credentials:
		return errors.New("must not carry credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// checkRoot accepts a relative path such as mec_app_support/v2.
func checkRoot(root string) error {
	trimmed := strings.Trim(root, "/")
	if trimmed == "" {
		return errors.New("empty (want an API root such as mec_app_support/v2)")
	}
	for _, seg := range strings.Split(trimmed, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#% ") {
			return fmt.Errorf("%q is not a relative path of plain segments", root)
		}
	}
	return nil
}
