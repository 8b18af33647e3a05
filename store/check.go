package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrClosed is returned by every call made on a Store after Close.
var ErrClosed = errors.New("store closed")

// ErrInvalid is returned for a document a backend refuses to store: an id
// CheckID rejects, or a body that is not a JSON object
// or has a top-level key starting with an underscore. Both backends refuse the
// same documents so that code written against one runs on the other.
var ErrInvalid = errors.New("invalid document")

// CheckDoc validates doc for Put and returns its body in compact form. A nil
// or empty body stands for the empty object.
func CheckDoc(doc Doc) (json.RawMessage, error) {
	if err := CheckID(doc.ID); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(doc.Body)
	if len(body) == 0 {
		return json.RawMessage("{}"), nil
	}
	var fields map[string]json.RawMessage
	if body[0] != '{' {
		return nil, fmt.Errorf("%w: id %q: body is not a JSON object", ErrInvalid, doc.ID)
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("%w: id %q: body: %w", ErrInvalid, doc.ID, err)
	}
	for k := range fields {
		if strings.HasPrefix(k, "_") {
			return nil, fmt.Errorf("%w: id %q: top-level key %q starts with an underscore", ErrInvalid, doc.ID, k)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return nil, fmt.Errorf("%w: id %q: body: %w", ErrInvalid, doc.ID, err)
	}
	return buf.Bytes(), nil
}

// ReservedPrefix starts the ids of documents a backend keeps for itself
// (the CouchDB backend's batch journals); no caller may write one, and
// backends leave them out of every listing, query and change feed.
const ReservedPrefix = "~store:"

// CheckID validates a document id: it must be non-empty UTF-8 and must not
// start with an underscore, which CouchDB reserves for design and local
// documents, nor with ReservedPrefix. Backends answer Get and Delete of such an id with ErrNotFound,
// since no document can have it.
func CheckID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrInvalid)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: id %q is not valid UTF-8", ErrInvalid, id)
	}
	if strings.HasPrefix(id, "_") {
		return fmt.Errorf("%w: id %q starts with an underscore", ErrInvalid, id)
	}
	if strings.HasPrefix(id, ReservedPrefix) {
		return fmt.Errorf("%w: id %q starts with %q, which the store reserves", ErrInvalid, id, ReservedPrefix)
	}
	return nil
}
