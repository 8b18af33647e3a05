package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/cmd/cmbs/ops"
)

// defaultHTTP is serve's default listen address, which the probe targets
// when neither --server, CMBS_SERVER nor CMBS_HTTP says otherwise.
const defaultHTTP = ":8090"

const healthAbout = `Asks a running server's readiness probe (/health/ready), or with --alive its
liveness probe (/health/alive), and exits 0 only when the server answers 200
with the state asked for; otherwise it prints the answer and exits 1. It is
the image's HEALTHCHECK, which has no curl.

The server is --server, else CMBS_SERVER, else the address CMBS_HTTP (serve's
listen address) names on this machine, else http://127.0.0.1:8090.`

const healthExample = `  cmbs health
  cmbs health --alive --server http://10.0.0.5:8090`

// health asks a running server's probe and fails unless it answers that
// the server is ready (or, with --alive, alive).
func (a *app) health(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("health", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.SortFlags = false
	server := fs.String("server", defaultHealthServer(), "URL of the cmbs server (env "+envServer+")")
	alive := fs.Bool("alive", false, "ask the liveness probe instead: the process serves HTTP")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	// --url was the probe's whole URL; a base URL is read as --server.
	legacy := fs.String("url", "", "the probe's URL (older spelling of --server)")
	_ = fs.MarkHidden("url")
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: cmbs health [--server URL] [--alive] [--timeout D]\n\n%s\n\nExamples:\n%s\n\nFlags:\n%s",
			healthAbout, healthExample, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: health: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: health takes no arguments, got %q", errUsage, fs.Args())
	}
	base := *server
	if *legacy != "" {
		base = *legacy
	}
	want, path := "ready", ops.ReadyPath
	if *alive {
		want, path = "alive", ops.AlivePath
	}
	probe, err := probeTarget(base, path)
	if err != nil {
		return fmt.Errorf("%w: health: %w", errUsage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	text, err := askProbe(ctx, probe, want)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	fmt.Fprintln(a.stdout, text)
	return nil
}

// askProbe gets probe and returns its answer when it is 200 with the
// status want; anything else (another status, another server's page) is
// an error.
func askProbe(ctx context.Context, probe, want string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	// Probe answers are small; a bound keeps a wrong URL from flooding.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read the answer of %s: %w", probe, err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s: %s", probe, resp.Status, text)
	}
	var answer struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Status != want {
		return "", fmt.Errorf("%s answered 200 but not a cmbs probe saying %q: %.200s", probe, want, text)
	}
	return text, nil
}

// probeTarget is the probe path on the server at base. A base that names
// the other probe's path is taken as given (the older --url spelling).
func probeTarget(base, path string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want http://host:port or https://host:port", base)
	}
	if u.Path != ops.ReadyPath && u.Path != ops.AlivePath {
		u.Path += path
	}
	return u.String(), nil
}

// defaultHealthServer is CMBS_SERVER, else the base URL of serve's listen
// address from CMBS_HTTP (a container sets it for both).
func defaultHealthServer() string {
	if v := os.Getenv(envServer); v != "" {
		return v
	}
	return localURL(os.Getenv("CMBS_HTTP"))
}

// localURL is the base URL of serve's listen address addr (host:port,
// host optional); the loopback address stands for an empty or wildcard
// host, since the probe runs beside the server.
func localURL(addr string) string {
	if addr == "" {
		addr = defaultHTTP
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = "", strings.TrimPrefix(defaultHTTP, ":")
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
