package mec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/houssem/cmbs/config"
)

// requestTimeout bounds one request to the platform, token included.
const requestTimeout = 10 * time.Second

// maxAnswer bounds what is read of an answer: MEC 011 answers are small.
const maxAnswer = 1 << 20

// client makes the Mp1 requests of one application instance.
type client struct {
	appSupport  string // platform URL joined with the application support root
	serviceMgmt string
	appID       string
	http        *http.Client
	tokens      *tokens // nil without OAuth2
}

func newClient(cfg config.MEC, base *http.Client) (*client, error) {
	appSupport, err := url.JoinPath(cfg.Platform, strings.Trim(cfg.AppSupportRoot, "/"))
	if err != nil {
		return nil, fmt.Errorf("mec.platform: %w", err)
	}
	serviceMgmt, err := url.JoinPath(cfg.Platform, strings.Trim(cfg.ServiceMgmtRoot, "/"))
	if err != nil {
		return nil, fmt.Errorf("mec.platform: %w", err)
	}
	if base == nil {
		base = &http.Client{Timeout: requestTimeout}
	}
	c := &client{appSupport: appSupport, serviceMgmt: serviceMgmt, appID: cfg.AppInstanceID, http: base}
	if cfg.OAuth2.Enabled() {
		c.tokens = &tokens{cfg: clientcredentials.Config{
			ClientID: cfg.OAuth2.ClientID, ClientSecret: cfg.OAuth2.ClientSecret,
			TokenURL: cfg.OAuth2.TokenURL, Scopes: cfg.OAuth2.Scopes,
		}, base: base}
	}
	return c, nil
}

// appURL is the URL of a resource of this application instance in the
// application support API (api = c.appSupport) or the service management
// API (api = c.serviceMgmt).
func (c *client) appURL(api string, elem ...string) string {
	u, _ := url.JoinPath(api, append([]string{"applications", c.appID}, elem...)...)
	return u
}

// tokens holds the OAuth2 token source, renewed when the platform refuses
// a token it had not seen expire.
type tokens struct {
	cfg  clientcredentials.Config
	base *http.Client

	mu  sync.Mutex
	src oauth2.TokenSource
}

func (t *tokens) token(ctx context.Context) (*oauth2.Token, error) {
	t.mu.Lock()
	if t.src == nil {
		// The source outlives ctx: it fetches with the context it was
		// made with, so give it one that is never cancelled and bound
		// each fetch by the HTTP client's timeout instead.
		t.src = t.cfg.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, t.base))
	}
	src := t.src
	t.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.Response.StatusCode != http.StatusTooManyRequests {
			return nil, &permanentError{fmt.Errorf("OAuth2 token from %s: %w", t.cfg.TokenURL, err)}
		}
		return nil, fmt.Errorf("OAuth2 token from %s: %w", t.cfg.TokenURL, err)
	}
	return tok, nil
}

// renew drops the cached token so the next request fetches another.
func (t *tokens) renew() {
	t.mu.Lock()
	t.src = nil
	t.mu.Unlock()
}

// PlatformError is an answer of the platform other than the one expected.
type PlatformError struct {
	Method, URL string
	Status      int
	// Detail is the problem's detail (or title), or the start of the
	// answer when it is not a problem.
	Detail string
}

func (e *PlatformError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// retriable tells answers worth asking again: the platform is failing or
// busy (5xx, 429), or not ready for this request yet (409: the
// application instance is not instantiated yet; 401: the token is to be
// renewed).
func (e *PlatformError) retriable() bool {
	switch {
	case e.Status >= 500, e.Status == http.StatusTooManyRequests, e.Status == http.StatusConflict, e.Status == http.StatusUnauthorized:
		return true
	}
	return false
}

// permanentError stops the retries.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// do sends one request with body as JSON (none when nil), and decodes an
// answer with status want into out (when not nil). It returns the answer's
// Location header.
func (c *client) do(ctx context.Context, method, target string, body, out any, want int) (string, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return "", &permanentError{err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(payload))
	if err != nil {
		return "", &permanentError{err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.tokens != nil {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return "", err
		}
		tok.SetAuthHeader(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("%s %s: read the answer: %w", method, target, err)
	}
	if resp.StatusCode != want {
		perr := &PlatformError{Method: method, URL: target, Status: resp.StatusCode, Detail: problemDetail(resp.Header.Get("Content-Type"), raw)}
		if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil {
			c.tokens.renew()
		}
		// Without OAuth2 there is no token to renew: a 401 stays one.
		if perr.retriable() && (resp.StatusCode != http.StatusUnauthorized || c.tokens != nil) {
			return "", perr
		}
		return "", &permanentError{perr}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return "", &permanentError{fmt.Errorf("%s %s: answer is not the JSON expected: %w", method, target, err)}
		}
	}
	return resp.Header.Get("Location"), nil
}

// problemDetail is what an error answer says, in a line.
func problemDetail(contentType string, raw []byte) string {
	if mt, _, _ := mime.ParseMediaType(contentType); strings.HasSuffix(mt, "json") {
		var p problemDetails
		if json.Unmarshal(raw, &p) == nil {
			if p.Detail != "" {
				return p.Detail
			}
			if p.Title != "" {
				return p.Title
			}
		}
	}
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Backoff of the retries: the first wait, doubled at each failure up to
// the configured maximum, each wait drawn between half of it and all of it
// so that applications restarted together do not ask in step.
const firstWait = 250 * time.Millisecond

// retry runs fn until it succeeds, fails permanently or ctx ends, logging
// each failure with the wait before the next attempt.
func retry(ctx context.Context, log logrus.FieldLogger, maxWait time.Duration, what string, fn func(ctx context.Context) error) error {
	wait := firstWait
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		var perm *permanentError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &perm):
			return fmt.Errorf("%s: %w", what, perm.err)
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w (after %d attempt(s): %w)", what, context.Cause(ctx), attempt, err)
		}
		wait = min(wait, maxWait)
		sleep := wait/2 + rand.N(wait/2+1)
		log.WithError(err).WithFields(logrus.Fields{"attempt": attempt, "retry_in": sleep.Round(time.Millisecond).String()}).
			Warn("MEC platform: " + what + " failed; retrying")
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (after %d attempt(s): %w)", what, context.Cause(ctx), attempt, err)
		case <-t.C:
		}
		wait *= 2
	}
}
