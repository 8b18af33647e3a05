// Package couchtest runs a real CouchDB-protocol server, pouchdb-server, for
// tests. The server binary is $CMBS_POUCHDB_SERVER or pouchdb-server on PATH
// (npm install -g pouchdb-server@4.2.0).
//
// Tests that need CouchDB fail, never skip, when the server cannot start, so
// that a missing server cannot make a suite pass silently.
//
// Start gives a test its own server. NewDBURL hands out fresh databases on
// one server shared by the whole test binary; that server is killed when the
// binary exits, even without cleanup, because it is started with a parent
// death signal; its scratch directory is removed by the next binary that
// starts one. A package can also stop it and remove the directory at once
// with
//
//	func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }
package couchtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvServer names the environment variable that overrides the server
// binary.
const EnvServer = "CMBS_POUCHDB_SERVER"

// startTimeout bounds how long a server may take to answer.
const startTimeout = 60 * time.Second

// Start starts a pouchdb-server for t, in memory on a free loopback port, and
// returns its base URL, e.g. "http://127.0.0.1:41234". The server is killed
// when t ends.
func Start(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := start(dir)
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(srv.stop)
	return srv.url
}

// shared is the server NewDBURL hands databases out on, started once per
// test binary.
var shared struct {
	once sync.Once
	mu   sync.Mutex
	srv  *server
	err  error
}

// NewDBURL returns the URL of a new, empty database on the test binary's
// shared server, starting the server on first use. The database is deleted
// when t ends.
func NewDBURL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		srv, err := startShared()
		shared.mu.Lock()
		shared.srv, shared.err = srv, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	srv, err := shared.srv, shared.err
	shared.mu.Unlock()
	if err != nil {
		fail(t, err)
	}
	if srv == nil {
		t.Fatal("couchtest: NewDBURL called after Stop")
	}
	name := "cmbs_test_" + randomHex(8)
	dbURL := srv.url + "/" + name
	t.Cleanup(func() { deleteDB(t, dbURL) })
	return dbURL
}

// sharedDirPrefix names the shared servers' scratch directories, followed by
// the owning process id so that leftovers can be recognised.
const sharedDirPrefix = "cmbs-pouchdb-"

func startShared() (*server, error) {
	removeStale()
	dir, err := os.MkdirTemp("", sharedDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("couchtest: scratch directory: %w", err)
	}
	srv, err := start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	srv.removeDir = true
	return srv, nil
}

// removeStale removes the scratch directories of shared servers whose test
// binary has exited without calling Stop.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), sharedDirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// Stop kills the shared server, if it was started, and removes its scratch
// directory. NewDBURL fails after Stop.
func Stop() {
	shared.mu.Lock()
	srv := shared.srv
	shared.srv = nil
	shared.mu.Unlock()
	if srv != nil {
		srv.stop()
	}
}

// Main runs the tests and then stops the shared server. It returns the exit
// code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// fail ends the test: a CouchDB test without CouchDB must not pass.
func fail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("couchtest: CI requires a CouchDB-protocol server and none could be started: %v", err)
	}
	t.Fatalf("couchtest: cannot start pouchdb-server (install it with `npm install -g pouchdb-server@4.2.0` or set %s): %v", EnvServer, err)
}

// server is one running pouchdb-server process.
type server struct {
	url       string
	dir       string
	removeDir bool
	cmd       *exec.Cmd
	exited    chan struct{} // closed once the process has been reaped
	stopOnce  sync.Once
}

// binary finds the server executable.
func binary() (string, error) {
	if p := os.Getenv(EnvServer); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("pouchdb-server")
	if err != nil {
		return "", fmt.Errorf("pouchdb-server not found on PATH and %s unset: %w", EnvServer, err)
	}
	return p, nil
}

// start runs a server in dir, retrying on another port if the one picked
// was taken in the meantime.
func start(dir string) (*server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	var errs []error
	for range 3 {
		srv, err := startOnce(bin, dir)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// configFile is the server's config.json: the uuid lets start tell its own
// server from anything else that might answer on the port, and the log goes
// to the scratch directory.
type configFile struct {
	CouchDB struct {
		UUID string `json:"uuid"`
	} `json:"couchdb"`
	Log struct {
		File string `json:"file"`
	} `json:"log"`
}

func startOnce(bin, dir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var cfg configFile
	cfg.CouchDB.UUID = randomHex(16)
	cfg.Log.File = filepath.Join(dir, "log.txt")
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("couchtest: encode config: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, fmt.Errorf("couchtest: write config: %w", err)
	}
	output := &limitedBuffer{max: 64 << 10}
	cmd := exec.Command(bin,
		"--in-memory",
		"--no-stdout-logs",
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--dir", dir,
		"--config", cfgPath,
	)
	cmd.Dir = dir
	cmd.Stdout = output
	cmd.Stderr = output
	// Its own process group, so that stop kills anything it spawns; and
	// killed with us, so that no server outlives the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	srv := &server{
		url:    "http://127.0.0.1:" + strconv.Itoa(port),
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	started := make(chan error, 1)
	// The parent death signal fires when the thread that started the child
	// exits, not the process, so the child is started from a goroutine
	// locked to its thread that lives as long as the child.
	go func() {
		runtime.LockOSThread()
		defer close(srv.exited)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("couchtest: run %s: %w", bin, err)
	}
	if err := srv.waitReady(cfg.CouchDB.UUID); err != nil {
		srv.stop()
		return nil, fmt.Errorf("couchtest: %s on port %d: %w\noutput:\n%s\nlog:\n%s", bin, port, err, output, tail(filepath.Join(dir, "log.txt")))
	}
	return srv, nil
}

// waitReady polls the server until it answers with our uuid, it exits, or
// the deadline passes.
func (s *server) waitReady(uuid string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		info, err := welcome(ctx, client, s.url)
		if err == nil {
			if info.UUID != uuid {
				return fmt.Errorf("another server answers on %s (uuid %q)", s.url, info.UUID)
			}
			return nil
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering: %w", last)
		case <-ctx.Done():
			return fmt.Errorf("server did not answer within %s: %w", startTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type welcomeInfo struct {
	UUID string `json:"uuid"`
}

func welcome(ctx context.Context, client *http.Client, base string) (welcomeInfo, error) {
	var info welcomeInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return info, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return info, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET /: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("GET /: %w", err)
	}
	return info, nil
}

// stop kills the server's process group and waits for it to be reaped.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		if p := s.cmd.Process; p != nil {
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
		<-s.exited
		if s.removeDir {
			_ = os.RemoveAll(s.dir)
		}
	})
}

func deleteDB(t testing.TB, dbURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, dbURL, nil)
	if err != nil {
		t.Errorf("couchtest: delete %s: %v", dbURL, err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The shared server may already be stopped by Main.
		return
	}
	_ = resp.Body.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("couchtest: find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails.
	return hex.EncodeToString(b)
}

// tail returns the end of a file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const keep = 4 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return strings.TrimSpace(string(b))
}

// limitedBuffer keeps the first max bytes written to it, for error messages.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
