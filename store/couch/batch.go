package couch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/houssem/cmbs/store"
)

// CouchDB's _bulk_docs is not atomic: each document succeeds or fails on
// its own, and a crash part way leaves part of the batch written. Write
// makes a batch all-or-nothing with a journal, a document under
// journalPrefix holding every write of the batch:
//
//  1. the current revisions are read and checked (nothing written yet);
//  2. the journal is written;
//  3. the batch goes out in one _bulk_docs;
//  4. the journal is deleted.
//
// If some writes of step 3 conflict (another writer got in between 1 and 3)
// the ones that succeeded are put back as they were and Write fails. If the
// process dies after step 2, the next Open finds the journal and rolls the
// batch forward: every write whose document is still at the revision the
// batch expected is applied. A batch is therefore, after a crash, either
// absent (the journal was never written) or complete, except for a
// document another writer changed in between, which keeps that writer's
// version. Readers may see a batch part way while it is being applied.
const journalPrefix = store.ReservedPrefix + "batch:"

// journal is the stored form of a batch in flight.
type journal struct {
	Doc     string         `json:"doc"`
	Created string         `json:"created"`
	Writes  []journalWrite `json:"writes"`
}

type journalWrite struct {
	ID string `json:"id"`
	// Rev is the revision the batch expects ("" for a create).
	Rev    string          `json:"rev,omitempty"`
	Delete bool            `json:"delete,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// current is a document's state before a batch.
type current struct {
	rev  string // "" when absent or deleted
	body json.RawMessage
}

// Write commits writes all-or-nothing (see journalPrefix). A single write
// is a plain Put or Delete, which CouchDB makes atomic by itself.
func (s *Store) Write(ctx context.Context, writes []store.Write) ([]string, error) {
	bodies, err := store.CheckWrites(writes)
	if err != nil {
		return nil, fmt.Errorf("couch: write: %w", err)
	}
	switch len(writes) {
	case 0:
		return []string{}, nil
	case 1:
		return s.writeOne(ctx, writes[0])
	}
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: write: %w", err)
	}
	defer s.ops.Done()
	revs, err := s.writeBatch(ctx, writes, bodies)
	if err != nil {
		return nil, fmt.Errorf("couch: write: %w", err)
	}
	return revs, nil
}

func (s *Store) writeOne(ctx context.Context, w store.Write) ([]string, error) {
	var (
		rev string
		err error
	)
	if w.Delete {
		err = s.Delete(ctx, w.Doc.ID, w.Doc.Rev)
	} else {
		rev, err = s.Put(ctx, w.Doc)
	}
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("couch: write: %w", &store.WriteError{Index: 0, ID: w.Doc.ID, Err: err})
	}
	return []string{rev}, nil
}

func (s *Store) writeBatch(ctx context.Context, writes []store.Write, bodies []json.RawMessage) ([]string, error) {
	// Only updates and deletes need the state before the batch (to check
	// it, and to put it back if the batch fails); a create expects no
	// document, which _bulk_docs checks by itself.
	var ids []string
	for _, w := range writes {
		if w.Delete || w.Doc.Rev != "" {
			ids = append(ids, w.Doc.ID)
		}
	}
	cur := map[string]current{}
	if len(ids) > 0 {
		var err error
		if cur, err = s.currentDocs(ctx, ids); err != nil {
			return nil, err
		}
	}
	j := journal{Doc: "journal", Created: time.Now().UTC().Format(time.RFC3339Nano), Writes: make([]journalWrite, len(writes))}
	for i, w := range writes {
		if w.Delete || w.Doc.Rev != "" {
			if err := expect(w, cur[w.Doc.ID]); err != nil {
				return nil, &store.WriteError{Index: i, ID: w.Doc.ID, Err: err}
			}
		}
		j.Writes[i] = journalWrite{ID: w.Doc.ID, Rev: w.Doc.Rev, Delete: w.Delete, Body: bodies[i]}
	}
	jid, err := newJournalID()
	if err != nil {
		return nil, err
	}
	jrev, err := s.db.Put(ctx, jid, j)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", mapErr(err))
	}
	revs, failed, err := s.bulk(ctx, j.Writes)
	if err != nil {
		// The outcome is unknown: the journal stays, and the next Open
		// completes the batch.
		return nil, fmt.Errorf("bulk write (the batch completes when the store is next opened): %w", err)
	}
	if failed >= 0 {
		s.undo(ctx, j.Writes, revs, cur)
	}
	if _, err := s.db.Delete(ctx, jid, jrev); err != nil {
		s.log.WithError(err).WithField("journal", jid).Warn("batch journal not deleted; the next Open replays it harmlessly")
	}
	if failed >= 0 {
		w := writes[failed]
		if !w.Delete && w.Doc.Rev == "" {
			return nil, &store.WriteError{Index: failed, ID: w.Doc.ID, Err: fmt.Errorf("document exists: %w", store.ErrConflict)}
		}
		return nil, &store.WriteError{Index: failed, ID: w.Doc.ID,
			Err: fmt.Errorf("changed by another writer during the batch: %w", store.ErrConflict)}
	}
	for i, w := range writes {
		if w.Delete {
			revs[i] = ""
		}
	}
	return revs, nil
}

// expect checks w against its document's state before the batch.
func expect(w store.Write, c current) error {
	switch {
	case c.rev == "" && w.Delete:
		return store.ErrNotFound
	case c.rev == "" && w.Doc.Rev != "":
		return fmt.Errorf("document does not exist, revision %q: %w", w.Doc.Rev, store.ErrConflict)
	case c.rev != w.Doc.Rev && w.Doc.Rev == "":
		return fmt.Errorf("document exists at revision %q: %w", c.rev, store.ErrConflict)
	case c.rev != w.Doc.Rev:
		return fmt.Errorf("revision %q is not the current %q: %w", w.Doc.Rev, c.rev, store.ErrConflict)
	}
	return nil
}

func newJournalID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("journal id: %w", err)
	}
	return journalPrefix + hex.EncodeToString(b[:]), nil
}

// GetMany returns the documents of ids that exist, from one _all_docs
// request.
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]store.Doc, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: get many: %w", err)
	}
	defer s.ops.Done()
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if store.CheckID(id) == nil {
			valid = append(valid, id)
		}
	}
	out := make(map[string]store.Doc, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	cur, err := s.currentDocs(ctx, valid)
	if err != nil {
		return nil, fmt.Errorf("couch: get many: %w", err)
	}
	for id, c := range cur {
		out[id] = store.Doc{ID: id, Rev: c.rev, Body: c.body}
	}
	return out, nil
}

// currentDocs reads the revision and body of each id (absent ones have
// none) in one request.
func (s *Store) currentDocs(ctx context.Context, ids []string) (map[string]current, error) {
	rs := s.db.AllDocs(ctx, kivik.Params(map[string]any{"keys": ids, "include_docs": true}))
	defer func() { _ = rs.Close() }()
	out := make(map[string]current, len(ids))
	for rs.Next() {
		id, err := rs.ID()
		if err != nil {
			// A key with no document comes back as an error row.
			continue
		}
		var fields map[string]json.RawMessage
		if err := rs.ScanDoc(&fields); err != nil || fields == nil {
			continue // deleted: no document to scan
		}
		doc, err := fromCouch(id, fields)
		if err != nil {
			return nil, err
		}
		out[id] = current{rev: doc.Rev, body: doc.Body}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read current revisions: %w", mapErr(err))
	}
	return out, nil
}

// bulk sends writes in one _bulk_docs and returns the new revisions and
// the index of the first write that conflicted (-1 when none did). A write
// found already applied, by a recovery replaying this batch's journal, is
// a success.
func (s *Store) bulk(ctx context.Context, writes []journalWrite) (revs []string, failed int, err error) {
	docs := make([]any, len(writes))
	for i, w := range writes {
		docs[i], err = couchDoc(w.ID, w.Rev, w.Delete, w.Body)
		if err != nil {
			return nil, -1, err
		}
	}
	results, err := s.db.BulkDocs(ctx, docs)
	if err != nil {
		return nil, -1, mapErr(err)
	}
	if len(results) != len(writes) {
		return nil, -1, fmt.Errorf("%d results for %d documents", len(results), len(writes))
	}
	revs, failed = make([]string, len(writes)), -1
	for i, r := range results {
		if r.Error == nil {
			revs[i] = r.Rev
			continue
		}
		if kivik.HTTPStatus(r.Error) == http.StatusConflict {
			if rev, ok := s.alreadyApplied(ctx, writes[i]); ok {
				revs[i] = rev
				continue
			}
			if failed < 0 {
				failed = i
			}
			continue
		}
		return nil, -1, fmt.Errorf("%q: %w", writes[i].ID, mapErr(r.Error))
	}
	return revs, failed, nil
}

// alreadyApplied reports whether w's document already holds what w writes.
func (s *Store) alreadyApplied(ctx context.Context, w journalWrite) (string, bool) {
	cur, err := s.currentDocs(ctx, []string{w.ID})
	if err != nil {
		return "", false
	}
	c, ok := cur[w.ID]
	if w.Delete {
		return "", !ok
	}
	return c.rev, ok && sameJSON(c.body, w.Body)
}

func sameJSON(a, b json.RawMessage) bool {
	ca, err1 := encodeCanonical(a)
	cb, err2 := encodeCanonical(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}

func encodeCanonical(raw json.RawMessage) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// undo puts back what a failed batch changed: the writes that got a new
// revision return to their state before the batch.
func (s *Store) undo(ctx context.Context, writes []journalWrite, revs []string, before map[string]current) {
	var docs []any
	for i, w := range writes {
		if revs[i] == "" && !w.Delete {
			continue // not applied
		}
		old := before[w.ID]
		var (
			doc any
			err error
		)
		switch {
		case w.Delete:
			// A delete cannot be undone at its tombstone's revision by
			// _bulk_docs on every server; write the old body as a new
			// document revision instead.
			doc, err = couchDoc(w.ID, "", false, old.body)
		case old.rev == "":
			doc, err = couchDoc(w.ID, revs[i], true, nil)
		default:
			doc, err = couchDoc(w.ID, revs[i], false, old.body)
		}
		if err != nil {
			s.log.WithError(err).WithField("id", w.ID).Error("undo of a failed batch")
			continue
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		return
	}
	results, err := s.db.BulkDocs(ctx, docs)
	if err != nil {
		s.log.WithError(err).Error("undo of a failed batch")
		return
	}
	for _, r := range results {
		if r.Error != nil {
			s.log.WithError(r.Error).WithField("id", r.ID).Error("undo of a failed batch")
		}
	}
}

// couchDoc builds a _bulk_docs entry.
func couchDoc(id, rev string, deleted bool, body json.RawMessage) (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if !deleted && len(body) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("%q: %w", id, err)
		}
	}
	var err error
	if fields["_id"], err = json.Marshal(id); err != nil {
		return nil, err
	}
	if rev != "" {
		if fields["_rev"], err = json.Marshal(rev); err != nil {
			return nil, err
		}
	}
	if deleted {
		fields["_deleted"] = json.RawMessage("true")
	}
	return fields, nil
}

// recover completes the batches whose journals a crashed process left:
// each write whose document is still at the revision the batch expected is
// applied, and the journal is deleted.
func (s *Store) recover(ctx context.Context) error {
	for {
		docs, err := s.scanRaw(ctx, journalPrefix, "", 100)
		if err != nil {
			return fmt.Errorf("read batch journals: %w", err)
		}
		if len(docs) == 0 {
			return nil
		}
		for _, d := range docs {
			if err := s.replay(ctx, d); err != nil {
				return fmt.Errorf("replay batch journal %s: %w", d.ID, err)
			}
		}
	}
}

func (s *Store) replay(ctx context.Context, d store.Doc) error {
	var j journal
	if err := json.Unmarshal(d.Body, &j); err != nil {
		return err
	}
	ids := make([]string, len(j.Writes))
	for i, w := range j.Writes {
		ids[i] = w.ID
	}
	cur, err := s.currentDocs(ctx, ids)
	if err != nil {
		return err
	}
	var pending []journalWrite
	for _, w := range j.Writes {
		if cur[w.ID].rev == w.Rev && (!w.Delete || w.Rev != "") {
			pending = append(pending, w)
		}
	}
	if len(pending) > 0 {
		if _, _, err := s.bulk(ctx, pending); err != nil {
			return err
		}
		s.log.WithField("journal", d.ID).WithField("writes", len(pending)).Warn("completed a batch a crash interrupted")
	}
	// Gone or deleted at another revision: the process that wrote it, or
	// another one sharing the database, finished with it first.
	if _, err := s.db.Delete(ctx, d.ID, d.Rev); err != nil {
		if st := kivik.HTTPStatus(err); st != http.StatusNotFound && st != http.StatusConflict {
			return mapErr(err)
		}
	}
	return nil
}

// Scan returns up to limit documents under prefix whose ids sort after
// after, from _all_docs, whose ids are in byte order (CouchDB's raw
// collation, PouchDB's string order, for the ids cmbs writes).
func (s *Store) Scan(ctx context.Context, prefix, after string, limit int) ([]store.Doc, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("couch: scan %q: %w", prefix, err)
	}
	defer s.ops.Done()
	var out []store.Doc
	for limit <= 0 || len(out) < limit {
		want := s.pageSize
		if limit > 0 {
			want = min(want, limit-len(out))
		}
		page, err := s.scanRaw(ctx, prefix, after, want)
		if err != nil {
			return nil, fmt.Errorf("couch: scan %q after %q: %w", prefix, after, err)
		}
		for _, d := range page {
			if !reserved(d.ID) {
				out = append(out, d)
			}
		}
		if len(page) < want {
			break
		}
		after = page[len(page)-1].ID
	}
	return out, nil
}

// scanRaw reads up to limit documents of _all_docs under prefix after
// after, reserved ones included.
func (s *Store) scanRaw(ctx context.Context, prefix, after string, limit int) ([]store.Doc, error) {
	params := map[string]any{"include_docs": true, "limit": limit, "endkey": prefix + idRangeEnd}
	start := prefix
	if after >= prefix {
		// The smallest id sorting after after.
		start = after + "\x00"
	}
	if start != "" {
		params["startkey"] = start
	}
	rs := s.db.AllDocs(ctx, kivik.Params(params))
	defer func() { _ = rs.Close() }()
	var docs []store.Doc
	for rs.Next() {
		id, err := rs.ID()
		if err != nil {
			return nil, err
		}
		var fields map[string]json.RawMessage
		if err := rs.ScanDoc(&fields); err != nil {
			return nil, fmt.Errorf("%q: %w", id, err)
		}
		doc, err := fromCouch(id, fields)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(id, prefix) {
			docs = append(docs, doc)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, mapErr(err)
	}
	return docs, nil
}
