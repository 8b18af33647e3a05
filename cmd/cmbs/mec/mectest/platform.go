// Package mectest is a MEC platform stand-in for tests: an HTTP server
// answering the Mp1 requests of one application instance as ETSI GS MEC
// 011 describes them, which validates every request it receives and
// every answer it gives against the MEC 011 OpenAPI files (spec/), and
// sends termination notices to the subscribed callback.
package mectest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

var (
	//go:embed spec/MecAppSupportApi.yaml
	appSupportSpec []byte
	//go:embed spec/MecServiceMgmtApi.yaml
	serviceMgmtSpec []byte
)

// The roots the OpenAPI files' servers name; requests are validated with
// their path moved under these.
const (
	specAppSupport  = "http://127.0.0.1:8081/mec_app_support/v1"
	specServiceMgmt = "http://127.0.0.1:8081/mec_service_mgmt/v1"
)

// Options configures Start.
type Options struct {
	// AppInstanceID is the only application instance the platform knows;
	// "app-1" when empty.
	AppInstanceID string
	// Prefix is the path of the platform under its host, as the MEC
	// Sandbox has /SANDBOX/MEP; "/sbx1x2y3z/mep1" when empty.
	Prefix string
	// AppSupportRoot and ServiceMgmtRoot are the APIs' roots under the
	// prefix; cmbs's defaults when empty.
	AppSupportRoot, ServiceMgmtRoot string
	// ClientID and ClientSecret, when set, turn OAuth2 on: the platform
	// issues tokens at TokenURL for these client credentials and refuses
	// Mp1 requests without a valid one.
	ClientID, ClientSecret string
	// Down starts the platform unreachable: its port is chosen, nothing
	// listens there until Up.
	Down bool
	// FailFirst answers the first FailFirst confirm_ready requests 409, as
	// a platform that has not instantiated the application yet.
	FailFirst int
}

// Call is one request the platform received.
type Call struct {
	// Op names what was asked: confirm_ready, register, subscribe,
	// deregister, unsubscribe, confirm_termination, token.
	Op     string
	Method string
	// Path is the request's path under the platform's prefix.
	Path   string
	Status int
	Body   []byte
	At     time.Time
}

// Platform is a running stand-in.
type Platform struct {
	// URL is what cmbs's mec.platform is set to; TokenURL its
	// mec.oauth2.token_url.
	URL, TokenURL string

	t        testing.TB
	opts     Options
	addr     string
	srv      *httptest.Server
	validate map[string]validator.Validator // by spec root
	notice   *base.Schema                   // AppTerminationNotification

	mu           sync.Mutex
	calls        []Call
	problems     []string
	services     map[string]json.RawMessage
	nextID       int
	subscription *subscription
	tokens       map[string]bool
	failLeft     int
	confirmed    chan string
}

type subscription struct {
	id, callback string
}

// Start runs a stand-in until the test ends; then every validation
// problem it met fails the test.
func Start(t testing.TB, opts Options) *Platform {
	t.Helper()
	if opts.AppInstanceID == "" {
		opts.AppInstanceID = "app-1"
	}
	if opts.Prefix == "" {
		opts.Prefix = "/sbx1x2y3z/mep1"
	}
	if opts.AppSupportRoot == "" {
		opts.AppSupportRoot = "mec_app_support/v2"
	}
	if opts.ServiceMgmtRoot == "" {
		opts.ServiceMgmtRoot = "mec_service_mgmt/v1"
	}
	p := &Platform{t: t, opts: opts, services: map[string]json.RawMessage{}, tokens: map[string]bool{},
		failLeft: opts.FailFirst, confirmed: make(chan string, 1), validate: map[string]validator.Validator{}}
	p.loadSpecs()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.URL = "http://" + p.addr + opts.Prefix
	p.TokenURL = "http://" + p.addr + "/oauth2/token"
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Listener = ln
	if opts.Down {
		// Free the port so that connections are refused until Up.
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		p.srv.Listener = nil
	} else {
		p.srv.Start()
	}
	t.Cleanup(func() {
		if p.srv.Listener != nil {
			p.srv.Close()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pr := range p.problems {
			t.Errorf("MEC platform stand-in: %s", pr)
		}
	})
	return p
}

// loadSpecs builds a validator per API, with the one workaround README.md
// explains.
func (p *Platform) loadSpecs() {
	for root, raw := range map[string][]byte{specAppSupport: appSupportSpec, specServiceMgmt: PatchServicesPOST(serviceMgmtSpec)} {
		doc, err := libopenapi.NewDocument(raw)
		if err != nil {
			p.t.Fatalf("load %s: %v", root, err)
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			p.t.Fatalf("validator for %s: %v", root, errs)
		}
		if ok, errs := v.ValidateDocument(); !ok {
			p.t.Fatalf("%s is not a valid OpenAPI document: %v", root, errs)
		}
		p.validate[root] = v
		if root == specAppSupport {
			model, err := doc.BuildV3Model()
			if err != nil {
				p.t.Fatal(err)
			}
			p.notice = model.Model.Components.Schemas.GetOrZero("AppTerminationNotification").Schema()
		}
	}
}

// servicesPOSTBody is the request body schema of AppServices_POST in the
// files, which no body can pass.
const servicesPOSTBody = `            schema:
              oneOf:
              - type: object
              - type: object
              description: New ServiceInfo with updated "state" is included as entity body of the request
              contentMediaType: application/json
`

// PatchServicesPOST gives AppServices_POST the request body schema of
// AppServicesServiceId_PUT, ServiceInfo.
func PatchServicesPOST(spec []byte) []byte {
	return bytes.Replace(spec, []byte(servicesPOSTBody), []byte("            schema:\n              $ref: '#/components/schemas/ServiceInfo'\n"), 1)
}

// ServiceMgmtSpec is MecServiceMgmtApi.yaml as shipped.
func ServiceMgmtSpec() []byte { return bytes.Clone(serviceMgmtSpec) }

// Up starts serving on the port chosen at Start, for a platform started
// Down.
func (p *Platform) Up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	// The port was free a moment ago; a connection being refused in
	// TIME_WAIT does not hold it.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("MEC platform stand-in: listen again on %s: %v", p.addr, err)
	}
	p.srv.Listener = ln
	p.srv.Start()
}

// Calls returns the requests received so far.
func (p *Platform) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// Ops returns the ops of the calls received so far, answered or not.
func (p *Platform) Ops() []string {
	var out []string
	for _, c := range p.Calls() {
		out = append(out, c.Op)
	}
	return out
}

// Services returns the registered services by serInstanceId.
func (p *Platform) Services() map[string]json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]json.RawMessage{}
	for k, v := range p.services {
		out[k] = v
	}
	return out
}

// Subscribed reports whether the termination subscription exists.
func (p *Platform) Subscribed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subscription != nil
}

// Confirmed delivers the operationAction of confirm_termination.
func (p *Platform) Confirmed() <-chan string { return p.confirmed }

// RevokeTokens makes every token issued so far invalid.
func (p *Platform) RevokeTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = map[string]bool{}
}

// Terminate posts an AppTerminationNotification (TERMINATING, with
// maxGracefulTimeout in seconds) to the subscribed callback, after
// validating it against the files, and returns the status the
// application answered.
func (p *Platform) Terminate(maxGracefulTimeout int) (int, error) {
	p.mu.Lock()
	sub := p.subscription
	p.mu.Unlock()
	if sub == nil {
		return 0, fmt.Errorf("no termination subscription")
	}
	root := p.URL + "/" + p.opts.AppSupportRoot + "/applications/" + p.opts.AppInstanceID
	body, err := json.Marshal(map[string]any{
		"notificationType":   "AppTerminationNotification",
		"operationAction":    "TERMINATING",
		"maxGracefulTimeout": maxGracefulTimeout,
		"_links": map[string]any{
			"subscription":       map[string]any{"href": root + "/subscriptions/" + sub.id},
			"confirmTermination": map[string]any{"href": root + "/confirm_termination"},
		},
	})
	if err != nil {
		return 0, err
	}
	if ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(p.notice, body); !ok {
		return 0, fmt.Errorf("the stand-in's notification breaks AppTerminationNotification: %s", describe(errs))
	}
	resp, err := http.Post(sub.callback, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// serve answers one request: the token endpoint, or an Mp1 request,
// validated before and after.
func (p *Platform) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.URL.Path == "/oauth2/token" {
		p.token(w, r, body)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, p.opts.Prefix+"/")
	var specRoot, rest string
	if ok {
		if r, under := strings.CutPrefix(rel, p.opts.AppSupportRoot+"/"); under {
			specRoot, rest = specAppSupport, "/"+r
		} else if r, under := strings.CutPrefix(rel, p.opts.ServiceMgmtRoot+"/"); under {
			specRoot, rest = specServiceMgmt, "/"+r
		}
	}
	call := Call{Op: op(r.Method, rest), Method: r.Method, Path: rel, Body: body, At: time.Now()}
	rec := httptest.NewRecorder()
	switch specRoot {
	case "":
		p.problem("%s %s: not under an API root of the platform", r.Method, r.URL.Path)
		writeProblem(rec, http.StatusNotFound, "no such API")
	default:
		vreq := p.specRequest(r, specRoot+rest, body)
		if ok, errs := p.validate[specRoot].ValidateHttpRequestSync(vreq); !ok {
			p.problem("request %s %s breaks the OpenAPI file: %s", r.Method, rel, describe(errs))
			writeProblem(rec, http.StatusBadRequest, describe(errs))
			break
		}
		p.handle(rec, r, call.Op, rest, body)
		resp := rec.Result()
		resp.Request = vreq
		if ok, errs := p.validate[specRoot].ValidateHttpResponse(p.specRequest(r, specRoot+rest, body), resp); !ok {
			p.problem("the stand-in's answer %d to %s %s breaks the OpenAPI file: %s", rec.Code, r.Method, rel, describe(errs))
		}
	}
	call.Status = rec.Code
	p.mu.Lock()
	p.calls = append(p.calls, call)
	p.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// specRequest is r as the OpenAPI file sees it: at target, under the
// server the file names.
func (p *Platform) specRequest(r *http.Request, target string, body []byte) *http.Request {
	u, _ := url.Parse(target)
	u.RawQuery = r.URL.RawQuery
	v := r.Clone(r.Context())
	v.URL, v.Host, v.RequestURI = u, u.Host, ""
	v.Body = io.NopCloser(bytes.NewReader(body))
	v.ContentLength = int64(len(body))
	return v
}

// op names a request by what it asks, from its path under the API root.
func op(method, rest string) string {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 3 || parts[0] != "applications" {
		return method + " " + rest
	}
	switch tail := parts[2:]; {
	case method == http.MethodPost && len(tail) == 1 && tail[0] == "confirm_ready":
		return "confirm_ready"
	case method == http.MethodPost && len(tail) == 1 && tail[0] == "confirm_termination":
		return "confirm_termination"
	case method == http.MethodPost && len(tail) == 1 && tail[0] == "services":
		return "register"
	case method == http.MethodDelete && len(tail) == 2 && tail[0] == "services":
		return "deregister"
	case method == http.MethodPost && len(tail) == 1 && tail[0] == "subscriptions":
		return "subscribe"
	case method == http.MethodDelete && len(tail) == 2 && tail[0] == "subscriptions":
		return "unsubscribe"
	}
	return method + " " + rest
}

// handle answers a request that passed validation.
func (p *Platform) handle(w http.ResponseWriter, r *http.Request, op, rest string, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.ClientID != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !p.tokens[tok] {
			// RFC 6750 answers 401; the files list it for the two
			// confirmations only, and 403 for the other operations.
			status := http.StatusForbidden
			if op == "confirm_ready" || op == "confirm_termination" {
				status = http.StatusUnauthorized
			}
			writeProblem(w, status, "no valid bearer token")
			return
		}
	}
	if p.failLeft > 0 && op == "confirm_ready" {
		p.failLeft--
		writeProblem(w, http.StatusConflict, "the application instance is not instantiated yet")
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if parts[1] != p.opts.AppInstanceID {
		writeProblem(w, http.StatusNotFound, "no application instance "+parts[1])
		return
	}
	appRoot := p.URL + "/" + p.opts.AppSupportRoot + "/applications/" + p.opts.AppInstanceID
	switch op {
	case "confirm_ready":
		w.WriteHeader(http.StatusNoContent)
	case "register":
		var s map[string]any
		if err := json.Unmarshal(body, &s); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		p.nextID++
		id := "svc-" + strconv.Itoa(p.nextID)
		s["serInstanceId"] = id
		raw, _ := json.Marshal(s)
		p.services[id] = raw
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", p.URL+"/"+p.opts.ServiceMgmtRoot+"/applications/"+p.opts.AppInstanceID+"/services/"+id)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(raw)
	case "deregister":
		if _, ok := p.services[parts[3]]; !ok {
			writeProblem(w, http.StatusNotFound, "no service "+parts[3])
			return
		}
		delete(p.services, parts[3])
		w.WriteHeader(http.StatusNoContent)
	case "subscribe":
		var s map[string]any
		if err := json.Unmarshal(body, &s); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		p.nextID++
		id := "sub-" + strconv.Itoa(p.nextID)
		p.subscription = &subscription{id: id, callback: s["callbackReference"].(string)}
		s["_links"] = map[string]any{"self": map[string]any{"href": appRoot + "/subscriptions/" + id}}
		raw, _ := json.Marshal(s)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", appRoot+"/subscriptions/"+id)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(raw)
	case "unsubscribe":
		if p.subscription == nil || p.subscription.id != parts[3] {
			writeProblem(w, http.StatusNotFound, "no subscription "+parts[3])
			return
		}
		p.subscription = nil
		w.WriteHeader(http.StatusNoContent)
	case "confirm_termination":
		var c struct {
			OperationAction string `json:"operationAction"`
		}
		_ = json.Unmarshal(body, &c)
		select {
		case p.confirmed <- c.OperationAction:
		default:
			p.problems = append(p.problems, "confirm_termination received twice")
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeProblem(w, http.StatusNotFound, "the stand-in does not serve "+op)
	}
}

// token issues a token for the client credentials grant.
func (p *Platform) token(w http.ResponseWriter, r *http.Request, body []byte) {
	form, _ := url.ParseQuery(string(body))
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	call := Call{Op: "token", Method: r.Method, Path: r.URL.Path, Body: body, At: time.Now()}
	defer func() { p.calls = append(p.calls, call) }()
	if r.Method != http.MethodPost || form.Get("grant_type") != "client_credentials" {
		call.Status = http.StatusBadRequest
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(call.Status)
		_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
		return
	}
	if p.opts.ClientID == "" || id != p.opts.ClientID || secret != p.opts.ClientSecret {
		call.Status = http.StatusUnauthorized
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(call.Status)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	p.nextID++
	tok := "token-" + strconv.Itoa(p.nextID)
	p.tokens[tok] = true
	call.Status = http.StatusOK
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func (p *Platform) problem(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}
