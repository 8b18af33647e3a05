package occitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// MediaType is the OCCI JSON rendering every request is sent and asked in.
const MediaType = "application/occi+json"

// Client sends requests to an OCCI server and fails its test when the
// server cannot be reached or answers what the test did not expect.
type Client struct {
	// T is the test the client fails.
	T testing.TB
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
	URL string
	// Name names the server in failure messages (none when empty).
	Name string
	// User and Password authenticate every request with HTTP Basic
	// credentials when User is set.
	User, Password string
	// HTTP sends the requests; http.DefaultClient when nil.
	HTTP *http.Client
}

// Response is an answer as a test looks at it.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	// Body is Raw decoded when the answer is a JSON object, else nil.
	Body map[string]any
}

// Locations returns the X-OCCI-Location list of a JSON answer.
func (r Response) Locations() []string {
	var out []string
	list, _ := r.Body["X-OCCI-Location"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// Anonymous returns a copy of c that sends no credentials.
func (c *Client) Anonymous() *Client {
	anon := *c
	anon.User, anon.Password = "", ""
	return &anon
}

// Request sends a request and returns the answer, whatever its status.
// A nil body (or "") sends none; a string or []byte is sent as it is, any
// other value as JSON. The request asks for MediaType and, with a body,
// declares it; header holds name, value pairs applied last, where an
// empty value removes the header. The answer's body is decoded when its
// Content-Type says JSON, and the test fails when it is not an object.
func (c *Client) Request(method, path string, body any, header ...string) Response {
	c.T.Helper()
	if len(header)%2 != 0 {
		c.T.Fatalf("%s %s: header pairs %q have no value for the last name", method, path, header)
	}
	res, err := c.roundTrip(method, path, body, header)
	if err != nil {
		c.T.Fatal(err)
	}
	if strings.Contains(res.Header.Get("Content-Type"), "json") && len(bytes.TrimSpace(res.Raw)) > 0 {
		if err := json.Unmarshal(res.Raw, &res.Body); err != nil {
			c.T.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, res.Raw)
		}
	}
	return res
}

// MustRequest is Request that fails the test unless the status is want.
func (c *Client) MustRequest(want int, method, path string, body any, header ...string) Response {
	c.T.Helper()
	res := c.Request(method, path, body, header...)
	if res.Status != want {
		c.T.Fatalf("%s %s%s: status %d, want %d\n%s", method, path, c.on(), res.Status, want, res.Raw)
	}
	return res
}

// Do sends body as Request does and decodes the answer, which must be
// empty or a JSON object whatever its Content-Type.
func (c *Client) Do(method, path string, body any) (int, map[string]any) {
	c.T.Helper()
	res, err := c.roundTrip(method, path, body, nil)
	if err != nil {
		c.T.Fatal(err)
	}
	out, err := decode(method, path, res.Raw)
	if err != nil {
		c.T.Fatal(err)
	}
	return res.Status, out
}

// Must is Do that fails the test unless the status is want.
func (c *Client) Must(want int, method, path string, body any) map[string]any {
	c.T.Helper()
	got, out := c.Do(method, path, body)
	if got != want {
		c.T.Fatalf("%s %s%s: status %d, want %d: %v", method, path, c.on(), got, want, out)
	}
	return out
}

// Try is Must for goroutines other than the test's: it returns an error
// instead of failing the test.
func (c *Client) Try(want int, method, path string, body any) (map[string]any, error) {
	res, err := c.roundTrip(method, path, body, nil)
	if err != nil {
		return nil, err
	}
	out, err := decode(method, path, res.Raw)
	if err != nil {
		return nil, err
	}
	if res.Status != want {
		return out, fmt.Errorf("%s %s%s: status %d, want %d: %s", method, path, c.on(), res.Status, want, res.Raw)
	}
	return out, nil
}

// on is " on NAME" for failure messages, empty without a name.
func (c *Client) on() string {
	if c.Name == "" {
		return ""
	}
	return " on " + c.Name
}

// roundTrip sends one request and reads the whole answer. It touches no
// testing.TB, so Try can run it on any goroutine.
func (c *Client) roundTrip(method, path string, body any, header []string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		if b != "" {
			rd = strings.NewReader(b)
		}
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	req.Header.Set("Accept", MediaType)
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Raw: raw}, nil
}

// decode reads an answer that must be empty or a JSON object.
func decode(method, path string, raw []byte) (map[string]any, error) {
	var out map[string]any
	if len(raw) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", method, path, err, raw)
	}
	return out, nil
}
