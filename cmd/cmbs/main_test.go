package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store/bolt"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// syncBuffer collects what a running server writes to stderr while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantErr    error // errUsage, or nil
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantErr: errUsage, wantStderr: "Usage: cmbs"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: errUsage, wantStderr: "Usage: cmbs"},
		{name: "help", args: []string{"help"}, wantStdout: "Commands:"},
		{name: "version", args: []string{"version"}, wantStdout: "cmbs "},
		{name: "serve help", args: []string{"serve", "--help"}, wantStderr: "CMBS_USERS_FILE"},
		{name: "serve bad flag", args: []string{"serve", "--listen", ":1"}, wantErr: errUsage},
		{name: "serve stray argument", args: []string{"serve", "now"}, wantErr: errUsage},
		{name: "passwd without user", args: []string{"passwd", "--password", "x"}, wantErr: errUsage},
		{name: "passwd two users", args: []string{"passwd", "a", "b"}, wantErr: errUsage},
		{name: "passwd help", args: []string{"passwd", "-h"}, wantStderr: "Usage: cmbs passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, strings.NewReader(""), &stdout, &stderr)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("run(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestVersionFromLinker(t *testing.T) {
	t.Parallel()
	old := version
	version = "v9.9.9"
	t.Cleanup(func() { version = old })
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"version"}, nil, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout.String(), "cmbs v9.9.9 go") {
		t.Errorf("version output = %q", stdout.String())
	}
}

func TestPasswd(t *testing.T) {
	t.Parallel()
	// Every case but "default cost" hashes at bcrypt's lowest cost: under
	// the race detector a hash at the default cost takes seconds.
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantPW   string
		wantCost int
		wantErr  string
	}{
		{name: "stdin line", args: []string{"passwd", "--cost", "4", "user_1"}, stdin: "pass\nignored\n", wantPW: "pass"},
		{name: "stdin CRLF", args: []string{"passwd", "--cost", "4", "user_1"}, stdin: "pass\r\n", wantPW: "pass"},
		{name: "stdin without newline", args: []string{"passwd", "--cost", "4", "user_1"}, stdin: "pass", wantPW: "pass"},
		{name: "flag", args: []string{"passwd", "--cost", "4", "--password", "p w", "user_1"}, stdin: "other\n", wantPW: "p w"},
		{name: "default cost", args: []string{"passwd", "user_1"}, stdin: "pass\n", wantPW: "pass", wantCost: bcrypt.DefaultCost},
		{name: "empty stdin", args: []string{"passwd", "user_1"}, stdin: "", wantErr: "read password"},
		{name: "empty line", args: []string{"passwd", "user_1"}, stdin: "\n", wantErr: "empty password"},
		{name: "bad user", args: []string{"passwd", "a:b"}, stdin: "pass\n", wantErr: "contains ':'"},
		{name: "cost too low", args: []string{"passwd", "--cost", "3", "user_1"}, stdin: "pass\n", wantErr: "bcrypt cost 3 is outside 4 to 31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout bytes.Buffer
			err := run(t.Context(), tt.args, strings.NewReader(tt.stdin), &stdout, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(stdout.String(), "user_1:$2a$") || strings.Count(stdout.String(), "\n") != 1 {
				t.Fatalf("output = %q, want one user_1:bcrypt line", stdout.String())
			}
			// auth's tests show Entry's lines load; here the password read
			// is the one hashed, at the cost asked for.
			_, hash, _ := strings.Cut(strings.TrimSpace(stdout.String()), ":")
			wantCost := tt.wantCost
			if wantCost == 0 {
				wantCost = bcrypt.MinCost
				if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(tt.wantPW)); err != nil {
					t.Errorf("password %q does not match the hash: %v", tt.wantPW, err)
				}
			}
			if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != wantCost {
				t.Errorf("hashed at cost %d, %v; want %d", cost, err, wantCost)
			}
		})
	}
}

// server is a `cmbs serve` running in the test's process.
type server struct {
	url    string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs `cmbs serve` with args on a free loopback port and waits
// until it listens.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan net.Addr, 1)
	s := &server{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: s.stderr, listening: func(addr net.Addr) { addrc <- addr }}
	go func() {
		s.done <- a.run(ctx, append([]string{"serve", "--http", "127.0.0.1:0"}, args...))
	}()
	select {
	case addr := <-addrc:
		s.url = "http://" + addr.String()
	case err := <-s.done:
		cancel()
		t.Fatalf("serve stopped before listening: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 30s:\n%s", s.stderr)
	}
	t.Cleanup(func() {
		cancel()
		// stop puts back what serve returned, so this sees it too.
		if err := <-s.done; err != nil {
			t.Errorf("serve: %v\n%s", err, s.stderr)
		}
	})
	return s
}

// stop cancels the server's context, as SIGTERM does, and returns what
// serve returned.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return within 30s of cancellation:\n%s", s.stderr)
		return nil
	}
}

func get(t *testing.T, url string, user, pw string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/occi+json")
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmbstest.NoError(t, resp.Body.Close) })
	return resp
}

func TestServeFileStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, "--store", "file:"+dir, "--log-format", "json")

	resp := get(t, s.url+"/-/", "", "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /-/ = %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), "http://schemas.ogf.org/occi/core#") {
		t.Errorf("GET /-/ does not list the core kinds: %s", body)
	}
	if !strings.Contains(s.stderr.String(), "authentication is off") {
		t.Errorf("serve did not log that authentication is off:\n%s", s.stderr)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v after cancellation", err)
	}
	// The store was closed: bbolt's file lock is free again (Open gives up
	// after its lock timeout otherwise).
	st, err := bolt.Open(filepath.Join(dir, config.BoltFile))
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServeCouchStore serves from a CouchDB-protocol server, the database
// named in the URL being created on start.
func TestServeCouchStore(t *testing.T) {
	t.Parallel()
	s := startServe(t, "--store", couchtest.Start(t)+"/cmbs")
	if resp := get(t, s.url+"/-/", "", ""); resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /-/ = %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(s.stderr.String(), "opened the CouchDB store") {
		t.Errorf("serve did not report the CouchDB store:\n%s", s.stderr)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v after cancellation", err)
	}
}

func TestServeAuth(t *testing.T) {
	// bcrypt's lowest cost: serve checks a password per request, and at
	// the default cost each check takes seconds under the race detector.
	hash, err := bcrypt.GenerateFromPassword([]byte("pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# test users\nuser_1:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CMBS_USERS_FILE", users)
	s := startServe(t, "--store", "file:"+t.TempDir())

	tests := []struct {
		user, pw string
		want     int
	}{
		{"", "", http.StatusUnauthorized},
		{"user_1", "wrong", http.StatusUnauthorized},
		{"user_2", "pass", http.StatusUnauthorized},
		{"user_1", "pass", http.StatusOK},
	}
	for _, tt := range tests {
		if resp := get(t, s.url+"/-/", tt.user, tt.pw); resp.StatusCode != tt.want {
			t.Errorf("GET /-/ as %q:%q = %d, want %d", tt.user, tt.pw, resp.StatusCode, tt.want)
		}
	}
	if strings.Contains(s.stderr.String(), "authentication is off") {
		t.Errorf("serve claims authentication is off with a users file:\n%s", s.stderr)
	}
}

func TestServeConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cmbs.yaml")
	if err := os.WriteFile(cfgFile, []byte("store: file:"+dir+"\nlisten: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badUsers := filepath.Join(dir, "users")
	if err := os.WriteFile(badUsers, []byte("alice:plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "every invalid field", args: []string{"--log-level", "loud", "--store", "s3://bucket", "--public-url", "/x"},
			want: []string{"log_level", "store", "public_url"}},
		{name: "unknown key in file", args: []string{"--config", cfgFile}, want: []string{"listen: unknown key"}},
		{name: "bad users file", args: []string{"--store", "file:" + dir, "--users", badUsers}, want: []string{"line 1", "not bcrypt"}},
		{name: "port taken", args: []string{"--store", "file:" + dir, "--http", takenAddr(t)}, want: []string{"listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), append([]string{"serve"}, tt.args...), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("serve succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// takenAddr returns an address a listener holds until the test ends.
func takenAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmbstest.NoError(t, ln.Close) })
	return ln.Addr().String()
}

// TestGracefulShutdown shows a request in flight when the context ends
// still gets its answer: the handler only answers once the listener is
// closed, which happens during Shutdown.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free() // also when the test fails before it means to
	a := &app{stderr: io.Discard, listening: func(addr net.Addr) { addrc <- addr }}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("done"))
	})
	cfg := config.Default()
	cfg.HTTP = "127.0.0.1:0"
	done := make(chan error, 1)
	go func() { done <- a.listenAndServe(ctx, cfg, handler, quietLogger()) }()
	addr := <-addrc

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr.String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	cmbstest.Eventually(t, "Shutdown to close the listener", func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	free()
	if body := <-got; body != "done" {
		t.Errorf("in-flight request got %q, want its answer", body)
	}
	if err := <-done; err != nil {
		t.Errorf("listenAndServe = %v", err)
	}
}

// TestShutdownTimeout shows a request outliving the shutdown timeout makes
// serve return an error instead of waiting for ever.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	a := &app{stderr: io.Discard, listening: func(addr net.Addr) { addrc <- addr }}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	cfg := config.Default()
	cfg.HTTP = "127.0.0.1:0"
	cfg.ShutdownTimeout = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- a.listenAndServe(ctx, cfg, handler, quietLogger()) }()
	addr := <-addrc
	go func() {
		if resp, err := http.Get("http://" + addr.String() + "/"); err == nil {
			_ = resp.Body.Close() // the test may be over: no t here
		}
	}()
	<-entered
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Errorf("listenAndServe = %v, want a shutdown error", err)
	}
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// commandCase is a command line run in-process and what it must give: an
// error wrapping wantErr (nil: none), and outputs containing wantStdout
// and wantStderr.
type commandCase struct {
	name       string
	args       []string
	wantErr    error
	wantStdout string
	wantStderr string
}

// runCommandCases runs each case as a subtest.
func runCommandCases(t *testing.T, tests []commandCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, nil, &stdout, &stderr)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("run(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
