package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/store"
)

// Check states.
const (
	StateOK      = "ok"
	StateFailing = "failing"
)

// Check is one readiness condition as /health/ready reports it.
type Check struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Detail says what was checked; Error why it failed.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Report is the body of /health/ready (and, with no checks, of
// /health/alive).
type Report struct {
	// Status is "alive", "ready" or "not ready".
	Status string  `json:"status"`
	Checks []Check `json:"checks,omitempty"`
}

// Probe evaluates readiness conditions. It must return when ctx ends.
type Probe func(ctx context.Context) []Check

// ProbeDocID is the id of the document the store probe writes for host:
// one per server, so replicas sharing a CouchDB do not contend for it.
func ProbeDocID(host string) string { return "health:probe:" + host }

// StoreProbe checks that st answers and accepts writes by rewriting one
// document, id, at each evaluation: reads alone would not notice a store
// that has turned read-only or full.
func StoreProbe(st store.Store, id string) Probe {
	return func(ctx context.Context) []Check {
		c := Check{Name: "store", Detail: "read and write " + id}
		if err := touch(ctx, st, id); err != nil {
			c.State, c.Error = StateFailing, err.Error()
		} else {
			c.State = StateOK
		}
		return []Check{c}
	}
}

// probeBody is the probe document's content.
type probeBody struct {
	Doc     string `json:"doc"`
	Checked string `json:"checked"`
}

// touch writes the probe document, creating it the first time. A conflict
// means another evaluation wrote in between; one more round settles it.
func touch(ctx context.Context, st store.Store, id string) error {
	body, err := json.Marshal(probeBody{Doc: "health-probe", Checked: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		rev := ""
		switch cur, err := st.Get(ctx, id); {
		case err == nil:
			rev = cur.Rev
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("read: %w", err)
		}
		_, err = st.Put(ctx, store.Doc{ID: id, Rev: rev, Body: body})
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	}
}

// BrokerProbe reports b.Ready's checks.
func BrokerProbe(b *broker.Broker) Probe {
	return func(ctx context.Context) []Check {
		var out []Check
		for _, c := range b.Ready(ctx) {
			check := Check{Name: c.Name, State: StateOK, Detail: c.Detail}
			if c.Err != nil {
				check.State, check.Error = StateFailing, c.Err.Error()
			}
			out = append(out, check)
		}
		return out
	}
}

// health serves the probes.
type health struct {
	probes  []Probe
	timeout time.Duration
}

// alive answers 200 whenever the process serves HTTP: a liveness probe
// must not fail because a dependency did, or the orchestrator restarts a
// server that would recover by itself.
func (h *health) alive(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	writeReport(w, r, http.StatusOK, Report{Status: "alive"})
}

// ready runs every probe concurrently within the timeout and answers 503
// when any check fails.
func (h *health) ready(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	results := make([][]Check, len(h.probes))
	var wg sync.WaitGroup
	for i, p := range h.probes {
		wg.Go(func() { results[i] = p(ctx) })
	}
	wg.Wait()
	rep := Report{Status: "ready", Checks: []Check{}}
	status := http.StatusOK
	for _, cs := range results {
		for _, c := range cs {
			if c.State != StateOK {
				rep.Status, status = "not ready", http.StatusServiceUnavailable
			}
			rep.Checks = append(rep.Checks, c)
		}
	}
	writeReport(w, r, status, rep)
}

func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeReport(w http.ResponseWriter, r *http.Request, status int, rep Report) {
	body, err := json.Marshal(rep)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		// An error here means the prober hung up; it gets no answer either way.
		_, _ = w.Write(append(body, '\n'))
	}
}
