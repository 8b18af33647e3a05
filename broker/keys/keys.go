// Package keys keeps a member's long-term CURVE key pair on disk and reads
// the keys it trusts.
//
// A key directory holds member.key, the secret key (mode 0600), and
// member.pub, the public key followed by a comment, in the format of a
// trusted-keys file line, so that adding a member to another's trusted
// keys is appending its member.pub there. Keys are Z85 text (ZeroMQ's
// RFC 32), 40 characters each. A secret key file written by czmq's zcert
// or pyzmq (secret-key = "…") is read too.
//
// A trusted-keys file lists one public key per line, optionally followed
// by a comment, like SSH's authorized_keys; blank lines and lines whose
// first field is not a key but starts with # are comments. [Trust] reads
// it again when it changes.
package keys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/houssem/cmbs/layers"
)

// Names of the files in a key directory.
const (
	SecretFile = "member.key"
	PublicFile = "member.pub"
)

const secretHeader = "# cmbs member secret key (CURVE, Z85). Whoever holds it speaks for this member: keep it private.\n"

// PublicPath is where the public key of the secret key file at path is
// written: member.pub beside member.key, else path with .pub appended.
func PublicPath(path string) string {
	if base, ok := strings.CutSuffix(path, ".key"); ok {
		return base + ".pub"
	}
	return path + ".pub"
}

// Generate makes a new key pair and writes it to dir as member.key and
// member.pub, the public key followed by comment. It refuses to replace
// existing files: a member's key is its identity.
func Generate(dir, comment string) (layers.KeyPair, error) {
	return generate(filepath.Join(dir, SecretFile), comment)
}

func generate(secretPath, comment string) (layers.KeyPair, error) {
	kp, err := layers.NewKeyPair()
	if err != nil {
		return layers.KeyPair{}, err
	}
	pubPath := PublicPath(secretPath)
	for _, p := range []string{secretPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return layers.KeyPair{}, fmt.Errorf("%s exists already; a member's key is its identity, so it is not replaced (move it away first)", p)
		}
	}
	if err := os.MkdirAll(filepath.Dir(secretPath), 0o700); err != nil {
		return layers.KeyPair{}, err
	}
	if err := writeNew(secretPath, []byte(secretHeader+kp.Secret+"\n"), 0o600); err != nil {
		return layers.KeyPair{}, err
	}
	line := kp.Public
	if comment = strings.Join(strings.Fields(comment), " "); comment != "" {
		line += " " + comment
	}
	if err := writeNew(pubPath, []byte(line+"\n"), 0o644); err != nil {
		return layers.KeyPair{}, err
	}
	return kp, nil
}

// writeNew writes a file that must not exist yet, with perm from the
// start: the secret key is never readable by others, not even briefly.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

// Load reads the secret key file at path and derives the key pair.
func Load(path string) (layers.KeyPair, error) {
	if strings.HasSuffix(path, ".pub") {
		return layers.KeyPair{}, fmt.Errorf("%s is a public key file; the member key is the secret key file beside it", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return layers.KeyPair{}, err
	}
	secret, err := parseSecret(data)
	if err != nil {
		return layers.KeyPair{}, fmt.Errorf("%s: %w", path, err)
	}
	kp, err := layers.KeyPairFromSecret(secret)
	if err != nil {
		return layers.KeyPair{}, fmt.Errorf("%s: %w", path, err)
	}
	return kp, nil
}

// LoadOrCreate loads the secret key file at path, or, when there is none,
// generates a key pair there (its public key beside it, see PublicPath).
// created says which.
func LoadOrCreate(path, comment string) (kp layers.KeyPair, created bool, err error) {
	kp, err = Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kp, false, err
	}
	kp, err = generate(path, comment)
	return kp, err == nil, err
}

// CheckMode reports a secret key file others may read.
func CheckMode(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %04o): whoever reads it can speak for this member; chmod 600 it", path, perm)
	}
	return nil
}

// parseSecret finds the secret key in a key file: the first line that is
// a key, or czmq's secret-key = "…".
func parseSecret(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if v, ok := zcertValue(line, "secret-key"); ok {
			if err := layers.CheckKey(v); err != nil {
				return "", fmt.Errorf("line %d: %w", n, err)
			}
			return v, nil
		}
		field, rest, _ := strings.Cut(line, " ")
		if field == "" || layers.CheckKey(field) != nil {
			continue
		}
		if strings.TrimSpace(rest) != "" {
			// A key with a comment is how a public key file reads.
			return "", fmt.Errorf("line %d is a key followed by a comment, as in a public key file (member.pub), not a secret key", n)
		}
		return field, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no secret key in it (want a line holding a 40-character Z85 key)")
}

// zcertValue reads `name = "value"` as czmq's zcert files write it.
func zcertValue(line, name string) (string, bool) {
	rest, ok := strings.CutPrefix(line, name)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimSpace(rest), "=")
	if !ok {
		return "", false
	}
	return strings.Trim(strings.TrimSpace(rest), `"`), true
}

// TrustedKey is one line of a trusted-keys file.
type TrustedKey struct {
	Key     string
	Comment string
	Line    int
}

// ParseTrusted reads a trusted-keys file: one Z85 public key per line,
// then an optional comment. Blank lines, and lines whose first field is no
// key and that start with #, are skipped; any other line is an error
// naming it. A key listed twice is listed once.
func ParseTrusted(data []byte) ([]TrustedKey, error) {
	var out []TrustedKey
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	var errs []error
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		field, comment, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		if err := layers.CheckKey(field); err != nil {
			if strings.HasPrefix(line, "#") {
				continue
			}
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if seen[field] {
			continue
		}
		seen[field] = true
		out = append(out, TrustedKey{Key: field, Comment: strings.TrimSpace(comment), Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}
