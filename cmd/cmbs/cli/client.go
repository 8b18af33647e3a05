// Package cli is the HTTP side of cmbs's client subcommands: a Client for a
// cmbs server's OCCI interface and event stream, the documents it reads, and
// the tables the subcommands print.
package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// MediaType is the rendering the client sends and asks for.
const MediaType = "application/occi+json"

// maxBody bounds how much of an answer the client reads; a member or
// message document is a few kilobytes.
const maxBody = 32 << 20

// TLS is how a client checks an https server and proves itself to one,
// as curl's --cacert, --insecure, --cert and --key do.
type TLS struct {
	// CACert is a PEM file of the authorities the server's certificate
	// must chain to; the system's when empty.
	CACert string
	// Insecure skips the check of the server's certificate.
	Insecure bool
	// Cert and Key are a PEM client certificate and its key, for servers
	// that ask for one (tls_client_ca).
	Cert, Key string
}

// HTTPClient returns an http.Client bounding each request by timeout and
// speaking TLS as t says.
func HTTPClient(timeout time.Duration, t TLS) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure} //nolint:gosec // --insecure asks for it
	if t.CACert != "" {
		data, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, fmt.Errorf("cacert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("cacert: %s holds no PEM certificate", t.CACert)
		}
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("cert and key: give both or neither")
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// Client speaks to one cmbs server.
type Client struct {
	base     *url.URL
	user     string
	password string
	auth     bool
	hc       *http.Client
}

// New returns a client for the server at server (http or https URL). user,
// when not empty, is "name:password" for HTTP Basic authentication. A nil
// hc means http.DefaultClient.
func New(server, user string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host:port: %w", server, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host:port", server)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: u, hc: hc}
	if user != "" {
		name, pw, ok := strings.Cut(user, ":")
		if !ok || name == "" {
			return nil, errors.New("user: want name:password")
		}
		c.user, c.password, c.auth = name, pw, true
	}
	return c, nil
}

// Server is the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

// URL is the absolute URL of a path on the server.
func (c *Client) URL(path string) string { return c.base.String() + path }

// Path turns a location the server gave (absolute URL or path) into a path
// with its query, so every request goes to the server the client was told
// about even when the server renders another public URL.
func Path(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.Path == "" {
		return location
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery
	}
	return u.Path
}

// Response is a successful answer.
type Response struct {
	Status int
	Header http.Header
	// Body is the answer as the server sent it.
	Body []byte
}

// Decode reads the body into v.
func (r *Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	return nil
}

// Problem is an error answer (RFC 9457 problem details, as cmbs sends
// them).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	if p.Field != "" {
		s += " (field " + p.Field + ")"
	}
	return s
}

// problemOf describes an error answer, from its problem body when it has
// one and from its status and text otherwise (a proxy's error page, say).
func problemOf(status int, header http.Header, body []byte) *Problem {
	p := &Problem{}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if json.Unmarshal(body, p) != nil {
			p = &Problem{}
		}
	}
	p.Status = status
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	if p.Detail == "" && mt != "application/problem+json" {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		p.Detail = text
	}
	return p
}

// Do sends a request with body encoded as JSON (none when body is nil)
// and returns a 2xx answer; any other status comes back as a *Problem.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	return c.DoRaw(ctx, method, path, rd)
}

// DoRaw is Do with a body already encoded.
func (c *Client) DoRaw(ctx context.Context, method, path string, body io.Reader) (*Response, error) {
	return c.do(ctx, method, path, MediaType, body)
}

// DoHeader is DoRaw with more request headers (Prefer, say).
func (c *Client) DoHeader(ctx context.Context, method, path string, header http.Header, body io.Reader) (*Response, error) {
	return c.doHeader(ctx, method, path, MediaType, header, body)
}

// do sends a request asking for the media type accept.
func (c *Client) do(ctx context.Context, method, path, accept string, body io.Reader) (*Response, error) {
	return c.doHeader(ctx, method, path, accept, nil, body)
}

func (c *Client) doHeader(ctx context.Context, method, path, accept string, header http.Header, body io.Reader) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept+", application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	if c.auth {
		req.SetBasicAuth(c.user, c.password)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.Server(), err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, problemOf(res.StatusCode, res.Header, raw)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// Locations is the answer listing entities: a collection's members, or
// what a create or an action touched.
type Locations struct {
	OCCI     []string `json:"X-OCCI-Location"`
	Location []string `json:"Location"`
}

// Paths lists every location as a path on the server.
func (l Locations) Paths() []string {
	out := make([]string, 0, len(l.OCCI)+len(l.Location))
	for _, loc := range append(append([]string{}, l.OCCI...), l.Location...) {
		out = append(out, Path(loc))
	}
	return out
}

// List returns the paths of the entities at a kind's location, following
// the server's pages to the last.
func (c *Client) List(ctx context.Context, location string) ([]string, error) {
	var out []string
	for next := location; next != ""; {
		res, err := c.Do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		var l Locations
		if err := res.Decode(&l); err != nil {
			return nil, err
		}
		out = append(out, l.Paths()...)
		next = NextPage(res.Header)
	}
	return out, nil
}

var nextLink = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

// NextPage is the path (with its query) of the page after the answer
// whose headers are h, from its Link rel="next"; "" on the last page.
func NextPage(h http.Header) string {
	for _, v := range h.Values("Link") {
		if m := nextLink.FindStringSubmatch(v); m != nil {
			return Path(m[1])
		}
	}
	return ""
}

// Get reads one entity, with the document the server sent for it.
func (c *Client) Get(ctx context.Context, path string) (*Entity, json.RawMessage, error) {
	res, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	var doc map[string][]json.RawMessage
	if err := res.Decode(&doc); err != nil {
		return nil, nil, err
	}
	for _, key := range []string{"resources", "links"} {
		if list := doc[key]; len(list) == 1 {
			var e Entity
			if err := json.Unmarshal(list[0], &e); err != nil {
				return nil, nil, fmt.Errorf("reading %s: %w", path, err)
			}
			return &e, list[0], nil
		}
	}
	return nil, nil, fmt.Errorf("reading %s: the answer holds no single resource or link", path)
}

// media12 asks for OCCI 1.2 JSON, whose collections hold their entities
// in full: one request lists them, where pyOCNI's lists locations only.
const media12 = MediaType + "; version=1.2"

// Entities reads every entity at a kind's location in one request, in id
// order, as the client's Entity (nested attributes).
func (c *Client) Entities(ctx context.Context, location string) ([]*Entity, error) {
	var out []*Entity
	// One page per request, following the server's Link rel="next".
	for next := location; next != ""; {
		res, err := c.do(ctx, http.MethodGet, next, media12, nil)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Resources []entity12 `json:"resources"`
			Links     []entity12 `json:"links"`
		}
		if err := res.Decode(&doc); err != nil {
			return nil, err
		}
		for _, e := range append(doc.Resources, doc.Links...) {
			out = append(out, e.entity())
		}
		next = NextPage(res.Header)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// entity12 is an entity in OCCI 1.2 JSON: attributes by dotted name.
type entity12 struct {
	Kind       string         `json:"kind"`
	Mixins     []string       `json:"mixins"`
	Attributes map[string]any `json:"attributes"`
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Summary    string         `json:"summary"`
}

// entity nests the dotted attributes, leaving out occi.core's, which are
// the entity's own fields.
func (e entity12) entity() *Entity {
	out := &Entity{Kind: e.Kind, Mixins: e.Mixins, ID: e.ID, Title: e.Title, Summary: e.Summary, Attributes: map[string]any{}}
	if out.Mixins == nil {
		out.Mixins = []string{}
	}
	for name, v := range e.Attributes {
		if !strings.HasPrefix(name, "occi.core.") {
			setNested(out.Attributes, name, v)
		}
	}
	return out
}

// Nest turns attributes by dotted name into the nested objects the server
// renders and reads ({"cmbs":{"message":{"topics":…}}}).
func Nest(flat map[string]any) map[string]any {
	out := make(map[string]any, len(flat))
	for name, v := range flat {
		setNested(out, name, v)
	}
	return out
}

// setNested sets the value at a dotted name in nested attributes.
func setNested(attrs map[string]any, name string, v any) {
	m := attrs
	parts := strings.Split(name, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// Create posts one resource to a kind's location and returns the answer
// and the new entity's path.
func (c *Client) Create(ctx context.Context, location string, e *Entity) (*Response, string, error) {
	res, err := c.Do(ctx, http.MethodPost, location, map[string][]*Entity{"resources": {e}})
	if err != nil {
		return nil, "", err
	}
	var l Locations
	if err := res.Decode(&l); err != nil {
		return nil, "", err
	}
	paths := l.Paths()
	if len(paths) != 1 {
		return nil, "", fmt.Errorf("creating at %s: the server answered %d locations, want 1", location, len(paths))
	}
	return res, paths[0], nil
}

// Action triggers the named action on the entity at path with no
// parameters, as the original's action files do.
func (c *Client) Action(ctx context.Context, path, action string) (*Response, error) {
	return c.Do(ctx, http.MethodPost, path+"?action="+url.QueryEscape(action), struct{}{})
}
