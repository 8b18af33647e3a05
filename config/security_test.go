package config

import (
	"path/filepath"
	"testing"
)

func TestValidateMemberSecurity(t *testing.T) {
	keyFile := writeFile(t, "member.key", "# a key\n")
	trusted := writeFile(t, "trusted-keys", "# none yet\n")
	dir := t.TempDir()
	tests := []validateCase{
		{name: "plain by default", change: func(*Config) {}},
		{name: "curve with trusted keys", change: func(c *Config) { c.MemberSecurity, c.TrustedKeys = "curve", trusted }},
		{name: "curve on first use", change: func(c *Config) { c.MemberSecurity, c.TrustOnFirstUse = "curve", true }},
		{name: "curve with a key file", change: func(c *Config) { c.MemberSecurity, c.TrustedKeys, c.MemberKey = "curve", trusted, keyFile }},
		{name: "unknown mode", change: func(c *Config) { c.MemberSecurity = "tls" }, wantFields: []string{"member_security"}, wantReason: `"tls"`},
		{name: "curve trusting no one", change: func(c *Config) { c.MemberSecurity = "curve" }, wantFields: []string{"trusted_keys"}, wantReason: "admits only the keys"},
		{name: "first use without curve", change: func(c *Config) { c.TrustOnFirstUse = true }, wantFields: []string{"trust_on_first_use"}, wantReason: "curve"},
		{name: "missing key file", change: func(c *Config) { c.MemberKey = filepath.Join(dir, "nope") }, wantFields: []string{"member_key"}, wantReason: "cmbs keygen"},
		{name: "missing trusted keys", change: func(c *Config) { c.TrustedKeys = dir }, wantFields: []string{"trusted_keys"}, wantReason: "directory"},
		{name: "curve on CouchDB without a key", change: func(c *Config) {
			c.MemberSecurity, c.TrustedKeys, c.Store = "curve", trusted, "http://127.0.0.1:5984/cmbs"
		}, wantFields: []string{"member_key"}, wantReason: "no data directory"},
	}
	runValidateCases(t, tests)
}

func TestMemberKeyPath(t *testing.T) {
	tests := []struct {
		store, key    string
		want          string
		wantGenerated bool
	}{
		{"file:/var/lib/cmbs", "", "/var/lib/cmbs/member.key", true},
		{"file:/var/lib/cmbs", "/etc/cmbs/member.key", "/etc/cmbs/member.key", false},
		{"http://127.0.0.1:5984/cmbs", "", "", false},
		{"http://127.0.0.1:5984/cmbs", "/k", "/k", false},
	}
	for _, tt := range tests {
		c := Default()
		c.Store, c.MemberKey = tt.store, tt.key
		if got, generated := c.MemberKeyPath(); got != tt.want || generated != tt.wantGenerated {
			t.Errorf("MemberKeyPath(%s, %q) = %q, %v; want %q, %v", tt.store, tt.key, got, generated, tt.want, tt.wantGenerated)
		}
	}
}
