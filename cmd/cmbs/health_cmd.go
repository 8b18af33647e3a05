package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/cmd/cmbs/ops"
)

// defaultHTTP is serve's default listen address, which the probe targets
// when neither --url nor CMBS_HTTP says otherwise.
const defaultHTTP = ":8090"

// health asks a running server's readiness probe and fails unless it
// answers 200: the Docker HEALTHCHECK, for images without curl.
func (a *app) health(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("health", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	url := fs.String("url", probeURL(os.Getenv("CMBS_HTTP")), "the probe to ask (default: /health/ready on the address CMBS_HTTP or serve's default names)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "Usage: cmbs health [--url URL] [--timeout D]\n\n"+
			"Exits 0 when the server answers the probe 200, 1 otherwise, printing its answer.\n"+
			"Use --url http://HOST:PORT/health/alive for liveness.\n\n"+fs.FlagUsages())
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
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("%w: health: %w", errUsage, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Probe answers are small; a bound keeps a wrong URL from flooding.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("health: read the answer of %s: %w", *url, err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s: %s", *url, resp.Status, text)
	}
	fmt.Fprintln(a.stdout, text)
	return nil
}

// probeURL is the readiness URL for serve's listen address addr (host:port,
// host optional); the loopback address stands for an empty or wildcard
// host, since the probe runs beside the server.
func probeURL(addr string) string {
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
	return "http://" + net.JoinHostPort(host, port) + ops.ReadyPath
}
