package keys

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultRecheck is how often a Trust looks at its file again.
const DefaultRecheck = time.Second

// Trust is the set of public keys a trusted-keys file lists. It looks at
// the file again when it is asked and the last look is older than its
// recheck interval, and takes the new keys if the file's content changed,
// so adding or removing a key needs no restart. A file that no longer
// reads or parses leaves the keys as they were, and says why in the log.
//
// It starts no goroutine: the reading happens in the callers' (ZAP
// handlers, request handlers), at most once per interval, while the others
// keep answering from the keys read last.
type Trust struct {
	path    string
	recheck time.Duration
	log     logrus.FieldLogger
	now     func() time.Time

	snap    atomic.Pointer[trustSnapshot]
	checked atomic.Int64 // unix nanoseconds of the last look at the file
	mu      sync.Mutex   // one look at a time; callers that find it taken go on
	lastErr string       // the latest failure logged, under mu: each is logged once
}

type trustSnapshot struct {
	raw     []byte
	keys    []string
	comment map[string]string
}

// OpenTrust reads the trusted-keys file at path, which must exist and
// parse. recheck is how often it is looked at again (DefaultRecheck when
// zero or less); log hears of reloads and of files that no longer parse.
func OpenTrust(path string, recheck time.Duration, log logrus.FieldLogger) (*Trust, error) {
	if recheck <= 0 {
		recheck = DefaultRecheck
	}
	t := &Trust{path: path, recheck: recheck, log: log, now: time.Now}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	snap, err := parseSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("trusted keys %s: %w", path, err)
	}
	t.snap.Store(snap)
	t.checked.Store(t.now().UnixNano())
	return t, nil
}

func parseSnapshot(data []byte) (*trustSnapshot, error) {
	keys, err := ParseTrusted(data)
	if err != nil {
		return nil, err
	}
	s := &trustSnapshot{raw: data, comment: map[string]string{}}
	for _, k := range keys {
		s.keys = append(s.keys, k.Key)
		s.comment[k.Key] = k.Comment
	}
	return s, nil
}

// Path is the file the keys come from.
func (t *Trust) Path() string { return t.path }

// Trusted reports whether key is listed.
func (t *Trust) Trusted(key string) bool {
	_, ok := t.current().comment[key]
	return ok
}

// Comment is the comment key is listed with.
func (t *Trust) Comment(key string) string { return t.current().comment[key] }

// Keys lists the keys in the file's order.
func (t *Trust) Keys() []string { return append([]string(nil), t.current().keys...) }

// current returns the keys, looking at the file first when it is time.
func (t *Trust) current() *trustSnapshot {
	now := t.now()
	if now.UnixNano()-t.checked.Load() >= int64(t.recheck) && t.mu.TryLock() {
		// A failure is logged by reload, and the keys read before stay.
		_ = t.reload(now)
		t.mu.Unlock()
	}
	return t.snap.Load()
}

// Reload looks at the file now, whatever the interval, and reports an
// error if it does not read or parse (the keys stay as they were).
func (t *Trust) Reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reload(t.now())
}

func (t *Trust) reload(now time.Time) error {
	t.checked.Store(now.UnixNano())
	old := t.snap.Load()
	data, err := os.ReadFile(t.path)
	if err == nil && bytes.Equal(data, old.raw) {
		return nil
	}
	var snap *trustSnapshot
	if err == nil {
		snap, err = parseSnapshot(data)
	}
	if err != nil {
		err = fmt.Errorf("trusted keys %s: %w", t.path, err)
		if t.log != nil && err.Error() != t.lastErr {
			t.log.WithError(err).Error("trusted keys not reloaded; the keys read before still apply")
		}
		t.lastErr = err.Error()
		// Remember the content, so one bad version is reported once.
		if data != nil {
			stale := *old
			stale.raw = data
			t.snap.Store(&stale)
		}
		return err
	}
	t.snap.Store(snap)
	t.lastErr = ""
	if t.log != nil {
		added, removed := diff(old.comment, snap.comment), diff(snap.comment, old.comment)
		t.log.WithFields(logrus.Fields{"file": t.path, "keys": len(snap.keys), "added": added, "removed": removed}).
			Info("trusted keys reloaded")
	}
	return nil
}

// diff counts the keys of b that a lacks.
func diff(a, b map[string]string) int {
	n := 0
	for k := range b {
		if _, ok := a[k]; !ok {
			n++
		}
	}
	return n
}
