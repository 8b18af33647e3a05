package bolt

import (
	"context"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store"
)

// Scans skip bodies that lack a condition's string, which is sound only if
// every stored body spells strings one way: however a client escaped them,
// and in files written before bodies were stored canonically.
func TestScanFindsEscapedStrings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cmbs.db")

	// A file from before the canonical format, written by json.Marshal's
	// HTML escaping.
	raw, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(docsBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte("/old"), encodeRecord("1-a", []byte(`{"v":"a\u0026b","n":[1.0]}`)))
	})
	cmbstest.NoError(t, raw.Close)
	if err != nil {
		t.Fatal(err)
	}

	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cmbstest.NoError(t, st.Close)
	if _, err := st.Put(ctx, store.Doc{ID: "/new", Body: []byte(`{"v":"a\u0026b","w":"\/x"}`)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cond store.Cond
		want int
	}{
		{store.Cond{Field: []string{"v"}, Op: store.Eq, Value: "a&b"}, 2},
		{store.Cond{Field: []string{"w"}, Op: store.Eq, Value: "/x"}, 1},
		{store.Cond{Field: []string{"n"}, Op: store.Contains, Value: 1}, 1},
		{store.Cond{Field: []string{"v"}, Op: store.Eq, Value: "a&c"}, 0},
	} {
		docs, err := st.Find(ctx, store.Query{Prefix: "/", Where: []store.Cond{tc.cond}})
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != tc.want {
			t.Errorf("%v: %d documents, want %d", tc.cond, len(docs), tc.want)
		}
	}
}
