package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/houssem/cmbs/store"
)

// Index layout.
//
// Definitions live in the meta bucket, in the nested bucket indexDefsBucket:
// name → {"fields":[[...],...]}. That bucket's sequence counts the
// definitions ever added, so a Store can cache the decoded set and notice
// when it changed. Indexes naming the same fields share their entries,
// which the nested bucket indexKeysBucket numbers: fields as JSON → number,
// as a uvarint, never reused.
//
// Entries live in the one bucket indexBucket; one B+tree rather than one
// per index, so that a write touching several indexes dirties fewer pages.
// An entry's key is
//
//	number | kind | value | id            for an index on one field
//	number | kind | value | value... | id  for an index on several
//
// where kind is entryWhole for a scalar field value or entryElement for a
// scalar element of an array value, and each value is self-delimiting (see
// appendValue), so the entries for given values, restricted to ids with a
// given prefix, form one contiguous key range ordered by id. An index on
// several fields holds whole values only, and only for documents where each
// field is a scalar: it serves queries comparing every one of its fields
// with Eq, as a CouchDB index on several fields does. Entry values are
// empty.
//
// indexBucket's sequence holds the docs bucket's sequence as of the last
// write that maintained the indexes. A write made by a build of cmbs that
// predates indexes advances the docs sequence alone; Open sees the
// mismatch and rebuilds every index.
var (
	indexDefsBucket = []byte("indexes")
	indexKeysBucket = []byte("index-numbers")
	indexBucket     = []byte("index")
)

const (
	entryWhole   byte = 'v'
	entryElement byte = 'e'
)

// Tags of encoded values. Each tag fixes how the rest of the value is
// delimited: nothing follows null and booleans, eight bytes follow a number,
// a length follows a short string, a hash of fixed size a long one.
const (
	tagNull   byte = 'n'
	tagFalse  byte = 'f'
	tagTrue   byte = 't'
	tagNumber byte = 'd'
	tagString byte = 's'
	tagHashed byte = 'h'
	// tagTuple stands for the hash of the values of an index on several
	// fields when their encodings are too long to keep.
	tagTuple byte = 'H'
)

// maxInlineString is the longest string kept verbatim in an entry key;
// longer ones are keyed by their SHA-256, since keys are bounded and
// Find re-checks every candidate anyway.
const maxInlineString = 128

// maxValuesLen bounds the value part of an entry key: one encoded value
// fits, and longer tuples are hashed (see tagTuple).
const maxValuesLen = 1 + binary.MaxVarintLen64 + maxInlineString

// maxIDLen is the longest document id Put accepts: an entry key, the
// index number, the kind, the values and the id, must fit in a bbolt key.
const maxIDLen = bbolt.MaxKeySize - binary.MaxVarintLen64 - 1 - maxValuesLen

// indexDef is the stored form of a store.Index.
type indexDef struct {
	Fields [][]string `json:"fields"`
}

// keyed is one set of entries: the fields of the definitions that share
// it and the number its keys start with.
type keyed struct {
	fields [][]string
	name   []byte // JSON encoding of fields
	number []byte // uvarint
	// keys holds, for each field's first name, how a stored body may
	// write it as a key: "name": (see jsonStrings).
	keys map[string][][]byte
}

// keysOf returns how a stored body may write the object key name.
func (k keyed) keysOf(name string) [][]byte {
	if b, ok := k.keys[name]; ok {
		return b
	}
	return keyForms(name)
}

// keyForms are the ways a stored body may write the key name.
func keyForms(name string) [][]byte {
	forms := jsonStrings(name)
	for i := range forms {
		forms[i] = append(forms[i], ':')
	}
	return forms
}

// jsonStrings returns the ways encoding/json writes s as a JSON string:
// with HTML characters escaped (json.Marshal) and without (an Encoder told
// not to), the same bytes when s has none.
func jsonStrings(s string) [][]byte {
	escaped, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	plain, err := encodeJSON(s)
	if err != nil || bytes.Equal(plain, escaped) {
		return [][]byte{escaped}
	}
	return [][]byte{escaped, plain}
}

// indexSet is every distinct list of indexed fields, as of definitions
// generation gen.
type indexSet struct {
	gen    uint64
	all    []keyed
	byName map[string]bool
}

// loadIndexSet decodes the definitions in meta.
func loadIndexSet(meta *bbolt.Bucket) (*indexSet, error) {
	set := &indexSet{byName: map[string]bool{}}
	defs, numbers := meta.Bucket(indexDefsBucket), meta.Bucket(indexKeysBucket)
	set.gen = defs.Sequence()
	err := defs.ForEach(func(name, v []byte) error {
		var def indexDef
		if err := json.Unmarshal(v, &def); err != nil {
			return fmt.Errorf("index %q: corrupt definition: %w", name, err)
		}
		if err := checkFields(def.Fields); err != nil {
			return fmt.Errorf("index %q: corrupt definition: %w", name, err)
		}
		k, ok := set.add(def.Fields)
		if !ok {
			return nil
		}
		num := numbers.Get(k.name)
		if _, n := binary.Uvarint(num); n <= 0 || n != len(num) {
			return fmt.Errorf("index %q: no number for fields %s", name, k.name)
		}
		set.all[len(set.all)-1].number = bytes.Clone(num)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return set, nil
}

// add puts fields in the set unless they are there, and returns the entry
// set that was new, without its number, if any.
func (set *indexSet) add(fields [][]string) (keyed, bool) {
	name, err := json.Marshal(fields)
	if err != nil || set.byName[string(name)] {
		return keyed{}, false
	}
	set.byName[string(name)] = true
	k := keyed{fields: fields, name: name, keys: map[string][][]byte{}}
	for _, f := range fields {
		k.keys[f[0]] = keyForms(f[0])
	}
	set.all = append(set.all, k)
	return k, true
}

// indexes returns the index set committed as of tx, decoding the
// definitions only when they changed since the last call. It must not be
// called in a transaction that changes the definitions, since a rollback
// would leave the cache ahead of the file.
func (s *Store) indexes(tx *bbolt.Tx) (*indexSet, error) {
	meta := tx.Bucket(metaBucket)
	gen := meta.Bucket(indexDefsBucket).Sequence()
	if set := s.ixcache.Load(); set != nil && set.gen == gen {
		return set, nil
	}
	set, err := loadIndexSet(meta)
	if err != nil {
		return nil, err
	}
	s.ixcache.Store(set)
	return set, nil
}

// EnsureIndex records idx and builds its entries over the documents already
// stored, in one transaction; from then on every Put and Delete keeps it up
// to date in the transaction of the write. Ensuring an index that exists
// with the same fields is a no-op; one that exists with other fields fails
// with store.ErrConflict. A name, field list or field path that is empty
// fails with store.ErrInvalid.
//
// An index on one field serves Eq and Contains conditions on that field;
// an index on several serves queries with an Eq condition on each of them.
func (s *Store) EnsureIndex(ctx context.Context, idx store.Index) error {
	if err := checkIndex(idx); err != nil {
		return fmt.Errorf("bolt: ensure index %q: %w", idx.Name, err)
	}
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("bolt: ensure index %q: %w", idx.Name, err)
	}
	defer s.ops.Done()
	def, err := json.Marshal(indexDef{Fields: idx.Fields})
	if err != nil {
		return fmt.Errorf("bolt: ensure index %q: %w", idx.Name, err)
	}
	name := []byte(idx.Name)
	// Checked in a read transaction first, so that ensuring indexes that
	// exist, as every server start does, takes no write lock.
	var exists bool
	err = s.db.View(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(metaBucket).Bucket(indexDefsBucket).Get(name)
		exists = cur != nil
		return sameDef(cur, def)
	})
	if err == nil && !exists {
		err = s.db.Update(func(tx *bbolt.Tx) error {
			meta := tx.Bucket(metaBucket)
			defs := meta.Bucket(indexDefsBucket)
			if cur := defs.Get(name); cur != nil {
				return sameDef(cur, def)
			}
			set, err := loadIndexSet(meta)
			if err != nil {
				return err
			}
			if err := defs.Put(name, def); err != nil {
				return err
			}
			if _, err := defs.NextSequence(); err != nil {
				return err
			}
			k, fresh := set.add(idx.Fields)
			if !fresh {
				return nil
			}
			// A new number owns an empty key range, so the build
			// needs to delete nothing.
			numbers := meta.Bucket(indexKeysBucket)
			n, err := numbers.NextSequence()
			if err != nil {
				return err
			}
			k.number = binary.AppendUvarint(nil, n)
			if err := numbers.Put(k.name, k.number); err != nil {
				return err
			}
			return buildIndexes(ctx, tx, []keyed{k})
		})
	}
	if err != nil {
		return fmt.Errorf("bolt: ensure index %q: %w", idx.Name, err)
	}
	return nil
}

func checkIndex(idx store.Index) error {
	if idx.Name == "" {
		return fmt.Errorf("%w: index without a name", store.ErrInvalid)
	}
	return checkFields(idx.Fields)
}

func checkFields(fields [][]string) error {
	if len(fields) == 0 {
		return fmt.Errorf("%w: index without fields", store.ErrInvalid)
	}
	for i, f := range fields {
		if len(f) == 0 {
			return fmt.Errorf("%w: field %d has an empty path", store.ErrInvalid, i)
		}
	}
	return nil
}

// sameDef fails unless the stored definition cur, if any, is def.
func sameDef(cur, def []byte) error {
	if cur == nil || bytes.Equal(cur, def) {
		return nil
	}
	return fmt.Errorf("exists as %s, not %s: %w", cur, def, store.ErrConflict)
}

// buildIndexes writes the entries of ks for every document and marks the
// indexes current with the docs bucket. The key ranges of ks must be
// empty, and the other indexes current.
func buildIndexes(ctx context.Context, tx *bbolt.Tx, ks []keyed) error {
	entries := tx.Bucket(indexBucket)
	docs := tx.Bucket(docsBucket)
	n := 0
	err := docs.ForEach(func(id, v []byte) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		_, body, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%q: %w", id, err)
		}
		keys, err := indexEntries(body, ks)
		if err != nil {
			return fmt.Errorf("%q: %w", id, err)
		}
		for _, set := range keys {
			for _, e := range set {
				if err := entries.Put(slices.Concat(e, id), []byte{}); err != nil {
					return fmt.Errorf("%q: %w", id, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return entries.SetSequence(docs.Sequence())
}

// openIndexes prepares the index buckets when the file is opened, and
// rebuilds every index if a write bypassed them (see indexBucket). It
// reports whether it rebuilt.
func openIndexes(tx *bbolt.Tx) (rebuilt bool, err error) {
	meta := tx.Bucket(metaBucket)
	for _, name := range [][]byte{indexDefsBucket, indexKeysBucket} {
		if _, err := meta.CreateBucketIfNotExists(name); err != nil {
			return false, err
		}
	}
	entries, err := tx.CreateBucketIfNotExists(indexBucket)
	if err != nil {
		return false, err
	}
	set, err := loadIndexSet(meta)
	if err != nil {
		return false, err
	}
	if len(set.all) == 0 || entries.Sequence() == tx.Bucket(docsBucket).Sequence() {
		return false, nil
	}
	if err := tx.DeleteBucket(indexBucket); err != nil {
		return false, err
	}
	if _, err := tx.CreateBucket(indexBucket); err != nil {
		return false, err
	}
	return true, buildIndexes(context.Background(), tx, set.all)
}

// reindex brings the entries of document id from those of body old (nil
// when the document is new) to those of body cur (nil when it is deleted),
// and marks the indexes current with docs sequence seq. Entries that stay
// are not rewritten, so that they cost no page writes.
func reindex(tx *bbolt.Tx, set *indexSet, id, old, cur []byte, seq uint64) error {
	if len(set.all) == 0 {
		return nil
	}
	before, err := indexEntries(old, set.all)
	if err != nil {
		return fmt.Errorf("index stored body: %w", err)
	}
	after, err := indexEntries(cur, set.all)
	if err != nil {
		return fmt.Errorf("index body: %w", err)
	}
	entries := tx.Bucket(indexBucket)
	for i := range set.all {
		for _, e := range before[i] {
			if !containsKey(after[i], e) {
				if err := entries.Delete(slices.Concat(e, id)); err != nil {
					return err
				}
			}
		}
		for _, e := range after[i] {
			if !containsKey(before[i], e) {
				if err := entries.Put(slices.Concat(e, id), []byte{}); err != nil {
					return err
				}
			}
		}
	}
	return entries.SetSequence(seq)
}

func containsKey(keys [][]byte, k []byte) bool {
	return slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) })
}

// indexEntries returns, for each of ks, the distinct entry keys of body
// without the id. A nil body has none, nor has a body that names none of
// the indexed fields: that is told without decoding it (see mayIndex).
func indexEntries(body []byte, ks []keyed) ([][][]byte, error) {
	out := make([][][]byte, len(ks))
	if body == nil || !slices.ContainsFunc(ks, func(k keyed) bool { return mayIndex(body, k) }) {
		return out, nil
	}
	root, err := decodeMembers(body, firstNames(ks))
	if err != nil {
		return nil, err
	}
	return entriesOf(root, ks), nil
}

// firstNames lists the top-level keys the fields of ks start with.
func firstNames(ks []keyed) map[string]bool {
	names := map[string]bool{}
	for _, k := range ks {
		for _, f := range k.fields {
			names[f[0]] = true
		}
	}
	return names
}

// decodeMembers decodes, of the compact JSON object body, the members
// whose keys are in names, and skips the others without decoding them:
// index entries need a few fields of a document, not all of it.
func decodeMembers(body []byte, names map[string]bool) (map[string]any, error) {
	root := map[string]any{}
	err := eachMember(body, func(key string, value []byte) error {
		if !names[key] {
			return nil
		}
		v, err := decodeValue(value)
		if err != nil {
			return fmt.Errorf("member %q: %w", key, err)
		}
		root[key] = v
		return nil
	})
	return root, err
}

// decodeValue decodes one JSON value as json.Decoder with UseNumber does,
// without one for the scalars documents are mostly indexed by.
func decodeValue(value []byte) (any, error) {
	switch {
	case len(value) >= 2 && value[0] == '"' && bytes.IndexByte(value, '\\') < 0 && utf8.Valid(value):
		return string(value[1 : len(value)-1]), nil
	case string(value) == "true":
		return true, nil
	case string(value) == "false":
		return false, nil
	case string(value) == "null":
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// eachMember calls fn with the key and the raw value of each member of the
// compact JSON object body, in order.
func eachMember(body []byte, fn func(key string, value []byte) error) error {
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	i := 1
	for i < len(body) && body[i] != '}' {
		end := stringEnd(body, i)
		if end < 0 || end+1 >= len(body) || body[end+1] != ':' {
			return fmt.Errorf("malformed object at byte %d", i)
		}
		rawKey := body[i : end+1]
		key := string(rawKey[1 : len(rawKey)-1])
		if bytes.IndexByte(rawKey, '\\') >= 0 {
			if err := json.Unmarshal(rawKey, &key); err != nil {
				return fmt.Errorf("key at byte %d: %w", i, err)
			}
		}
		start := end + 2
		stop := valueEnd(body, start)
		if stop < 0 {
			return fmt.Errorf("malformed value at byte %d", start)
		}
		if err := fn(key, body[start:stop]); err != nil {
			return err
		}
		i = stop
		if i < len(body) && body[i] == ',' {
			i++
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the JSON string that
// starts at body[i], or -1.
func stringEnd(body []byte, i int) int {
	if i >= len(body) || body[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// valueEnd returns the index just past the compact JSON value starting at
// body[i], or -1.
func valueEnd(body []byte, i int) int {
	if i >= len(body) {
		return -1
	}
	switch body[i] {
	case '"':
		if e := stringEnd(body, i); e >= 0 {
			return e + 1
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(body); j++ {
			switch body[j] {
			case '"':
				if j = stringEnd(body, j); j < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // a number, true, false or null
		for j := i; j < len(body); j++ {
			if c := body[j]; c == ',' || c == '}' || c == ']' {
				return j
			}
		}
		return -1
	}
}

// entriesOf returns, for each of ks, the distinct entry keys of the
// decoded body root, without the id.
func entriesOf(root any, ks []keyed) [][][]byte {
	out := make([][][]byte, len(ks))
	for i, k := range ks {
		if len(k.fields) == 1 {
			out[i] = fieldEntries(root, k)
			continue
		}
		values := make([]any, len(k.fields))
		all := true
		for j, f := range k.fields {
			v, ok := store.Lookup(root, f)
			if !ok || !scalar(v) {
				all = false
				break
			}
			values[j] = v
		}
		if all {
			out[i] = [][]byte{entryKey(k.number, entryWhole, values...)}
		}
	}
	return out
}

// mayIndex reports whether body may have entries in k: it holds, as a key,
// the first name of each of k's fields. Bodies are stored compact, with
// only the escapes encoding/json writes (see prepare), where a key named n
// is written "n" (with its HTML characters escaped or not) followed by a
// colon, and where such bytes inside a string are escaped, so a body
// without them has no such key. Documents that no index concerns (an
// outbox entry, say) are then written without being decoded.
func mayIndex(body []byte, k keyed) bool {
	for _, f := range k.fields {
		if !containsAny(body, k.keysOf(f[0])) {
			return false
		}
	}
	return true
}

// containsAny reports whether body holds one of alts.
func containsAny(body []byte, alts [][]byte) bool {
	return slices.ContainsFunc(alts, func(a []byte) bool { return bytes.Contains(body, a) })
}

// fieldEntries returns the entries of k, an index on one field: one for a
// scalar value, one per distinct scalar element of an array.
func fieldEntries(root any, k keyed) [][]byte {
	v, ok := store.Lookup(root, k.fields[0])
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		if !scalar(v) {
			return nil
		}
		return [][]byte{entryKey(k.number, entryWhole, v)}
	}
	var out [][]byte
	for _, el := range arr {
		if !scalar(el) {
			continue
		}
		if e := entryKey(k.number, entryElement, el); !containsKey(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// scalar reports whether the decoded JSON value v is a string, number,
// boolean or null.
func scalar(v any) bool {
	switch v.(type) {
	case nil, bool, string, json.Number:
		return true
	default:
		return false
	}
}

// entryKey returns the key of an entry of index number for the scalar
// values, without the id: the number, the kind, then the values, hashed
// when too long to keep (tagTuple).
func entryKey(number []byte, kind byte, values ...any) []byte {
	var enc []byte
	for _, v := range values {
		enc = appendValue(enc, v)
	}
	key := append(slices.Clip(number), kind)
	if len(enc) > maxValuesLen {
		sum := sha256.Sum256(enc)
		return append(append(key, tagTuple), sum[:]...)
	}
	return append(key, enc...)
}

// appendValue appends the encoding of the decoded scalar v to dst. Values
// store.Match holds equal encode alike: numbers by their IEEE double, with
// -0 as 0, so 2, 2.0 and 2e0 share a key. The converse fails only for
// integers beyond 2^53, which share a double but not an identity; Find
// re-checks candidates with store.Match, so such a collision costs a read,
// never a wrong answer.
func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNull)
	case bool:
		if x {
			return append(dst, tagTrue)
		}
		return append(dst, tagFalse)
	case json.Number:
		// Out-of-range numbers parse to ±Inf or ±0 with an error, as
		// store.Match takes them; JSON numbers never fail otherwise.
		f, _ := strconv.ParseFloat(string(x), 64)
		if f == 0 {
			f = 0 // -0 → 0
		}
		dst = append(dst, tagNumber)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case string:
		if len(x) > maxInlineString {
			sum := sha256.Sum256([]byte(x))
			return append(append(dst, tagHashed), sum[:]...)
		}
		dst = append(dst, tagString)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		return append(dst, x...)
	default:
		panic(fmt.Sprintf("bolt: index value %T is not a scalar", v))
	}
}

// probe is one range of index entries that holds every document a
// query can match.
type probe struct {
	values int    // length of seek before the query prefix
	seek   []byte // number | kind | values | query prefix
}

// plan returns the index ranges Find may draw candidates from: for an
// index on one field, one per Eq or Contains condition on it with a scalar
// value; for an index on several, one when each field has an Eq condition
// with a scalar value. It returns none when the query has a condition
// store.Match would reject, so that the scan reports the error as before.
func plan(set *indexSet, q store.Query) []probe {
	if len(set.all) == 0 || !wellFormed(q.Where) {
		return nil
	}
	values := make([]any, len(q.Where))
	for i, c := range q.Where {
		if c.Op != store.Exists {
			values[i], _ = store.NormalizeValue(c.Value) // checked by wellFormed
		}
	}
	var probes []probe
	add := func(key []byte) {
		probes = append(probes, probe{values: len(key), seek: append(key, q.Prefix...)})
	}
	for _, k := range set.all {
		if len(k.fields) == 1 {
			for i, c := range q.Where {
				if c.Op == store.Exists || !scalar(values[i]) || !slices.Equal(c.Field, k.fields[0]) {
					continue
				}
				kind := entryWhole
				if c.Op == store.Contains {
					kind = entryElement
				}
				add(entryKey(k.number, kind, values[i]))
			}
			continue
		}
		tuple := make([]any, 0, len(k.fields))
		for _, f := range k.fields {
			for i, c := range q.Where {
				if c.Op == store.Eq && scalar(values[i]) && slices.Equal(c.Field, f) {
					tuple = append(tuple, values[i])
					break
				}
			}
		}
		if len(tuple) == len(k.fields) {
			add(entryKey(k.number, entryWhole, tuple...))
		}
	}
	return probes
}

// narrowest returns the probe with the fewest entries, counting all of
// them in step so that the cost is bounded by the smallest.
func narrowest(entries *bbolt.Bucket, probes []probe) probe {
	if len(probes) == 1 {
		return probes[0]
	}
	curs := make([]*bbolt.Cursor, len(probes))
	keys := make([][]byte, len(probes))
	for i, p := range probes {
		curs[i] = entries.Cursor()
		keys[i], _ = curs[i].Seek(p.seek)
	}
	for {
		for i, p := range probes {
			if !bytes.HasPrefix(keys[i], p.seek) {
				return p
			}
		}
		for i := range probes {
			keys[i], _ = curs[i].Next()
		}
	}
}

// findIndexed reads the candidates of the narrowest probe, in id order, and
// keeps those matching every condition.
func findIndexed(ctx context.Context, tx *bbolt.Tx, probes []probe, where []store.Cond) ([]store.Doc, error) {
	entries := tx.Bucket(indexBucket)
	p := narrowest(entries, probes)
	docs := tx.Bucket(docsBucket)
	var out []store.Doc
	c := entries.Cursor()
	for k, _ := c.Seek(p.seek); k != nil && bytes.HasPrefix(k, p.seek); k, _ = c.Next() {
		id := k[p.values:]
		v := docs.Get(id)
		if v == nil {
			return nil, fmt.Errorf("index names %q, which does not exist", id)
		}
		rev, body, err := decodeRecord(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", id, err)
		}
		ok, err := store.Match(body, where)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", id, err)
		}
		if ok {
			out = append(out, store.Doc{ID: string(id), Rev: rev, Body: bytes.Clone(body)})
		}
	}
	return out, ctx.Err()
}
