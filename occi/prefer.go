package occi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Preferences are what a client asks of an answer in the Prefer header
// (RFC 7240). cmbs knows one: wait=N, the seconds a client will wait for a
// result that the server would otherwise leave for later (an L1 reply).
type Preferences struct {
	// Wait is the wait=N preference, zero when absent.
	Wait time.Duration
}

type preferencesKey struct{}

// PreferencesOf returns the preferences of the request whose context ctx
// is; providers read them to decide how long they may hold an answer.
func PreferencesOf(ctx context.Context) Preferences {
	p, _ := ctx.Value(preferencesKey{}).(Preferences)
	return p
}

// withPreferences reads r's Prefer headers into its context. Preferences
// cmbs does not know, and malformed ones, are ignored, as RFC 7240 asks.
func withPreferences(r *http.Request) *http.Request {
	var p Preferences
	for _, h := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(h, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(pref), "=")
			// Parameters after ";" belong to the preference; wait has none.
			value, _, _ = strings.Cut(value, ";")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(value), `"`), 10, 32)
			if err == nil && n > 0 {
				p.Wait = time.Duration(n) * time.Second
			}
		}
	}
	if p == (Preferences{}) {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), preferencesKey{}, p))
}

// WaitApplied is the Preference-Applied value for a wait of d (whole
// seconds, rounded up).
func WaitApplied(d time.Duration) string {
	return fmt.Sprintf("wait=%d", int((d+time.Second-1)/time.Second))
}
