package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/broker/keys"
)

// keygen writes a member's CURVE key pair: member.key (secret, 0600) and
// member.pub (public key and comment, a line for other members'
// trusted-keys files), and prints the public key line.
func (a *app) keygen(args []string) error {
	fs := pflag.NewFlagSet("keygen", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	out := fs.String("out", "", "directory to write member.key and member.pub to (created if missing); required")
	comment := fs.String("comment", "", "comment after the public key in member.pub (default cmbs@HOSTNAME)")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "Usage: cmbs keygen --out DIR [--comment TEXT]\n\n"+
			"Writes a member's CURVE key pair: DIR/member.key, the secret key (mode 0600), for\n"+
			"cmbs serve --member-key, and DIR/member.pub, the public key followed by a comment:\n"+
			"append it to the trusted-keys file (--trusted-keys) of every member that should\n"+
			"admit this one. Existing files are never replaced.\n\n"+fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: keygen: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: keygen takes no arguments, got %q", errUsage, fs.Args())
	}
	if *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: keygen needs --out DIR", errUsage)
	}
	if !fs.Changed("comment") {
		*comment = defaultKeyComment()
	}
	kp, err := keys.Generate(*out, *comment)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(a.stderr, "wrote %s (secret: keep it private) and %s\n",
		filepath.Join(*out, keys.SecretFile), filepath.Join(*out, keys.PublicFile))
	line := kp.Public
	if *comment != "" {
		line += " " + *comment
	}
	_, err = fmt.Fprintln(a.stdout, line)
	return err
}

// defaultKeyComment names the host a key was made on, as ssh-keygen does.
func defaultKeyComment() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "cmbs"
	}
	return "cmbs@" + host
}
