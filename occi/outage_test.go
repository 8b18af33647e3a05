package occi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store/couch"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// cutProxy forwards TCP connections on loopback to target until cut,
// which closes the listener and every connection: the database is gone
// from the server's point of view, as when the network fails.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestStoreOutage cuts the network between the server and CouchDB: every
// rendering answers 503 with Retry-After, saying the store cannot be
// reached, rather than 500.
func TestStoreOutage(t *testing.T) {
	dbURL, err := url.Parse(couchtest.NewDBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, dbURL.Host)
	through := *dbURL
	through.Host = proxy.ln.Addr().String()
	st, err := couch.Open(context.Background(), through.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := newEnv(t, st, occi.Options{})
	e.MustRequest(http.StatusCreated, "POST", "/resource/", `{"resources":[{"kind":"`+occi.ResourceKind+`","id":"r1"}]}`)

	proxy.cut()
	for _, accept := range []string{"application/occi+json", "text/plain"} {
		res := e.Request("GET", "/resource/r1", "", "Accept", accept)
		if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(res.Raw), "the store cannot be reached") {
			t.Errorf("GET with the store cut off, Accept %s: %d, Retry-After %q: %s", accept, res.Status, res.Header.Get("Retry-After"), res.Raw)
		}
	}
}
