package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
	"github.com/houssem/cmbs/store/storetest"
)

func openTemp(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "cmbs.db")
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestReopenKeepsDocuments(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	rev, err := s.Put(ctx, store.Doc{ID: "doc", Body: json.RawMessage(`{"v":1}`)})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer cmbstest.NoError(t, s.Close)
	doc, err := s.Get(ctx, "doc")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if doc.Rev != rev || string(doc.Body) != `{"v":1}` {
		t.Errorf("Get after reopen = %+v, want rev %q body {\"v\":1}", doc, rev)
	}
	if _, err := s.Put(ctx, store.Doc{ID: "doc", Body: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("create over a reopened document error = %v, want ErrConflict", err)
	}
	// The change sequence carries on from the file, so Watch still
	// delivers.
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	rev2, err := s.Put(ctx, store.Doc{ID: "doc", Rev: rev, Body: json.RawMessage(`{"v":2}`)})
	if err != nil {
		t.Fatalf("Put after reopen: %v", err)
	}
	select {
	case c := <-ch:
		if c.ID != "doc" || c.Rev != rev2 || c.Deleted {
			t.Errorf("change after reopen = %+v, want {doc %s false}", c, rev2)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change delivered after reopen")
	}
}

func TestSecondOpenFailsOnLock(t *testing.T) {
	s, path := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	_, err := Open(path, WithLockTimeout(50*time.Millisecond))
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("second Open error = %v, want a lock timeout", err)
	}
	if !strings.Contains(err.Error(), "holds the database lock") {
		t.Errorf("second Open error %q does not say the file is locked", err)
	}
}

func TestOpenFailsBelowAFile(t *testing.T) {
	s, path := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	if _, err := Open(filepath.Join(path, "below", "cmbs.db")); err == nil {
		t.Fatalf("Open below a regular file succeeded")
	}
}

// TestSlowSubscriberIsDropped checks the documented policy: a subscriber
// whose buffer is full gets its channel closed, writers carry on, and the
// drop is logged.
func TestSlowSubscriberIsDropped(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	s, _ := openTemp(t, WithWatchBuffer(2), WithLogger(log))
	defer cmbstest.NoError(t, s.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	fast, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	const writes = 5
	got := make(chan []string)
	go func() {
		var ids []string
		for c := range fast {
			ids = append(ids, c.ID)
			if len(ids) == writes {
				break
			}
		}
		got <- ids
	}()
	for i := range writes {
		if _, err := s.Put(ctx, store.Doc{ID: fmt.Sprintf("d%d", i), Body: json.RawMessage(`{}`)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	var seen []string
	for c := range slow {
		seen = append(seen, c.ID)
	}
	if want := []string{"d0", "d1"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("slow subscriber saw %v before its channel closed, want %v", seen, want)
	}
	select {
	case ids := <-got:
		if len(ids) != writes {
			t.Errorf("fast subscriber saw %v", ids)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fast subscriber did not see every change before the deadline")
	}
	var warned bool
	for _, e := range hook.AllEntries() {
		warned = warned || (e.Level == logrus.WarnLevel && strings.Contains(e.Message, "dropped a watch subscriber"))
	}
	if !warned {
		t.Errorf("no warning logged for the dropped subscriber; entries: %v", hook.AllEntries())
	}
}

func TestCanceledContext(t *testing.T) {
	s, _ := openTemp(t)
	defer cmbstest.NoError(t, s.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, store.Doc{ID: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context error = %v", err)
	}
	if _, err := s.Get(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context error = %v", err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, storetest.BenchConfig{
		Open: func(tb testing.TB) store.Store {
			s, _ := openTemp(tb)
			return s
		},
		Docs:        1000,
		Parallelism: 16,
		Measure: func(b *testing.B, s store.Store) func() {
			return reportPages(b, s.(*Store))
		},
	})
}

// reportPages reports the pages each operation wrote when the returned
// function runs, a cost less noisy than the time of an fsync.
func reportPages(b *testing.B, s *Store) func() {
	before := s.db.Stats()
	return func() {
		after := s.db.Stats()
		diff := after.Sub(&before)
		b.ReportMetric(float64(diff.TxStats.GetWrite())/float64(b.N), "pages/op")
	}
}

// TestHubOrdersBySequence feeds the hub changes out of order, as racing
// commit handlers can, and expects them delivered in sequence order.
func TestHubOrdersBySequence(t *testing.T) {
	log, _ := logtest.NewNullLogger()
	h := newHub(10, log, 5)
	ch, err := h.subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{7, 6, 5, 9, 8} {
		h.publish(seq, store.Change{ID: fmt.Sprint(seq)})
	}
	h.close()
	var got []string
	for c := range ch {
		got = append(got, c.ID)
	}
	if want := []string{"5", "6", "7", "8", "9"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// TestStoredBodiesFindable: bodies are stored as written (compacted) when
// they hold only the escapes encoding/json writes, re-encoded otherwise,
// and a query finds a string however it was escaped; a top-level key
// starting with an underscore is refused however it is spelled.
func TestStoredBodiesFindable(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	bodies := map[string]string{
		"html":    `{"k": "a\u003cb"}`,         // json.Marshal's HTML escape
		"plain":   `{"k":"a<b"}`,               // an Encoder told not to escape
		"foreign": `{"k":"\u0061\u003Cb"}`,     // escapes encoding/json never writes
		"slash":   `{"k":"a<b","p":"x\/y"}`,    // \/ too
		"other":   `{"k":"a>b","n":[1, 2.50]}`, // not a match
	}
	for id, body := range bodies {
		if _, err := s.Put(ctx, store.Doc{ID: id, Body: json.RawMessage(body)}); err != nil {
			t.Fatalf("Put %s: %v", id, err)
		}
	}
	docs, err := s.Find(ctx, store.Query{Where: []store.Cond{{Field: []string{"k"}, Op: store.Eq, Value: "a<b"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.ID)
	}
	if want := []string{"foreign", "html", "plain", "slash"}; !slices.Equal(got, want) {
		t.Errorf("Find k = a<b: %v, want %v", got, want)
	}
	if d, err := s.Get(ctx, "other"); err != nil || string(d.Body) != `{"k":"a>b","n":[1,2.50]}` {
		t.Errorf("a body without foreign escapes is stored compacted as written: %s, %v", d.Body, err)
	}
	for _, body := range []string{`{"_x":1}`, `{"a":{"_nested":1},"_y":2}`, `{"\u005fz":1}`} {
		if _, err := s.Put(ctx, store.Doc{ID: "bad", Body: json.RawMessage(body)}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Put %s: %v, want ErrInvalid", body, err)
		}
	}
	if _, err := s.Put(ctx, store.Doc{ID: "nested", Body: json.RawMessage(`{"a":{"_nested":1}}`)}); err != nil {
		t.Errorf("a nested key starting with an underscore: %v", err)
	}
}
