package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Backend names a store implementation.
type Backend string

// Backends a store URL can select.
const (
	// BackendBolt is the embedded store, a bbolt file in a local directory.
	BackendBolt Backend = "bolt"
	// BackendCouch is a CouchDB (or CouchDB-protocol) server.
	BackendCouch Backend = "couch"
)

// BoltFile is the name of the embedded store's file inside its directory.
const BoltFile = "cmbs.db"

// StoreSpec is a parsed store URL.
type StoreSpec struct {
	Backend Backend
	// Dir is the directory of the embedded store (BackendBolt).
	Dir string
	// URL is the CouchDB URL with credentials and database (BackendCouch).
	URL string
}

// BoltPath is the embedded store's file: Dir/cmbs.db.
func (s StoreSpec) BoltPath() string { return filepath.Join(s.Dir, BoltFile) }

// Redacted is the store URL fit for logs: a CouchDB password is replaced
// by xxxxx.
func (s StoreSpec) Redacted() string {
	if s.Backend == BackendBolt {
		return "file:" + s.Dir
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// ParseStore reads a store URL. file:DIR, file:/abs/dir and file:///abs/dir
// select the embedded store; http:// and https:// URLs with a host and a
// database name select CouchDB.
func ParseStore(raw string) (StoreSpec, error) {
	if raw == "" {
		return StoreSpec{}, errors.New("empty (want file:DIR or http://host:5984/dbname)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included; keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return StoreSpec{}, fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		return parseFileStore(u)
	case "http", "https":
		return parseCouchStore(u)
	case "":
		return StoreSpec{}, errors.New("no scheme (want file:DIR or http://host:5984/dbname)")
	default:
		return StoreSpec{}, fmt.Errorf("unsupported scheme %q (want file, http or https)", u.Scheme)
	}
}

func parseFileStore(u *url.URL) (StoreSpec, error) {
	if u.Host != "" {
		return StoreSpec{}, fmt.Errorf("file URL names host %q; only local directories are supported", u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return StoreSpec{}, errors.New("file URL takes no query or fragment")
	}
	// file:./data keeps its path in Opaque; file:/x and file:///x in Path.
	dir := u.Opaque
	if dir == "" {
		dir = u.Path
	}
	if dir == "" {
		return StoreSpec{}, errors.New("file URL names no directory")
	}
	return StoreSpec{Backend: BackendBolt, Dir: filepath.Clean(dir)}, nil
}

func parseCouchStore(u *url.URL) (StoreSpec, error) {
	if u.Host == "" {
		return StoreSpec{}, errors.New("CouchDB URL names no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return StoreSpec{}, errors.New("CouchDB URL takes no query or fragment")
	}
	if strings.Trim(u.Path, "/") == "" {
		return StoreSpec{}, errors.New("CouchDB URL names no database (want http://host:5984/dbname)")
	}
	return StoreSpec{Backend: BackendCouch, URL: u.String()}, nil
}
