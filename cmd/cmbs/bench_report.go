package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/houssem/cmbs/cmd/cmbs/cli"
)

// benchResult is what cmbs bench measured; -o json prints it as is.
type benchResult struct {
	Layer string `json:"layer"`
	// Target is the server's URL, or "embedded".
	Target     string   `json:"target"`
	From       string   `json:"from"`
	To         []string `json:"to"`
	Run        string   `json:"run"`
	Count      int      `json:"count"`
	Publishers int      `json:"publishers"`
	Batch      int      `json:"batch"`
	Size       int      `json:"size"`
	Requests   int      `json:"requests"`
	// Accepted messages were created (201); Delivered ones reached every
	// destination; Undelivered ones failed or expired at one at least;
	// Pending ones were still on their way when --timeout ended the wait.
	Accepted    int `json:"accepted"`
	Delivered   int `json:"delivered"`
	Undelivered int `json:"undelivered"`
	Pending     int `json:"pending"`
	// Destinations is how many members each message went to.
	Destinations int `json:"destinations"`
	// SendSeconds runs from the first request to the last answer;
	// DeliverSeconds from the first request to the last outcome recorded.
	SendSeconds         float64      `json:"send_seconds"`
	DeliverSeconds      float64      `json:"deliver_seconds"`
	AcceptedMsgsPerSec  float64      `json:"accepted_msgs_per_sec"`
	DeliveredMsgsPerSec float64      `json:"delivered_msgs_per_sec"`
	AcceptedMBPerSec    float64      `json:"accepted_mb_per_sec"`
	DeliveredMBPerSec   float64      `json:"delivered_mb_per_sec"`
	Latency             latencyStats `json:"latency"`
}

// latencyStats are latency percentiles, in milliseconds.
type latencyStats struct {
	// Source is "delivery" (each message's delivery, started to finished)
	// or "request" (l1: each request's round trip).
	Source string `json:"source"`
	// Samples is how many latencies the percentiles come from, Of how
	// many messages.
	Samples int     `json:"samples"`
	Of      int     `json:"of"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// rates fills in the per-second figures. MB are 10^6 bytes of content.
func (r *benchResult) rates() {
	per := func(n int, seconds float64) float64 {
		if seconds <= 0 {
			return 0
		}
		return float64(n) / seconds
	}
	r.AcceptedMsgsPerSec = per(r.Accepted, r.SendSeconds)
	r.DeliveredMsgsPerSec = per(r.Delivered, r.DeliverSeconds)
	r.AcceptedMBPerSec = r.AcceptedMsgsPerSec * float64(r.Size) / 1e6
	r.DeliveredMBPerSec = r.DeliveredMsgsPerSec * float64(r.Size) / 1e6
}

// percentiles summarises latencies by nearest rank.
func percentiles(source string, d []time.Duration, of int) latencyStats {
	s := latencyStats{Source: source, Samples: len(d), Of: of}
	if len(d) == 0 {
		return s
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
		return ms(sorted[min(max(i, 0), len(sorted)-1)])
	}
	s.P50, s.P90, s.P99, s.Max = at(50), at(90), at(99), ms(sorted[len(sorted)-1])
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeBenchJSON(w io.Writer, r *benchResult) error {
	if r.To == nil {
		r.To = []string{}
	}
	return cli.WriteValue(w, r)
}

// writeBenchText prints the result as nats bench does: what ran, then one
// line per figure.
func writeBenchText(w io.Writer, r *benchResult) {
	where := "server " + r.Target
	if r.Target == "embedded" {
		where = "two embedded members"
	}
	per := fmt.Sprintf("%d per request", r.Batch)
	if r.Layer == "l1" {
		per = "1 per request, Prefer: wait"
	}
	fmt.Fprintf(w, "cmbs bench %s: %d messages of %d B, %d publishers, %s; %s, %s → %s\n",
		r.Layer, r.Count, r.Size, r.Publishers, per, where, r.From, strings.Join(r.To, ", "))
	t := cli.NewTable(w)
	t.Row("accepted", fmt.Sprintf("%d msgs", r.Accepted), "in "+seconds(r.SendSeconds),
		fmt.Sprintf("%.0f msgs/s", r.AcceptedMsgsPerSec), fmt.Sprintf("%.2f MB/s", r.AcceptedMBPerSec))
	t.Row("delivered", fmt.Sprintf("%d msgs", r.Delivered), "in "+seconds(r.DeliverSeconds),
		fmt.Sprintf("%.0f msgs/s", r.DeliveredMsgsPerSec), fmt.Sprintf("%.2f MB/s", r.DeliveredMBPerSec))
	_ = t.Flush() // a write error shows on the next line's
	if r.Undelivered > 0 || r.Pending > 0 {
		fmt.Fprintf(w, "not delivered: %d failed or expired, %d still pending\n", r.Undelivered, r.Pending)
	}
	l := r.Latency
	what := fmt.Sprintf("delivery started→finished, %d of %d messages sampled, %d %s each", l.Samples, l.Of, r.Destinations, plural(r.Destinations, "destination", "destinations"))
	if l.Source == "request" {
		what = fmt.Sprintf("request round trips, %d requests", l.Samples)
	}
	fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  max %s  (%s)\n",
		msText(l.P50), msText(l.P90), msText(l.P99), msText(l.Max), what)
}

func seconds(s float64) string { return fmt.Sprintf("%.2fs", s) }

// msText prints milliseconds with three significant digits.
func msText(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// benchProgress shows a run's progress on standard error: a bar redrawn
// in place on a terminal, a plain line a second otherwise.
type benchProgress struct {
	a         *app
	total     int
	accepted  *atomic.Int64
	settled   *atomic.Int64
	terminal  bool
	start     time.Time
	mu        sync.Mutex
	name      string
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
	drawnOnce bool
	last      time.Time
}

// startBenchProgress starts showing progress until stop.
func (a *app) startBenchProgress(ctx context.Context, total int, accepted, settled *atomic.Int64) *benchProgress {
	ctx, cancel := context.WithCancel(ctx)
	p := &benchProgress{a: a, total: total, accepted: accepted, settled: settled, terminal: a.isTerminal(a.stderr),
		start: time.Now(), name: "sending", cancel: cancel, done: make(chan struct{})}
	every := time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				p.draw(false)
			}
		}
	}()
	return p
}

// phase names what the run does now.
func (p *benchProgress) phase(name string) {
	p.mu.Lock()
	p.name = name
	p.mu.Unlock()
	p.draw(true)
}

// draw shows the progress once; a plain line only when forced (a new
// phase) or a second after the last.
func (p *benchProgress) draw(force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.terminal && !force && time.Since(p.last) < 900*time.Millisecond {
		return
	}
	p.last = time.Now()
	accepted, settled := int(p.accepted.Load()), int(p.settled.Load())
	done := "? done" // the server does not count them
	if settled >= 0 {
		done = fmt.Sprintf("%d done", settled)
	}
	elapsed := time.Since(p.start).Seconds()
	if !p.terminal {
		fmt.Fprintf(p.a.stderr, "bench: %s: %d/%d accepted, %s (%.1fs)\n", p.name, accepted, p.total, done, elapsed)
		return
	}
	shown := accepted
	if p.name != "sending" {
		shown = max(settled, 0)
	}
	const width = 30
	filled := min(width, shown*width/max(p.total, 1))
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.a.stderr, "\r\033[K%-10s [%s] %d/%d accepted, %s  %.1fs", p.name, bar, accepted, p.total, done, elapsed)
	p.drawnOnce = true
}

// stop ends the display, clearing the bar on a terminal.
func (p *benchProgress) stop() {
	p.stopOnce.Do(func() {
		p.cancel()
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.terminal && p.drawnOnce {
			fmt.Fprint(p.a.stderr, "\r\033[K")
		}
	})
}
