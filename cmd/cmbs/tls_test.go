package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/config/tlstest"
)

// httpsClient trusts the authority of files and, with clientCert,
// presents its client certificate.
func httpsClient(t *testing.T, files tlstest.Files, clientCert bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if clientCert {
		cert, err := tls.LoadX509KeyPair(files.ClientCert, files.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func status(t *testing.T, hc *http.Client, method, url, body string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/occi+json")
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer cmbstest.NoError(t, res.Body.Close)
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// TestServeTLS serves HTTPS with --tls-cert and --tls-key: clients that
// trust its authority get answers, plain HTTP and untrusting clients none,
// and Location headers say https.
func TestServeTLS(t *testing.T) {
	certs := tlstest.Write(t, "cmbs")
	s := startServe(t, "--store", "file:"+t.TempDir(), "--tls-cert", certs.Cert, "--tls-key", certs.Key)
	url := strings.Replace(s.url, "http://", "https://", 1)
	hc := httpsClient(t, certs, false)
	if code, err := status(t, hc, "GET", url+"/-/", ""); err != nil || code != http.StatusOK {
		t.Fatalf("GET /-/ over https: %d, %v", code, err)
	}
	req, _ := http.NewRequest("POST", url+"/resource/", strings.NewReader(`{"resources":[{"id":"r1"}]}`))
	req.Header.Set("Content-Type", "application/occi+json")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cmbstest.NoError(t, res.Body.Close)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, "https://") {
		t.Errorf("create over https: %d, Location %q", res.StatusCode, loc)
	}
	if code, err := status(t, http.DefaultClient, "GET", s.url+"/-/", ""); err == nil && code == http.StatusOK {
		t.Error("plain HTTP was answered by an HTTPS server")
	}
	if _, err := status(t, &http.Client{Timeout: 5 * time.Second}, "GET", url+"/-/", ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client not trusting the authority: %v, want a certificate error", err)
	}
	if !strings.Contains(s.stderr.String(), `scheme=https`) {
		t.Errorf("serve did not log that it speaks https:\n%s", s.stderr)
	}
}

// TestServeClientCertificates: with --tls-client-ca every request but the
// probes and /metrics needs a client certificate the authority signed.
func TestServeClientCertificates(t *testing.T) {
	certs, other := tlstest.Write(t, "cmbs"), tlstest.Write(t, "other")
	s := startServe(t, "--store", "file:"+t.TempDir(), "--tls-cert", certs.Cert, "--tls-key", certs.Key, "--tls-client-ca", certs.CA)
	url := strings.Replace(s.url, "http://", "https://", 1)
	with, without := httpsClient(t, certs, true), httpsClient(t, certs, false)
	if code, err := status(t, with, "GET", url+"/-/", ""); err != nil || code != http.StatusOK {
		t.Errorf("GET /-/ with a client certificate: %d, %v", code, err)
	}
	if code, err := status(t, without, "GET", url+"/-/", ""); err != nil || code != http.StatusForbidden {
		t.Errorf("GET /-/ without a client certificate: %d, %v; want 403", code, err)
	}
	for _, probe := range []string{"/health/alive", "/metrics"} {
		if code, err := status(t, without, "GET", url+probe, ""); err != nil || code != http.StatusOK {
			t.Errorf("GET %s without a client certificate: %d, %v; want 200", probe, code, err)
		}
	}
	// A certificate of another authority is not taken: Go's client does
	// not even send one the server's authorities did not sign.
	stranger := httpsClient(t, certs, false)
	cert, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{cert}
	if code, err := status(t, stranger, "GET", url+"/-/", ""); err == nil && code != http.StatusForbidden {
		t.Errorf("a client certificate of another authority was answered %d", code)
	}
}

// TestServeCertificateReload: a renewed certificate written over the
// files is served without a restart.
func TestServeCertificateReload(t *testing.T) {
	first, second := tlstest.Write(t, "first"), tlstest.Write(t, "second")
	dir := t.TempDir()
	cert, key := dir+"/tls.crt", dir+"/tls.key"
	copyFile := func(from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".tmp", to); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(first.Cert, cert)
	copyFile(first.Key, key)
	s := startServe(t, "--store", "file:"+t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	url := strings.Replace(s.url, "http://", "https://", 1)
	if code, err := status(t, httpsClient(t, first, false), "GET", url+"/health/alive", ""); err != nil || code != http.StatusOK {
		t.Fatalf("first certificate: %d, %v", code, err)
	}
	// Modification times must differ from the first files'.
	time.Sleep(20 * time.Millisecond)
	copyFile(second.Key, key)
	copyFile(second.Cert, cert)
	cmbstest.EventuallyWithin(t, 10*time.Second, "the server to serve the new certificate", func() bool {
		code, err := status(t, httpsClient(t, second, false), "GET", url+"/health/alive", "")
		return err == nil && code == http.StatusOK
	})
}

// TestServeBodyLimit: --max-message-bytes refuses larger bodies with 413
// and a problem document, whether declared or chunked.
func TestServeBodyLimit(t *testing.T) {
	s := startServe(t, "--store", "file:"+t.TempDir(), "--max-message-bytes", "2048")
	big := `{"resources":[{"id":"r1","title":"` + strings.Repeat("x", 4096) + `"}]}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // no length known: chunked
		}
		req, _ := http.NewRequest("POST", s.url+"/resource/", body)
		req.Header.Set("Content-Type", "application/occi+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		err = json.NewDecoder(res.Body).Decode(&p)
		cmbstest.NoError(t, res.Body.Close)
		if res.StatusCode != http.StatusRequestEntityTooLarge || err != nil || res.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(p.Detail, "2048") {
			t.Errorf("chunked=%v: %d %s %+v (%v)", chunked, res.StatusCode, res.Header.Get("Content-Type"), p, err)
		}
	}
	if code, _ := status(t, http.DefaultClient, "GET", s.url+"/resource/r1", ""); code != http.StatusNotFound {
		t.Errorf("a refused create stored something: GET = %d", code)
	}
}

// TestClientTLS: the client commands check an https server against
// --cacert, skip the check with --insecure, and present --cert/--key.
func TestClientTLS(t *testing.T) {
	certs := tlstest.Write(t, "cmbs")
	s := startServe(t, "--store", "file:"+t.TempDir(), "--tls-cert", certs.Cert, "--tls-key", certs.Key, "--tls-client-ca", certs.CA)
	url := strings.Replace(s.url, "http://", "https://", 1)
	ctx := t.Context()
	withCert := []string{"--cert", certs.ClientCert, "--key", certs.ClientKey}
	if _, stderr, err := clRun(t, ctx, url, append([]string{"categories", "list", "--cacert", certs.CA}, withCert...)...); err != nil {
		t.Errorf("--cacert: %v\n%s", err, stderr)
	}
	if _, stderr, err := clRun(t, ctx, url, append([]string{"categories", "list", "--insecure"}, withCert...)...); err != nil {
		t.Errorf("--insecure: %v\n%s", err, stderr)
	}
	if _, _, err := clRun(t, ctx, url, append([]string{"categories", "list"}, withCert...)...); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without --cacert: %v, want a certificate error", err)
	}
	if _, _, err := clRun(t, ctx, url, "categories", "list", "--cacert", certs.CA); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without a client certificate: %v, want 403", err)
	}
	if _, _, err := clRun(t, ctx, url, "categories", "list", "--cacert", certs.Key); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("--cacert of a key: %v", err)
	}
}
