package config

import (
	"path/filepath"

	"github.com/spf13/pflag"
)

// MemberKeyFile is the name of a member's secret key file in its data
// directory.
const MemberKeyFile = "member.key"

// registerMemberSecurity declares the flags of the member security
// settings; env annotates each with its variable.
func (c *Config) registerMemberSecurity(fs *pflag.FlagSet, env func(name, variable string)) {
	fs.StringVar(&c.MemberSecurity, "member-security", c.MemberSecurity,
		"layer sockets between members: curve (members prove their keys, only trusted keys are admitted) or plain (anyone who reaches a socket is heard; for development)")
	env("member-security", "CMBS_MEMBER_SECURITY")
	fs.StringVar(&c.MemberKey, "member-key", c.MemberKey,
		"the member's secret key file, from cmbs keygen (default: member.key in the data directory of a file: store, generated at first start)")
	env("member-key", "CMBS_MEMBER_KEY")
	fs.StringVar(&c.TrustedKeys, "trusted-keys", c.TrustedKeys,
		"file of the public keys admitted with curve, one per line with an optional comment; read again when it changes")
	env("trusted-keys", "CMBS_TRUSTED_KEYS")
	fs.BoolVar(&c.TrustOnFirstUse, "trust-on-first-use", c.TrustOnFirstUse,
		"with curve, admit keys that are not trusted, each bound to the first member it speaks for")
	env("trust-on-first-use", "CMBS_TRUST_ON_FIRST_USE")
}

// MemberKeyPath is the member's secret key file: MemberKey, or member.key
// in the data directory of a file: store. generated says a missing file
// may be generated (the default place); "" means there is none (a
// CouchDB store and no MemberKey).
func (c Config) MemberKeyPath() (path string, generated bool) {
	if c.MemberKey != "" {
		return c.MemberKey, false
	}
	spec, err := ParseStore(c.Store)
	if err != nil || spec.Backend != BackendBolt {
		return "", false
	}
	return filepath.Join(spec.Dir, MemberKeyFile), true
}

// validateMemberSecurity checks the member security settings together.
func (c Config) validateMemberSecurity(bad func(field, format string, args ...any)) {
	curve := false
	switch c.MemberSecurity {
	case MemberSecurityCurve:
		curve = true
	case MemberSecurityPlain:
	default:
		bad("member_security", "unknown mode %q (want curve or plain)", c.MemberSecurity)
	}
	if c.MemberKey != "" {
		if err := checkReadableFile(c.MemberKey); err != nil {
			bad("member_key", "%v (cmbs keygen --out DIR writes one)", err)
		}
	}
	if c.TrustedKeys != "" {
		if err := checkReadableFile(c.TrustedKeys); err != nil {
			bad("trusted_keys", "%v", err)
		}
	}
	if !curve {
		if c.TrustOnFirstUse {
			bad("trust_on_first_use", "trusts keys, which only member_security curve checks")
		}
		return
	}
	if c.TrustedKeys == "" && !c.TrustOnFirstUse {
		bad("trusted_keys", "member_security curve admits only the keys this file lists: set it (or trust_on_first_use)")
	}
	if path, _ := c.MemberKeyPath(); path == "" {
		bad("member_key", "member_security curve needs the member's key, and a CouchDB store has no data directory to keep one in: set member_key (cmbs keygen writes one)")
	}
}
