package main

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/keys"
	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/layers"
)

// memberSecurity reads the member's key pair (generating it in the data
// directory at the first start) and, with curve, its trusted keys, and
// sets them in bc. It says in the log how the layers are secured: plain
// mode is a warning.
func memberSecurity(cfg config.Config, bc *broker.Config, logger logrus.FieldLogger) error {
	path, generated := cfg.MemberKeyPath()
	var kp layers.KeyPair
	var err error
	switch {
	case path == "":
		// Validate allows this in plain mode only.
		logger.Info("no member key (a CouchDB store and no --member-key): the local member publishes no public key")
	case generated:
		var created bool
		if kp, created, err = keys.LoadOrCreate(path, defaultKeyComment()); err != nil {
			return fmt.Errorf("member key: %w", err)
		}
		if created {
			logger.WithFields(logrus.Fields{"file": path, "public": keys.PublicPath(path)}).
				Info("generated this member's key pair; add its public key to the trusted keys of the members it talks to")
		}
	default:
		if kp, err = keys.Load(path); err != nil {
			return fmt.Errorf("member key: %w", err)
		}
	}
	if path != "" {
		if err := keys.CheckMode(path); err != nil {
			logger.Warn(err.Error())
		}
		bc.Keys = &kp
	}

	if cfg.MemberSecurity != config.MemberSecurityCurve {
		if cfg.TrustedKeys != "" {
			logger.WithField("trusted_keys", cfg.TrustedKeys).Warn("trusted keys are ignored: member security is plain")
		}
		logger.WithField("public_key", kp.Public).Warn("member security is plain: anyone who reaches a layer socket can describe members, " +
			"rewrite their routes and deliver messages; outside development use --member-security curve with --trusted-keys")
		return nil
	}
	bc.Curve, bc.TrustOnFirstUse = true, cfg.TrustOnFirstUse
	fields := logrus.Fields{"public_key": kp.Public, "trust_on_first_use": cfg.TrustOnFirstUse}
	if cfg.TrustedKeys != "" {
		trust, err := keys.OpenTrust(cfg.TrustedKeys, keys.DefaultRecheck, logger)
		if err != nil {
			return err
		}
		bc.Trust = trust
		fields["trusted_keys"], fields["trusted"] = cfg.TrustedKeys, len(trust.Keys())
	}
	if cfg.TrustOnFirstUse {
		logger.WithFields(fields).Warn("member security is curve with trust on first use: any key is admitted, and bound to the first member it speaks for")
	} else {
		logger.WithFields(fields).Info("member security is curve: only trusted keys are admitted on the layers")
	}
	return nil
}
