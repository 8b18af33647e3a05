package cmbstest

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of reporting
// them; Fatalf ends the goroutine, as testing's does.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, so Fatalf's
// Goexit ends that goroutine and not the test's, and reports whether f
// returned.
func run(f func(tb testing.TB)) (r *recorder, returned bool) {
	r = &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
		returned = true
	}()
	<-done
	return r, returned
}

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	r, returned := run(func(tb testing.TB) {
		Eventually(tb, "the third call", func() bool { return calls.Add(1) == 3 })
	})
	if !returned || len(r.fatals) != 0 || calls.Load() != 3 {
		t.Fatalf("returned %v after %d calls, failures %q", returned, calls.Load(), r.fatals)
	}
}

func TestEventuallyWithinFailsFatally(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r, returned := run(func(tb testing.TB) {
		EventuallyWithin(tb, 50*time.Millisecond, "nothing", func() bool { return false })
	})
	if returned {
		t.Fatal("EventuallyWithin returned after its deadline; want it to stop the test")
	}
	want := "timed out after 50ms waiting for nothing"
	if len(r.fatals) != 1 || r.fatals[0] != want {
		t.Fatalf("failures %q, want [%q]", r.fatals, want)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before its deadline", took)
	}
}

func TestNoError(t *testing.T) {
	t.Parallel()
	r, _ := run(func(tb testing.TB) {
		NoError(tb, func() error { return nil })
		NoError(tb, func() error { return errors.New("close: broken pipe") })
	})
	if len(r.errors) != 1 || r.errors[0] != "close: broken pipe" || len(r.fatals) != 0 {
		t.Fatalf("errors %q, fatals %q; want one error for the failed call", r.errors, r.fatals)
	}
}
