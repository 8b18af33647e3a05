package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/config"
	"github.com/houssem/cmbs/occi"
)

// tlsConfig is the HTTPS configuration of cfg, or nil for plain HTTP.
// Client certificates, when tls_client_ca is set, are verified during the
// handshake when a client presents one; requireClientCert then refuses
// requests that came without one, so the probes and /metrics, which answer
// ahead of it, stay reachable to orchestrators that present none.
func tlsConfig(cfg config.Config, logger logrus.FieldLogger) (*tls.Config, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	certs, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, logger)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	if cfg.TLSClientCA != "" {
		pool, err := config.LoadCertPool(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// requireClientCert answers 403 to a request that came without a client
// certificate the server verified.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			occi.WriteProblem(w, occi.Errorf(http.StatusForbidden, "", "this server requires a client certificate signed by one of its client certificate authorities (tls_client_ca)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// certReloader serves the certificate in its files, reading them again
// when they change, so a renewed certificate takes effect without a
// restart. A pair that fails to load keeps the previous one in use.
type certReloader struct {
	certPath, keyPath string
	log               logrus.FieldLogger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

// reloadEvery bounds how often the files are looked at.
const reloadEvery = time.Second

func newCertReloader(certPath, keyPath string, logger logrus.FieldLogger) (*certReloader, error) {
	c := &certReloader{certPath: certPath, keyPath: keyPath, log: logger}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, p := range []string{c.certPath, c.keyPath} {
		info, err := os.Stat(p)
		if err != nil {
			return out, err
		}
		out[i] = info.ModTime()
	}
	return out, nil
}

// load reads the pair; the caller holds mu, or is newCertReloader.
func (c *certReloader) load() error {
	stamp, err := c.stamps()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < reloadEvery {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.stamps()
	if err != nil || stamp == c.stamp {
		return c.cert, nil
	}
	if err := c.load(); err != nil {
		c.log.WithError(err).Warn("TLS certificate changed but does not load; serving the previous one")
		c.stamp = stamp
		return c.cert, nil
	}
	c.log.WithField("cert", c.certPath).Info("TLS certificate reloaded")
	return c.cert, nil
}
