package keys

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/houssem/cmbs/layers"
)

func newPair(t *testing.T) layers.KeyPair {
	t.Helper()
	kp, err := layers.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestGenerateAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	kp, err := Generate(dir, "member a@host")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, SecretFile)
	info, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("member.key mode %04o, want 0600", perm)
	}
	if err := CheckMode(secret); err != nil {
		t.Errorf("CheckMode: %v", err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, PublicFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := kp.Public + " member a@host\n"; string(pub) != want {
		t.Errorf("member.pub = %q, want %q", pub, want)
	}
	// member.pub is a trusted-keys line as it is.
	if keys, err := ParseTrusted(pub); err != nil || len(keys) != 1 || keys[0].Key != kp.Public || keys[0].Comment != "member a@host" {
		t.Errorf("member.pub parsed as %+v, %v", keys, err)
	}
	loaded, err := Load(secret)
	if err != nil || loaded != kp {
		t.Fatalf("Load = %+v, %v; want %+v", loaded, err, kp)
	}
	if _, err := Generate(dir, ""); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second Generate = %v, want a refusal to replace the key", err)
	}
	if again, err := Load(secret); err != nil || again != kp {
		t.Errorf("the key changed after a refused Generate: %+v, %v", again, err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", SecretFile)
	kp, created, err := LoadOrCreate(path, "")
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created %v, %v", created, err)
	}
	again, created, err := LoadOrCreate(path, "")
	if err != nil || created || again != kp {
		t.Fatalf("second LoadOrCreate = %+v, created %v, %v; want the same key", again, created, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), PublicFile)); err != nil {
		t.Errorf("no member.pub beside the generated key: %v", err)
	}
	other := filepath.Join(t.TempDir(), "node.secret")
	if _, _, err := LoadOrCreate(other, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other + ".pub"); err != nil {
		t.Errorf("no public key beside %s: %v", other, err)
	}
}

func TestLoadFormats(t *testing.T) {
	kp := newPair(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, content, want string
	}{
		{"bare key", "a.key", kp.Secret + "\n", ""},
		{"comments first", "b.key", "# a comment\n\n" + kp.Secret + "\n", ""},
		{"czmq zcert", "c.key_secret", "#   ZeroMQ CURVE **Secret** Certificate\nmetadata\ncurve\n    public-key = \"" + kp.Public + "\"\n    secret-key = \"" + kp.Secret + "\"\n", ""},
		{"public file", "d.pub", kp.Public + " me\n", "public key file"},
		{"key with a comment", "e.key", kp.Secret + " me\n", "not a secret key"},
		{"no key", "f.key", "# nothing\n", "no secret key"},
		{"bad zcert key", "g.key", "secret-key = \"short\"\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(write(tt.file, tt.content))
			if tt.want == "" {
				if err != nil || got != kp {
					t.Fatalf("Load = %+v, %v; want %+v", got, err, kp)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want %q", err, tt.want)
			}
		})
	}
	loose := write("loose.key", kp.Secret+"\n")
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckMode(loose); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("CheckMode of a 0644 key = %v", err)
	}
}

func TestParseTrusted(t *testing.T) {
	a, b := newPair(t), newPair(t)
	data := "# trusted members\n\n" + a.Public + " member a\n\t" + b.Public + "\tmember b (rotated 2025)\n" + a.Public + " again\n"
	keys, err := ParseTrusted([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []TrustedKey{{Key: a.Public, Comment: "member a", Line: 3}, {Key: b.Public, Comment: "member b (rotated 2025)", Line: 4}}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("ParseTrusted = %+v, want %+v", keys, want)
	}
	if _, err := ParseTrusted([]byte(a.Public + "\nnot-a-key comment\n" + "x\n")); err == nil ||
		!strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad lines: %v, want both named", err)
	}
}

// TestTrustReloads: the file is read again when it changes, at most once
// per interval; a version that does not parse leaves the keys as they
// were and is reported once.
func TestTrustReloads(t *testing.T) {
	a, b := newPair(t), newPair(t)
	path := filepath.Join(t.TempDir(), "trusted")
	write := func(content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a.Public + " a\n")
	log, hook := test.NewNullLogger()
	tr, err := OpenTrust(path, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	tr.now = func() time.Time { return clock }
	if !tr.Trusted(a.Public) || tr.Trusted(b.Public) || tr.Comment(a.Public) != "a" {
		t.Fatal("initial keys wrong")
	}
	write(b.Public + " b\n")
	if !tr.Trusted(a.Public) {
		t.Error("the file was read again before the interval")
	}
	clock = clock.Add(time.Hour)
	if tr.Trusted(a.Public) || !tr.Trusted(b.Public) {
		t.Error("rotation not seen after the interval")
	}
	if !reflect.DeepEqual(tr.Keys(), []string{b.Public}) {
		t.Errorf("Keys = %v", tr.Keys())
	}
	write("garbage\n")
	clock = clock.Add(time.Hour)
	if !tr.Trusted(b.Public) {
		t.Error("a file that does not parse dropped the keys")
	}
	clock = clock.Add(time.Hour)
	tr.Trusted(b.Public)
	errors := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			errors++
		}
	}
	if errors != 1 {
		t.Errorf("%d errors logged for one bad version, want 1", errors)
	}
	write(a.Public + "\n" + b.Public + "\n")
	if err := tr.Reload(); err != nil || !tr.Trusted(a.Public) || !tr.Trusted(b.Public) {
		t.Errorf("Reload = %v, keys %v", err, tr.Keys())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := tr.Reload(); err == nil || !tr.Trusted(a.Public) {
		t.Errorf("a removed file: Reload = %v, keys %v; want an error and the keys kept", err, tr.Keys())
	}
	if _, err := OpenTrust(filepath.Join(t.TempDir(), "none"), 0, nil); err == nil {
		t.Error("OpenTrust of a missing file succeeded")
	}
}
