package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
	"github.com/houssem/cmbs/config"
)

// embeddedPair is what cmbs bench --embedded measures: two cmbs serve runs
// in this process, each on its own temporary embedded store and free
// loopback ports, their local members declared by a configuration file as
// an operator would: bench-b with every layer running, then bench-a, which
// has bench-b as its neighbour and discovers it at start.
type embeddedPair struct {
	dir     string
	cancel  context.CancelFunc
	servers []*embeddedServer
	// url is bench-a's, the sender's.
	url string
}

// embeddedServer is one serve run.
type embeddedServer struct {
	name string
	url  string
	logs *lockedBuffer
	done chan error
}

// embeddedTopic and embeddedProvider are what bench-b subscribes to and
// offers, so that every layer has it as destination.
const (
	embeddedTopic    = "bench"
	embeddedProvider = "bench"
)

// startEmbedded starts the pair; close stops it and removes its stores.
func (a *app) startEmbedded(ctx context.Context) (*embeddedPair, error) {
	dir, err := os.MkdirTemp("", "cmbs-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &embeddedPair{dir: dir, cancel: cancel}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	ports, err := freePorts(2 * len(config.MemberLayers()))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sockets := func(ports []int) map[string]string {
		out := map[string]string{}
		for i, l := range config.MemberLayers() {
			out[l] = fmt.Sprintf("tcp://127.0.0.1:%d", ports[i])
		}
		return out
	}
	n := len(config.MemberLayers())
	receiver := config.Member{ID: "bench-b", Title: "cmbs bench receiver", Sockets: sockets(ports[n:]),
		Topics: []string{embeddedTopic}, Providers: []string{embeddedProvider}, Start: config.MemberLayers()}
	sender := config.Member{ID: "bench-a", Title: "cmbs bench sender", Sockets: sockets(ports[:n]),
		Neighbors: []string{receiver.Sockets["l1"]}, Start: config.MemberLayers(), Discover: true}
	for _, m := range []config.Member{receiver, sender} {
		s, err := a.startEmbeddedServer(ctx, sctx, dir, m)
		if s != nil {
			p.servers = append(p.servers, s)
		}
		if err != nil {
			return nil, err
		}
	}
	p.url = p.servers[1].url
	if err := p.checkDiscovered(ctx, receiver.ID); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// startEmbeddedServer runs cmbs serve for member m until sctx ends, and
// waits until it serves. Every setting is given as a flag, so that no
// CMBS_* variable of the environment reaches it.
func (a *app) startEmbeddedServer(ctx, sctx context.Context, dir string, m config.Member) (*embeddedServer, error) {
	cfgPath := filepath.Join(dir, m.ID+".json")
	raw, err := json.Marshal(struct {
		Member config.Member `json:"member"`
	}{m})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	args := append([]string{"serve", "--config", cfgPath}, serveDefaults(map[string]string{
		"http":      "127.0.0.1:0",
		"store":     "file:" + filepath.Join(dir, m.ID),
		"users":     "",
		"log-level": "warn",
	})...)
	s := &embeddedServer{name: m.ID, logs: &lockedBuffer{}, done: make(chan error, 1)}
	addrs := make(chan net.Addr, 1)
	sub := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: s.logs, listening: func(addr net.Addr) { addrs <- addr }}
	go func() { s.done <- sub.run(sctx, args) }()
	select {
	case addr := <-addrs:
		s.url = "http://" + addr.String()
		return s, nil
	case err := <-s.done:
		s.done <- err // for close
		return s, fmt.Errorf("bench: embedded member %s did not start: %w\n%s", m.ID, err, s.logs.tail(20))
	case <-ctx.Done():
		return s, ctx.Err()
	case <-time.After(time.Minute):
		return s, fmt.Errorf("bench: embedded member %s did not serve within a minute:\n%s", m.ID, s.logs.tail(20))
	}
}

// serveDefaults lists serve's flags set to their defaults, but those
// given, which take the values given.
func serveDefaults(given map[string]string) []string {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.BindFlags(fs)
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		v, ok := given[f.Name]
		switch {
		case ok:
		case isSlice(f.Value):
			// A list's default shows as [a,b]; the flag takes a,b.
			v = strings.Join(f.Value.(pflag.SliceValue).GetSlice(), ",")
		default:
			v = f.DefValue
		}
		out = append(out, "--"+f.Name+"="+v)
	})
	return out
}

func isSlice(v pflag.Value) bool {
	_, ok := v.(pflag.SliceValue)
	return ok
}

// checkDiscovered makes sure the sender knows the receiver.
func (p *embeddedPair) checkDiscovered(ctx context.Context, id string) error {
	client, err := cli.New(p.url, "", nil)
	if err != nil {
		return err
	}
	members, err := client.Members(ctx)
	if err != nil {
		return fmt.Errorf("bench: embedded sender: %w", err)
	}
	for _, m := range members {
		if m.ID == id && !m.Local() {
			return nil
		}
	}
	return fmt.Errorf("bench: the embedded sender did not discover %s:\n%s", id, p.servers[1].logs.tail(20))
}

// close stops the servers, waiting for each, and removes their stores.
func (p *embeddedPair) close() {
	p.cancel()
	for _, s := range p.servers {
		// What serve returns once stopped says nothing about the run.
		select {
		case err := <-s.done:
			_ = err
		case <-time.After(time.Minute):
		}
	}
	_ = os.RemoveAll(p.dir) // temporary; nothing to do if it stays
}

// freePorts returns n distinct loopback ports free now, each held until
// all are picked.
func freePorts(n int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		held = append(held, ln)
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("pick a free port: not a TCP address")
		}
		out = append(out, addr.Port)
	}
	return out, nil
}

// lockedBuffer collects a server's log, written from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n lines written.
func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
