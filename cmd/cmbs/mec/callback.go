package mec

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/ops"
)

// maxNotice bounds a notification body.
const maxNotice = 64 << 10

// Handler serves the termination callback at CallbackPrefix+token and
// passes every other request to next. Mount it outside authentication:
// the platform has no credentials of cmbs's; the token stands for them.
func (l *Lifecycle) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, CallbackPrefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if rest != l.token {
			writeProblem(w, http.StatusNotFound, "no notification endpoint at "+r.URL.Path)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, http.StatusMethodNotAllowed, "notifications are POSTed")
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeProblem(w, http.StatusUnsupportedMediaType, "a notification is application/json")
			return
		}
		n, err := readNotice(r.Body)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		l.mu.Lock()
		repeated := l.noticed
		l.noticed = true
		l.mu.Unlock()
		if repeated {
			l.log.Info("MEC platform: termination notice repeated; already terminating")
		} else {
			l.notices <- n
		}
		// MEC notifications are acknowledged with 204 No Content; the
		// work happens after the answer.
		w.WriteHeader(http.StatusNoContent)
	})
}

// readNotice decodes and checks an AppTerminationNotification.
func readNotice(body io.Reader) (notice, error) {
	raw, err := io.ReadAll(io.LimitReader(body, maxNotice+1))
	if err != nil {
		return notice{}, fmt.Errorf("read the notification: %w", err)
	}
	if len(raw) > maxNotice {
		return notice{}, fmt.Errorf("notification larger than %d bytes", maxNotice)
	}
	var n appTerminationNotification
	if err := json.Unmarshal(raw, &n); err != nil {
		return notice{}, fmt.Errorf("not an AppTerminationNotification: %w", err)
	}
	switch {
	case n.NotificationType != notificationType:
		return notice{}, fmt.Errorf("notificationType %q is not %s", n.NotificationType, notificationType)
	case n.OperationAction != actionTerminating && n.OperationAction != actionStopping:
		return notice{}, fmt.Errorf("operationAction %q is not %s or %s", n.OperationAction, actionTerminating, actionStopping)
	case n.MaxGracefulTimeout == nil || *n.MaxGracefulTimeout < 0:
		return notice{}, fmt.Errorf("maxGracefulTimeout must be a number of seconds, 0 or more")
	case n.Links == nil:
		return notice{}, fmt.Errorf("_links is required")
	}
	return notice{action: n.OperationAction, graceful: time.Duration(*n.MaxGracefulTimeout) * time.Second, received: time.Now()}, nil
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemDetails{Title: http.StatusText(status), Status: status, Detail: detail})
}

// Probe is the readiness check of the life cycle: failing until the
// services are registered, and again once the application terminates.
func (l *Lifecycle) Probe() ops.Probe {
	return func(context.Context) []ops.Check {
		l.mu.Lock()
		defer l.mu.Unlock()
		c := ops.Check{Name: "mec", Detail: fmt.Sprintf("application instance %s on %s: %s", l.mec.AppInstanceID, l.mec.Platform, l.state)}
		if l.state == stateRegistered {
			c.State = ops.StateOK
			return []ops.Check{c}
		}
		c.State = ops.StateFailing
		switch {
		case l.state == stateStarting && l.lastErr != nil:
			c.Error = "not registered yet: " + l.lastErr.Error()
		case l.state == stateStarting:
			c.Error = "not registered yet"
		case l.lastErr != nil:
			c.Error = l.lastErr.Error()
		default:
			c.Error = l.state
		}
		return []ops.Check{c}
	}
}
