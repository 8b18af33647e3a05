package couch

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// TestRecoverBatch plays a process that died between writing a batch's
// journal and the batch itself: the next Open completes the batch, except a
// write whose document changed meanwhile, and removes the journal.
func TestRecoverBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL := couchtest.NewDBURL(t)
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	updRev, err := s.Put(ctx, store.Doc{ID: "upd", Body: json.RawMessage(`{"v":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	delRev, err := s.Put(ctx, store.Doc{ID: "del", Body: json.RawMessage(`{"v":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	movedRev, err := s.Put(ctx, store.Doc{ID: "moved", Body: json.RawMessage(`{"v":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	j := journal{Doc: "journal", Created: time.Now().UTC().Format(time.RFC3339Nano), Writes: []journalWrite{
		{ID: "new", Body: json.RawMessage(`{"v":1}`)},
		{ID: "upd", Rev: updRev, Body: json.RawMessage(`{"v":1}`)},
		{ID: "del", Rev: delRev, Delete: true},
		{ID: "moved", Rev: movedRev, Body: json.RawMessage(`{"v":1}`)},
	}}
	jid, err := newJournalID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Put(ctx, jid, j); err != nil {
		t.Fatal(err)
	}
	// Another writer changes one document after the journal was written.
	if _, err := s.Put(ctx, store.Doc{ID: "moved", Rev: movedRev, Body: json.RawMessage(`{"v":"other"}`)}); err != nil {
		t.Fatal(err)
	}
	// The journal is the store's own: no listing shows it.
	if docs, err := s.List(ctx, ""); err != nil || len(docs) != 3 {
		t.Fatalf("List shows %d documents (%v), want the 3 of the caller", len(docs), err)
	}
	if docs, err := s.Scan(ctx, "", "", 0); err != nil || len(docs) != 3 {
		t.Fatalf("Scan shows %d documents (%v), want the 3 of the caller", len(docs), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	for id, want := range map[string]string{"new": `{"v":1}`, "upd": `{"v":1}`, "moved": `{"v":"other"}`} {
		doc, err := s.Get(ctx, id)
		if err != nil || string(doc.Body) != want {
			t.Errorf("%s after recovery = %s, %v; want %s", id, doc.Body, err, want)
		}
	}
	if _, err := s.Get(ctx, "del"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("del after recovery: %v, want not found", err)
	}
	if rows, err := s.scanRaw(ctx, journalPrefix, "", 10); err != nil || len(rows) != 0 {
		t.Errorf("journals left after recovery: %d (%v)", len(rows), err)
	}
}

// TestRecoverBatchFinishedElsewhere: a journal that another process
// sharing the database finishes with while this one replays it (the
// writer completing its batch, or another server recovering it) is no
// error: the replay leaves it to them.
func TestRecoverBatchFinishedElsewhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, couchtest.NewDBURL(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	jid, err := newJournalID()
	if err != nil {
		t.Fatal(err)
	}
	j := journal{Doc: "journal", Created: time.Now().UTC().Format(time.RFC3339Nano), Writes: []journalWrite{
		{ID: "new", Body: json.RawMessage(`{"v":1}`)}}}
	if _, err := s.db.Put(ctx, jid, j); err != nil {
		t.Fatal(err)
	}
	rows, err := s.scanRaw(ctx, journalPrefix, "", 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("journals: %d (%v)", len(rows), err)
	}
	// The writer applies its batch and deletes its journal after this
	// process read it.
	if _, err := s.Put(ctx, store.Doc{ID: "new", Body: json.RawMessage(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Delete(ctx, rows[0].ID, rows[0].Rev); err != nil {
		t.Fatal(err)
	}
	if err := s.replay(ctx, rows[0]); err != nil {
		t.Errorf("replay of a journal finished elsewhere: %v", err)
	}
	if doc, err := s.Get(ctx, "new"); err != nil || string(doc.Body) != `{"v":1}` {
		t.Errorf("new = %s, %v", doc.Body, err)
	}
}
