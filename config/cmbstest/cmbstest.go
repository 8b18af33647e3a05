// Package cmbstest holds the checks that every package's tests share:
// waiting, with a deadline, for something that happens in the background,
// and checking the error of a deferred Close.
//
// It imports nothing of cmbs, so the tests of any package may use it
// without bending the import rules (layers never reach occi or store, store
// reaches none of the others). It lives under config/ because that folder,
// like cmbstest, sits at the bottom of the import graph: nothing in it
// belongs to a layer.
package cmbstest

import (
	"testing"
	"time"
)

// Patience is how long Eventually waits before failing a test: long enough
// for a loaded machine running the race detector, where a condition that
// takes milliseconds alone can take seconds.
const Patience = 20 * time.Second

// poll is how often Eventually checks its condition.
const poll = 10 * time.Millisecond

// Eventually checks cond every few milliseconds until it holds and fails t
// at once (t.Fatalf) when it still does not after Patience; what says what
// was awaited, for the failure message. Call it from the test's goroutine,
// as t.Fatalf requires.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Patience, what, cond)
}

// EventuallyWithin is Eventually with a deadline of its own, for a test
// that bounds how long something may take.
func EventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(poll)
	}
}

// NoError calls f and fails t (t.Errorf) when it returns an error. It is
// for closing what a test opened, where the error would otherwise go
// unseen:
//
//	defer cmbstest.NoError(t, st.Close)
//	t.Cleanup(func() { cmbstest.NoError(t, resp.Body.Close) })
func NoError(t testing.TB, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Errorf("%v", err)
	}
}
