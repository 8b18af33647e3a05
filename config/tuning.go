package config

import (
	"time"

	"github.com/spf13/pflag"
)

// The delivery, liveness and notifications sections tune the broker and
// its notifier. Their defaults are the packages' own (broker.Default*,
// notify.Default*): config does not import them, and a test of cmd/cmbs,
// which imports both, keeps the two in step.

// Delivery is the delivery section: how the outbox reaches other members,
// and how long requests between members wait.
type Delivery struct {
	// Window bounds the entries in flight to one peer on one layer, sent
	// in batches of at most Batch.
	Window int `yaml:"window" json:"window"`
	Batch  int `yaml:"batch" json:"batch"`
	// AckTimeout is how long a peer may leave a batch unanswered before
	// the connection counts as broken and the batch is sent again.
	AckTimeout time.Duration `yaml:"ack_timeout" json:"ack_timeout"`
	// RetryMin and RetryMax bound the backoff between attempts to reach a
	// peer.
	RetryMin time.Duration `yaml:"retry_min" json:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max" json:"retry_max"`
	// Expiry is how long a message that sets no cmbs.message.expires is
	// retried.
	Expiry time.Duration `yaml:"expiry" json:"expiry"`
	// MaxWait caps the wait a client may ask for with Prefer: wait.
	MaxWait time.Duration `yaml:"max_wait" json:"max_wait"`
}

// Liveness is the liveness section: heartbeats between neighbours,
// discovery and forgetting members without a route.
type Liveness struct {
	// HeartbeatInterval is how often the local member exchanges routes
	// with its direct neighbours; one silent for three is down. Zero
	// turns liveness off, and with it DiscoveryInterval and ForgetAfter:
	// routes then change only with check_neighbors.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	// DiscoveryInterval is how often a full check_neighbors runs.
	DiscoveryInterval time.Duration `yaml:"discovery_interval" json:"discovery_interval"`
	// DiscoveryTimeout bounds one attempt of a discovery request to
	// another member (check_neighbors, whether periodic or asked for, and
	// with curve the probe for a peer's key), and DiscoveryAttempts is
	// how many are made. Deliveries have Delivery.AckTimeout, heartbeats
	// their interval.
	DiscoveryTimeout  time.Duration `yaml:"discovery_timeout" json:"discovery_timeout"`
	DiscoveryAttempts int           `yaml:"discovery_attempts" json:"discovery_attempts"`
	// ForgetAfter is how long a member without a route is kept before its
	// record is deleted.
	ForgetAfter time.Duration `yaml:"forget_after" json:"forget_after"`
}

// Enabled reports whether heartbeats run.
func (l Liveness) Enabled() bool { return l.HeartbeatInterval > 0 }

// Notifications is the notifications section: subscription callbacks and
// the /events stream.
type Notifications struct {
	// CallbackTimeout bounds one callback request, redirects counting as
	// failures.
	CallbackTimeout time.Duration `yaml:"callback_timeout" json:"callback_timeout"`
	// RetryAttempts bounds the tries of one event, the first included;
	// the pause before the second is RetryInitial, doubling up to
	// RetryMax.
	RetryAttempts int           `yaml:"retry_attempts" json:"retry_attempts"`
	RetryInitial  time.Duration `yaml:"retry_initial" json:"retry_initial"`
	RetryMax      time.Duration `yaml:"retry_max" json:"retry_max"`
	// QueueSize bounds each subscription's waiting events; more are
	// dropped and counted.
	QueueSize int `yaml:"queue_size" json:"queue_size"`
	// StreamBuffer bounds each /events client's waiting events; a client
	// that lets it fill is disconnected. StreamWriteWait is how long a
	// write to one may block before it counts as gone.
	StreamBuffer    int           `yaml:"stream_buffer" json:"stream_buffer"`
	StreamWriteWait time.Duration `yaml:"stream_write_wait" json:"stream_write_wait"`
	// History is how many recent events are kept for /events clients that
	// resume with Last-Event-ID, and HistoryBytes about how much memory
	// they may take in all; the oldest go first.
	History      int `yaml:"history" json:"history"`
	HistoryBytes int `yaml:"history_bytes" json:"history_bytes"`
	// StatusInterval is how often, at most, a busy subscription's
	// counters are written to the store.
	StatusInterval time.Duration `yaml:"status_interval" json:"status_interval"`
}

func defaultDelivery() Delivery {
	return Delivery{
		Window:     256,
		Batch:      64,
		AckTimeout: 10 * time.Second,
		RetryMin:   100 * time.Millisecond,
		RetryMax:   30 * time.Second,
		Expiry:     24 * time.Hour,
		MaxWait:    30 * time.Second,
	}
}

func defaultLiveness() Liveness {
	return Liveness{HeartbeatInterval: time.Second, DiscoveryInterval: 30 * time.Second,
		DiscoveryTimeout: time.Second, DiscoveryAttempts: 3, ForgetAfter: 24 * time.Hour}
}

func defaultNotifications() Notifications {
	return Notifications{
		CallbackTimeout: 10 * time.Second,
		RetryAttempts:   5,
		RetryInitial:    500 * time.Millisecond,
		RetryMax:        30 * time.Second,
		QueueSize:       256,
		StreamBuffer:    256,
		StreamWriteWait: 10 * time.Second,
		History:         1024,
		HistoryBytes:    16 << 20,
		StatusInterval:  time.Second,
	}
}

// register declares the delivery section's flags, --delivery-*.
func (d *Delivery) register(fs *pflag.FlagSet, env func(name, variable string)) {
	fs.IntVar(&d.Window, "delivery-window", d.Window, "outbox entries in flight to one peer on one layer")
	env("delivery-window", "CMBS_DELIVERY_WINDOW")
	fs.IntVar(&d.Batch, "delivery-batch", d.Batch, "most outbox entries sent to a peer in one batch; at most --delivery-window")
	env("delivery-batch", "CMBS_DELIVERY_BATCH")
	fs.DurationVar(&d.AckTimeout, "delivery-ack-timeout", d.AckTimeout, "how long a peer may leave a batch unanswered before it is sent again")
	env("delivery-ack-timeout", "CMBS_DELIVERY_ACK_TIMEOUT")
	fs.DurationVar(&d.RetryMin, "delivery-retry-min", d.RetryMin, "shortest backoff between attempts to reach a peer")
	env("delivery-retry-min", "CMBS_DELIVERY_RETRY_MIN")
	fs.DurationVar(&d.RetryMax, "delivery-retry-max", d.RetryMax, "longest backoff between attempts to reach a peer")
	env("delivery-retry-max", "CMBS_DELIVERY_RETRY_MAX")
	fs.DurationVar(&d.Expiry, "delivery-expiry", d.Expiry, "how long a message that sets no cmbs.message.expires is retried")
	env("delivery-expiry", "CMBS_DELIVERY_EXPIRY")
	fs.DurationVar(&d.MaxWait, "delivery-max-wait", d.MaxWait, "longest wait a client may ask for with Prefer: wait")
	env("delivery-max-wait", "CMBS_DELIVERY_MAX_WAIT")
}

// register declares the liveness section's flags, --liveness-*.
func (l *Liveness) register(fs *pflag.FlagSet, env func(name, variable string)) {
	fs.DurationVar(&l.HeartbeatInterval, "liveness-heartbeat-interval", l.HeartbeatInterval, "how often the member exchanges routes with its neighbours (down after three silent); 0s turns liveness off")
	env("liveness-heartbeat-interval", "CMBS_LIVENESS_HEARTBEAT_INTERVAL")
	fs.DurationVar(&l.DiscoveryInterval, "liveness-discovery-interval", l.DiscoveryInterval, "how often a full check_neighbors runs while liveness is on")
	env("liveness-discovery-interval", "CMBS_LIVENESS_DISCOVERY_INTERVAL")
	fs.DurationVar(&l.DiscoveryTimeout, "liveness-discovery-timeout", l.DiscoveryTimeout, "how long one attempt of a discovery request to another member (check_neighbors, key probes) waits for its reply")
	env("liveness-discovery-timeout", "CMBS_LIVENESS_DISCOVERY_TIMEOUT")
	fs.IntVar(&l.DiscoveryAttempts, "liveness-discovery-attempts", l.DiscoveryAttempts, "attempts of a discovery request to another member, the first included")
	env("liveness-discovery-attempts", "CMBS_LIVENESS_DISCOVERY_ATTEMPTS")
	fs.DurationVar(&l.ForgetAfter, "liveness-forget-after", l.ForgetAfter, "how long a member without a route is kept before it is deleted")
	env("liveness-forget-after", "CMBS_LIVENESS_FORGET_AFTER")
}

// register declares the notifications section's flags, --notifications-*.
func (n *Notifications) register(fs *pflag.FlagSet, env func(name, variable string)) {
	fs.DurationVar(&n.CallbackTimeout, "notifications-callback-timeout", n.CallbackTimeout, "how long one subscription callback may take")
	env("notifications-callback-timeout", "CMBS_NOTIFICATIONS_CALLBACK_TIMEOUT")
	fs.IntVar(&n.RetryAttempts, "notifications-retry-attempts", n.RetryAttempts, "tries of one callback, the first included")
	env("notifications-retry-attempts", "CMBS_NOTIFICATIONS_RETRY_ATTEMPTS")
	fs.DurationVar(&n.RetryInitial, "notifications-retry-initial", n.RetryInitial, "pause before a callback's second try; each later one doubles")
	env("notifications-retry-initial", "CMBS_NOTIFICATIONS_RETRY_INITIAL")
	fs.DurationVar(&n.RetryMax, "notifications-retry-max", n.RetryMax, "longest pause between two tries of a callback")
	env("notifications-retry-max", "CMBS_NOTIFICATIONS_RETRY_MAX")
	fs.IntVar(&n.QueueSize, "notifications-queue-size", n.QueueSize, "events waiting per subscription; more are dropped and counted")
	env("notifications-queue-size", "CMBS_NOTIFICATIONS_QUEUE_SIZE")
	fs.IntVar(&n.StreamBuffer, "notifications-stream-buffer", n.StreamBuffer, "events waiting per /events client; one that lets it fill is disconnected")
	env("notifications-stream-buffer", "CMBS_NOTIFICATIONS_STREAM_BUFFER")
	fs.DurationVar(&n.StreamWriteWait, "notifications-stream-write-wait", n.StreamWriteWait, "how long a write to an /events client may block before it counts as gone")
	env("notifications-stream-write-wait", "CMBS_NOTIFICATIONS_STREAM_WRITE_WAIT")
	fs.IntVar(&n.History, "notifications-history", n.History, "recent events kept for /events clients resuming with Last-Event-ID")
	env("notifications-history", "CMBS_NOTIFICATIONS_HISTORY")
	fs.IntVar(&n.HistoryBytes, "notifications-history-bytes", n.HistoryBytes, "about how many bytes the kept events may take in all")
	env("notifications-history-bytes", "CMBS_NOTIFICATIONS_HISTORY_BYTES")
	fs.DurationVar(&n.StatusInterval, "notifications-status-interval", n.StatusInterval, "how often, at most, a busy subscription's counters are written to the store")
	env("notifications-status-interval", "CMBS_NOTIFICATIONS_STATUS_INTERVAL")
}

// validateTuning adds the problems of the delivery, liveness and
// notifications sections.
func validateTuning(c Config, bad func(field, format string, args ...any)) {
	d, l, n := c.Delivery, c.Liveness, c.Notifications
	positiveInt(bad, "delivery.window", d.Window)
	if positiveInt(bad, "delivery.batch", d.Batch) && d.Window > 0 && d.Batch > d.Window {
		bad("delivery.batch", "must be at most delivery.window (%d), got %d", d.Window, d.Batch)
	}
	positive(bad, "delivery.ack_timeout", d.AckTimeout)
	orderedRange(bad, "delivery.retry_min", d.RetryMin, "delivery.retry_max", d.RetryMax)
	positive(bad, "delivery.expiry", d.Expiry)
	positive(bad, "delivery.max_wait", d.MaxWait)

	if l.HeartbeatInterval < 0 {
		bad("liveness.heartbeat_interval", "must be positive, or 0s to turn liveness off; got %v", l.HeartbeatInterval)
	}
	positive(bad, "liveness.discovery_interval", l.DiscoveryInterval)
	positive(bad, "liveness.discovery_timeout", l.DiscoveryTimeout)
	positiveInt(bad, "liveness.discovery_attempts", l.DiscoveryAttempts)
	positive(bad, "liveness.forget_after", l.ForgetAfter)

	positive(bad, "notifications.callback_timeout", n.CallbackTimeout)
	positiveInt(bad, "notifications.retry_attempts", n.RetryAttempts)
	orderedRange(bad, "notifications.retry_initial", n.RetryInitial, "notifications.retry_max", n.RetryMax)
	positiveInt(bad, "notifications.queue_size", n.QueueSize)
	positiveInt(bad, "notifications.stream_buffer", n.StreamBuffer)
	positive(bad, "notifications.stream_write_wait", n.StreamWriteWait)
	positiveInt(bad, "notifications.history", n.History)
	positiveInt(bad, "notifications.history_bytes", n.HistoryBytes)
	positive(bad, "notifications.status_interval", n.StatusInterval)
}

// positive reports a duration that is not positive; it returns whether
// the duration is.
func positive(bad func(field, format string, args ...any), field string, d time.Duration) bool {
	if d <= 0 {
		bad(field, "must be positive, got %v", d)
		return false
	}
	return true
}

// positiveInt is positive for a count.
func positiveInt(bad func(field, format string, args ...any), field string, n int) bool {
	if n <= 0 {
		bad(field, "must be positive, got %d", n)
		return false
	}
	return true
}

// orderedRange checks the bounds of a backoff: both positive, the first
// no larger than the second.
func orderedRange(bad func(field, format string, args ...any), minField string, lo time.Duration, maxField string, hi time.Duration) {
	okLo, okHi := positive(bad, minField, lo), positive(bad, maxField, hi)
	if okLo && okHi && lo > hi {
		bad(maxField, "must be at least %s (%v), got %v", minField, lo, hi)
	}
}
