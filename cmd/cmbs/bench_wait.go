package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// Waiting for outcomes. The sender records a message's delivery as done
// once every destination has a final status; the bench is over when all
// of its messages are. Reading every message back would load the server
// it measures, so the wait watches the server's count of deliveries done
// (cmbs_layer_delivery_duration_seconds_count, on /metrics), which costs
// nothing per message, and confirms with filtered listings of the run's
// messages (by their title) when that count says all are done, or, for a
// server without the metric, every few seconds.

// metricsPath is where a cmbs server exposes Prometheus metrics.
const metricsPath = "/metrics"

// deliveryMeter reads how many sends on one layer the server has seen
// done since the run began.
type deliveryMeter struct {
	client *cli.Client
	series string
	base   float64
	ok     bool
}

func newDeliveryMeter(client *cli.Client, l api.Layer) *deliveryMeter {
	return &deliveryMeter{client: client, series: `cmbs_layer_delivery_duration_seconds_count{layer="` + string(l) + `"}`}
}

// read returns the series' value now; false when the server does not
// expose it.
func (m *deliveryMeter) read(ctx context.Context) (float64, bool) {
	res, err := m.client.Do(ctx, http.MethodGet, metricsPath, nil)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(res.Body))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), m.series)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		return v, err == nil
	}
	return 0, false
}

// baseline notes the count before the run.
func (m *deliveryMeter) baseline(ctx context.Context) { m.base, m.ok = m.read(ctx) }

// done returns the sends done since the baseline (the run's, and any other
// traffic's); false when unknown.
func (m *deliveryMeter) done(ctx context.Context) (int, bool) {
	if !m.ok {
		return 0, false
	}
	v, ok := m.read(ctx)
	if !ok {
		return 0, false
	}
	return int(v - m.base), true
}

// awaitOutcomes waits until every accepted message's outcome is recorded,
// or --timeout passes, and counts the messages delivered.
func (r *benchRun) awaitOutcomes(ctx context.Context, m *deliveryMeter, accepted int) (benchOutcome, error) {
	if err := r.checkDestinations(ctx); err != nil {
		return benchOutcome{}, err
	}
	deadline := time.Now().Add(r.o.timeout)
	start := time.Now()
	var lastCheck time.Time
	checkEvery := time.Second
	for {
		now := time.Now()
		n, metered := m.done(ctx)
		if metered {
			r.settled.Store(int64(min(n, accepted)))
		}
		final := now.After(deadline)
		if final || ((!metered || n >= accepted) && now.Sub(lastCheck) >= checkEvery) {
			out, done, err := r.verify(ctx, accepted, metered && n >= accepted, final)
			if err != nil {
				return benchOutcome{}, err
			}
			if done || final {
				out.at = now
				return out, nil
			}
			// The count ran ahead (other traffic), or there is none:
			// look again later, the more rarely the dearer a look is.
			lastCheck = time.Now()
			checkEvery = max(time.Second, 3*lastCheck.Sub(now))
		}
		// Poll often enough that the end is known to within about 1% of
		// the run.
		interval := min(max(time.Since(start)/100, 10*time.Millisecond), 250*time.Millisecond)
		select {
		case <-ctx.Done():
			return benchOutcome{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// checkDestinations reads how many destinations the first message has:
// every message of the run has the same. It fails a run whose messages go
// to nobody, as when no member matches their topics: they would count as
// done at once.
func (r *benchRun) checkDestinations(ctx context.Context) error {
	for _, p := range r.paths {
		if p == "" {
			continue
		}
		msg, _, err := r.client.Get(ctx, p)
		if err != nil {
			return err
		}
		d, err := cli.DeliveryOf(msg)
		if err != nil {
			return err
		}
		if d == nil || len(d.Destinations) == 0 {
			note := "no delivery recorded"
			if d != nil && d.Note != "" {
				note = d.Note
			}
			return fmt.Errorf("the messages reach no member (%s): %s", msg.ID, note)
		}
		r.destinations = len(d.Destinations)
		return nil
	}
	return nil
}

// verify counts the run's messages delivered to every destination, and
// those still pending: done when none is. Each count reads every message
// of the run on the server, but a look for pending messages that is not
// final stops at the first. likelyDone says the server's count of
// deliveries done suggests all are: the delivered count, which then
// usually settles it, comes first.
func (r *benchRun) verify(ctx context.Context, accepted int, likelyDone, final bool) (benchOutcome, bool, error) {
	// Every message has the same destinations: those delivered to all of
	// them are the ones whose delivered count is that many.
	delivered := func() (int, error) {
		return r.countMessages(ctx, map[string]any{"delivered": r.destinations}, 0)
	}
	var out benchOutcome
	var err error
	if likelyDone && !final {
		if out.delivered, err = delivered(); err != nil || out.delivered == accepted {
			return out, err == nil, err
		}
	}
	limit := 1
	if final {
		limit = 0
	}
	if out.pending, err = r.countMessages(ctx, map[string]any{"state": api.DeliveryPending}, limit); err != nil {
		return out, false, err
	}
	if out.pending > 0 && !final {
		return out, false, nil
	}
	if !likelyDone || final {
		if out.delivered, err = delivered(); err != nil {
			return out, false, err
		}
	}
	return out, out.pending == 0, nil
}

// pageLimit is the page size of the counting listings; the server caps
// it at its max_page_limit.
const pageLimit = 5000

// countMessages counts the run's messages whose delivery has the value
// given, following the server's pages; limit > 0 stops once it is reached.
// The filter names one value of the delivery only: the server fingerprints
// a filter to check that a page continues it, and conditions on several
// attributes come in no fixed order.
func (r *benchRun) countMessages(ctx context.Context, delivery map[string]any, limit int) (int, error) {
	filter, err := json.Marshal(map[string]any{"resources": []any{map[string]any{
		"kind": api.MessageKind, "title": r.plan.title(),
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{"delivery": delivery}}},
	}}})
	if err != nil {
		return 0, err
	}
	n := 0
	page := pageLimit
	if limit > 0 {
		page = min(limit, pageLimit)
	}
	for next := api.MessageLocation + "?limit=" + strconv.Itoa(page); next != ""; {
		res, err := r.client.DoRaw(ctx, http.MethodGet, next, bytes.NewReader(filter))
		if err != nil {
			return 0, fmt.Errorf("counting the run's messages: %w", err)
		}
		var l cli.Locations
		if err := res.Decode(&l); err != nil {
			return 0, err
		}
		n += len(l.Paths())
		if limit > 0 && n >= limit {
			return n, nil
		}
		next = cli.NextPage(res.Header)
	}
	return n, nil
}

// latencies returns the latency percentiles and the destinations per
// message: for l1 from the requests' round trips; otherwise from each
// message's delivery, started to finished, read from up to --samples
// messages spread evenly over the run.
func (r *benchRun) latencies(ctx context.Context) (latencyStats, int, error) {
	var accepted []int
	for i, p := range r.paths {
		if p != "" {
			accepted = append(accepted, i)
		}
	}
	if r.plan.layer == api.L1 {
		d := make([]time.Duration, 0, len(accepted))
		for _, i := range accepted {
			d = append(d, r.rtt[i])
		}
		return percentiles("request", d, len(accepted)), 1, nil
	}
	k := min(r.o.samples, len(accepted))
	picks := make([]string, k)
	for j := range k {
		picks[j] = r.paths[accepted[j*len(accepted)/k]]
	}
	var (
		mu      sync.Mutex
		samples []time.Duration
		dests   int
		failed  error
		wg      sync.WaitGroup
		next    = make(chan string)
	)
	for range min(r.o.publishers, 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				d, n, err := r.deliveryTime(ctx, p)
				mu.Lock()
				switch {
				case err != nil && failed == nil:
					failed = err
				case err == nil && n > 0:
					samples = append(samples, d)
					dests = max(dests, n)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range picks {
		next <- p
	}
	close(next)
	wg.Wait()
	if failed != nil {
		return latencyStats{}, 0, failed
	}
	return percentiles("delivery", samples, len(accepted)), dests, nil
}

// deliveryTime reads a message's delivery: how long it took from started
// to finished, and to how many destinations; none when it is not done.
func (r *benchRun) deliveryTime(ctx context.Context, path string) (time.Duration, int, error) {
	msg, _, err := r.client.Get(ctx, path)
	if err != nil {
		return 0, 0, err
	}
	d, err := cli.DeliveryOf(msg)
	if err != nil || !d.Done() {
		return 0, 0, err
	}
	started, err1 := time.Parse(time.RFC3339Nano, d.Started)
	finished, err2 := time.Parse(time.RFC3339Nano, d.Finished)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("message %s: delivery started %q, finished %q: not RFC 3339 times", msg.ID, d.Started, d.Finished)
	}
	return finished.Sub(started), len(d.Destinations), nil
}

// jsonBody encodes v for a request.
func jsonBody(v any) (io.Reader, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(raw), nil
}
