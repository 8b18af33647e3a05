package occi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/houssem/cmbs/store"
)

// Every collection answer is one page: at most ?limit= entries (the
// server's page limit when the request sets none), in the order of their
// locations, and, when more follow, a Link header with rel="next" whose
// URL reads the next page. The URL carries an opaque continuation (the
// "continue" parameter): the position after the last entry of the page and
// a fingerprint of what was asked, so it cannot be used to read another
// collection or filter by mistake. A filter sent in a body must be sent
// again with each page. Paging visits every entity present throughout
// exactly once, whatever is written meanwhile, as Kubernetes' limit and
// continue do.

// Query parameters of a page.
const (
	paramLimit    = "limit"
	paramContinue = "continue"
)

// maxCursor bounds the continuation a request may carry.
const maxCursor = 4096

// collectionWait is how long a collection request waits for its turn
// before it is refused with 503.
const collectionWait = 10 * time.Second

// pageLimits are the server's default and largest page.
type pageLimits struct{ def, max int }

// page is the part of a collection a request asks for.
type page struct {
	limit int
	// after is the location (or category id) the previous page ended
	// with; "" for the first page.
	after string
	// scope fingerprints the collection and filter the page belongs to.
	scope string
	// given tells whether the request set ?limit=, which the next link
	// then repeats.
	given bool
}

// cursor is the decoded continuation.
type cursor struct {
	V     int    `json:"v"`
	Scope string `json:"s"`
	After string `json:"a"`
}

// scopeOf fingerprints what a page lists: the kind of collection, where,
// and the filter, so a continuation only continues what it came from.
func scopeOf(what, where string, filter any) string {
	raw, _ := json.Marshal(filter)
	h := sha256.New()
	h.Write([]byte(what + "\x00" + where + "\x00"))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// pageOf reads ?limit= and ?continue= for a collection whose scope is
// scope.
func (s *Server) pageOf(r *http.Request, scope string) (page, error) {
	q := r.URL.Query()
	p := page{limit: s.pages.def, scope: scope}
	if raw := q.Get(paramLimit); q.Has(paramLimit) {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return page{}, BadRequest(paramLimit, "limit must be a whole number of at least 1, not %q", clip(raw))
		}
		p.limit, p.given = min(n, s.pages.max), true
	}
	if raw := q.Get(paramContinue); q.Has(paramContinue) {
		c, err := decodeCursor(raw)
		if err != nil {
			return page{}, BadRequest(paramContinue, "continue is not a continuation this server gave; follow the Link rel=\"next\" of the previous page")
		}
		if c.Scope != scope {
			return page{}, BadRequest(paramContinue, "the continuation belongs to another collection or filter; send the request that gave it (with the same filter) or start from the first page")
		}
		p.after = c.After
	}
	return p, nil
}

func decodeCursor(raw string) (cursor, error) {
	var c cursor
	if len(raw) > maxCursor {
		return c, BadRequest(paramContinue, "too long")
	}
	data, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, err
	}
	if c.V != 1 || c.After == "" {
		return c, BadRequest(paramContinue, "unknown version")
	}
	return c, nil
}

// setNext announces the page after the one ending at last.
func (s *Server) setNext(w http.ResponseWriter, r *http.Request, p page, last string) {
	raw, _ := json.Marshal(cursor{V: 1, Scope: p.scope, After: last})
	q := url.Values{}
	for k, v := range r.URL.Query() {
		if k != paramContinue && k != paramLimit {
			q[k] = v
		}
	}
	if p.given {
		q.Set(paramLimit, strconv.Itoa(p.limit))
	}
	q.Set(paramContinue, base64.RawURLEncoding.EncodeToString(raw))
	next := s.absURL(r, r.URL.EscapedPath()) + "?" + q.Encode()
	w.Header().Add("Link", "<"+next+">; rel=\"next\"")
}

// collectionTurn waits until fewer than Options.MaxCollectionRequests
// collection requests run, so a few clients reading large collections at
// once share the server's memory rather than exhaust it. The returned
// function ends the turn.
func (s *Server) collectionTurn(ctx context.Context) (func(), error) {
	done := func() { <-s.walks }
	select {
	case s.walks <- struct{}{}:
		return done, nil
	default:
	}
	t := time.NewTimer(collectionWait)
	defer t.Stop()
	select {
	case s.walks <- struct{}{}:
		return done, nil
	case <-t.C:
		return nil, &Error{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: "the server is busy with other collection requests; retry shortly (max_collection_requests)"}
	case <-ctx.Done():
		return nil, &Error{Status: http.StatusServiceUnavailable, Detail: "request ended while waiting for its turn", Err: ctx.Err()}
	}
}

// scanBatch is how many documents one store read fetches while a page is
// filled: enough to fill it when most match, few enough to stay small when
// a filter is selective.
func scanBatch(limit int) int {
	return min(max(limit+1, 64), 1000)
}

// matchAny reports whether body matches base and any one of alts (base
// alone when alts is empty).
func matchAny(body json.RawMessage, base []store.Cond, alts [][]store.Cond) (bool, error) {
	if ok, err := store.Match(body, base); err != nil || !ok {
		return false, err
	}
	if len(alts) == 0 {
		return true, nil
	}
	for _, alt := range alts {
		if ok, err := store.Match(body, alt); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// scanPage reads, in location order, the documents under prefix after
// p.after that match base and any of alts, up to p.limit. more tells
// whether another matching document follows. With keepBodies false the
// documents come without their bodies, which a list of locations does
// not need.
func (s *Server) scanPage(ctx context.Context, prefix string, p page, base []store.Cond, alts [][]store.Cond, keepBodies bool) (docs []store.Doc, more bool, err error) {
	after := p.after
	batch := scanBatch(p.limit)
	for {
		got, err := s.store.Scan(ctx, prefix, after, batch)
		if err != nil {
			return nil, false, err
		}
		for _, d := range got {
			ok, err := matchAny(d.Body, base, alts)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
			if len(docs) == p.limit {
				return docs, true, nil
			}
			if !keepBodies {
				d.Body = nil
			}
			docs = append(docs, d)
		}
		if len(got) < batch {
			return docs, false, nil
		}
		after = got[len(got)-1].ID
	}
}

// lastOf is the location a page of documents ends with.
func lastOf(docs []store.Doc) string { return docs[len(docs)-1].ID }

// subtreeEnd sorts after every location below dir in byte order, so a
// listing can skip what it has already summed up. (A store ordering ids
// otherwise may return some of them again; pathPage skips those.)
func subtreeEnd(dir string) string { return dir + "\U0010FFFF" }

// pathPage lists a page of what lies directly below dir: entities, and
// sub-paths (ending in /) standing for everything below them. Ids below a
// sub-path are contiguous in the store's order, so an entry equal to the
// last one listed belongs to it and is skipped.
func (s *Server) pathPage(ctx context.Context, dir string, p page) (paths []string, more bool, err error) {
	last, after := p.after, p.after
	if strings.HasSuffix(after, "/") {
		after = subtreeEnd(after)
	}
	// jumped is the sub-path skipped to its end once: a second jump could
	// go back in a store whose order is not byte order, and loop.
	jumped := after
	batch := scanBatch(p.limit)
	for {
		got, err := s.store.Scan(ctx, dir, after, batch)
		if err != nil {
			return nil, false, err
		}
		for _, d := range got {
			entry := d.ID
			if i := strings.IndexByte(d.ID[len(dir):], '/'); i >= 0 {
				entry = dir + d.ID[len(dir):len(dir)+i+1]
			}
			if entry == last {
				continue
			}
			if len(paths) == p.limit {
				return paths, true, nil
			}
			paths = append(paths, entry)
			last = entry
		}
		if len(got) < batch {
			return paths, false, nil
		}
		after = got[len(got)-1].ID
		if strings.HasSuffix(last, "/") && strings.HasPrefix(after, last) && jumped != subtreeEnd(last) {
			after, jumped = subtreeEnd(last), subtreeEnd(last)
		}
	}
}
