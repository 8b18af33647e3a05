package layers

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/sirupsen/logrus"
)

// Client defaults.
const (
	DefaultTimeout              = time.Second
	DefaultAttempts             = 3
	DefaultMaxIdlePerEndpoint   = 16
	DefaultIdleTimeout          = 30 * time.Second
	DefaultBroadcastConcurrency = 32
)

// cancelCheckInterval bounds how long a Request sits in zmq_poll before it
// looks at its context and the Client's shutdown signal, neither of which
// zmq_poll can wait on. Replies still wake the poll immediately.
const cancelCheckInterval = 25 * time.Millisecond

// ClientConfig configures a [Client]. Zero values select the defaults.
type ClientConfig struct {
	// Timeout is how long one attempt waits for its reply (default 1s).
	// A request gives up after Attempts*Timeout at most, or earlier if its
	// context ends.
	Timeout time.Duration
	// Attempts is the total number of sends per request, the first included
	// (default 3; 1 disables retries). Only timeouts, unreachable peers and
	// dropped connections are retried.
	Attempts int
	// MaxIdlePerEndpoint caps the connected sockets kept for reuse per
	// endpoint (default 16). More concurrent requests than this still work;
	// their extra sockets are closed after use.
	MaxIdlePerEndpoint int
	// IdleTimeout retires pooled sockets unused for this long (default 30s),
	// so members that left stop costing reconnect attempts. Expired sockets
	// are closed on the Client's next use or on Close.
	IdleTimeout time.Duration
	// BroadcastConcurrency bounds the requests one Broadcast runs at once
	// (default 32).
	BroadcastConcurrency int
	// MaxMessageSize, if positive, bounds what the Client sends and
	// receives. A larger payload is refused with KindTooLarge before it is
	// sent, and libzmq drops the connection to a receiver that replies
	// with a larger message, bounding the memory a misbehaving receiver
	// can make the Client use; the request fails as a dropped connection.
	MaxMessageSize int64
	// Curve, when set, makes every connection a CURVE client (RFC 26)
	// presenting this key pair: each request then needs the receiver's
	// public key (Target.Key), and the receiver's ZAP handler decides
	// whether this key may connect.
	Curve *KeyPair
	// Logger receives per-attempt diagnostics; nil discards them.
	Logger logrus.FieldLogger
	// Context is an optional ZeroMQ context; nil gives the Client its own,
	// terminated by Close. Share one with a Receiver to use inproc://.
	Context *zmq.Context
}

// Client sends requests to Receivers and waits for their replies. It is safe
// for concurrent use.
//
// Concurrency model: each Request call owns the DEALER socket it uses for the
// whole call. Sockets are not shared; they are checked out of a per-endpoint
// idle pool (ownership passes through the pool's mutex, which also provides
// the memory barrier libzmq requires when a socket changes threads) and
// checked back in after a clean exchange. N concurrent requests to one
// endpoint therefore use N connections, and a request never waits behind
// another. A socket whose attempt failed is closed rather than pooled, which is
// the Lazy Pirate "close and reopen" step.
type Client struct {
	cfg   ClientConfig
	log   logrus.FieldLogger
	zctx  *zmq.Context
	owned bool // zctx was created by NewClient and is terminated by Close
	nonce [8]byte
	seq   atomic.Uint64 // request id sequence, one per attempt
	mons  atomic.Uint64 // monitor address sequence

	mu        sync.Mutex
	closed    bool
	idle      map[string][]*conn // per endpoint and server key, oldest first
	lastPrune time.Time
	done      chan struct{}  // closed by Close; in-flight requests abort
	inflight  sync.WaitGroup // Requests in progress; Close waits for them
}

// NewClient creates a Client, applying defaults for zero config fields.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.MaxIdlePerEndpoint <= 0 {
		cfg.MaxIdlePerEndpoint = DefaultMaxIdlePerEndpoint
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BroadcastConcurrency <= 0 {
		cfg.BroadcastConcurrency = DefaultBroadcastConcurrency
	}
	if cfg.Curve != nil {
		if err := checkKeyPair(*cfg.Curve); err != nil {
			return nil, fmt.Errorf("layers: new client: %w", err)
		}
	}
	c := &Client{
		cfg:       cfg,
		log:       orDiscard(cfg.Logger).WithField("component", "layers.client"),
		zctx:      cfg.Context,
		idle:      make(map[string][]*conn),
		lastPrune: time.Now(),
		done:      make(chan struct{}),
	}
	if _, err := rand.Read(c.nonce[:]); err != nil {
		return nil, fmt.Errorf("layers: new client: request id nonce: %w", err)
	}
	if c.zctx == nil {
		zctx, err := zmq.NewContext()
		if err != nil {
			return nil, fmt.Errorf("layers: new client: zmq context: %w", err)
		}
		c.zctx, c.owned = zctx, true
	}
	return c, nil
}

// Request sends payload to the Receiver at endpoint: RequestTo with no
// server key, which only a plain Client can use.
func (c *Client) Request(ctx context.Context, endpoint string, payload []byte) ([]byte, error) {
	return c.RequestTo(ctx, Target{Endpoint: endpoint}, payload)
}

// RequestTo sends payload to the Receiver t names and returns its handler's
// reply. A nil error means the receiver acknowledged the message; otherwise
// the error is an [*Error] whose Kind says why it was not (match with
// errors.Is against ErrTimeout, ErrUnreachable, ErrRemote, ...).
//
// Each attempt waits up to the configured Timeout. On a timeout, an
// unreachable peer or a dropped connection the socket is closed, a fresh one
// opened and the payload sent again under a new request id, so a late reply
// to an earlier attempt can never be taken for the current one. A refused
// handshake (KindAuth) is not retried: the next one would be refused too.
func (c *Client) RequestTo(ctx context.Context, t Target, payload []byte) ([]byte, error) {
	endpoint := t.Endpoint
	if err := c.check(t, payload); err != nil {
		return nil, err
	}
	if !c.enter() {
		return nil, &Error{Endpoint: endpoint, Kind: KindClosed}
	}
	defer c.inflight.Done()

	var last *Error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if err := c.interrupted(ctx); err != nil {
			err.Endpoint, err.Attempts = endpoint, attempt-1
			if last != nil {
				err.Reason = "previous attempt: " + last.Reason
			}
			return nil, err
		}
		cn, err := c.checkout(t)
		if err != nil {
			return nil, &Error{Endpoint: endpoint, Kind: KindSocket, Attempts: attempt - 1, Err: err}
		}
		reply, aerr := c.attempt(ctx, cn, payload)
		if aerr == nil || aerr.Kind == KindRemote || aerr.Kind == KindRefused {
			// The exchange completed cleanly; the connection is reusable.
			c.checkin(cn)
		} else {
			cn.close()
		}
		if aerr == nil {
			return reply, nil
		}
		aerr.Endpoint, aerr.Attempts = endpoint, attempt
		if !aerr.Kind.retryable() {
			return nil, aerr
		}
		last = aerr
		if attempt < c.cfg.Attempts {
			c.log.WithFields(logrus.Fields{"endpoint": endpoint, "attempt": attempt, "kind": aerr.Kind.String()}).
				Debug("retrying on a fresh socket: " + aerr.Reason)
		}
	}
	return nil, last
}

// check refuses what cannot be sent to t: an endpoint no one can dial, a
// CURVE request without a valid server key, a payload over the size
// limit.
func (c *Client) check(t Target, payload []byte) *Error {
	if err := ValidateConnectEndpoint(t.Endpoint); err != nil {
		return &Error{Endpoint: t.Endpoint, Kind: KindInvalidEndpoint, Err: err}
	}
	if c.cfg.Curve != nil {
		if t.Key == "" {
			return &Error{Endpoint: t.Endpoint, Kind: KindAuth, Reason: "no CURVE public key is known for the receiver"}
		}
		if err := CheckKey(t.Key); err != nil {
			return &Error{Endpoint: t.Endpoint, Kind: KindAuth, Reason: "the receiver's CURVE public key", Err: err}
		}
	}
	if max := c.cfg.MaxMessageSize; max > 0 && int64(len(payload)) > max {
		return &Error{Endpoint: t.Endpoint, Kind: KindTooLarge, Reason: tooLarge(len(payload), max)}
	}
	return nil
}

// tooLarge explains a payload refused for its size.
func tooLarge(n int, max int64) string {
	return fmt.Sprintf("the message is %d bytes, over the %d-byte limit of layer messages", n, max)
}

// enter registers an in-flight request unless the Client is closed. Doing both
// under mu guarantees Close's Wait never races an Add.
func (c *Client) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.inflight.Add(1)
	return true
}

// interrupted reports why the request must stop now, if it must.
func (c *Client) interrupted(ctx context.Context) *Error {
	select {
	case <-c.done:
		return &Error{Kind: KindClosed}
	default:
	}
	if err := ctx.Err(); err != nil {
		return &Error{Kind: KindCanceled, Err: err}
	}
	return nil
}

// attempt sends payload once on cn and waits for the matching reply.
func (c *Client) attempt(ctx context.Context, cn *conn, payload []byte) ([]byte, *Error) {
	id := requestID(c.nonce, c.seq.Add(1))
	if _, err := cn.sock.SendMessageDontwait([]byte{}, id, payload); err != nil {
		if isEAGAIN(err) {
			return nil, &Error{Kind: KindUnreachable, Reason: "send queue to peer is full"}
		}
		return nil, &Error{Kind: KindSocket, Reason: "send", Err: osError(err)}
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	for {
		if err := c.interrupted(ctx); err != nil {
			cn.drainEvents()
			err.Reason = cn.state()
			return nil, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			cn.drainEvents()
			return nil, cn.timeoutError(c.cfg.Timeout)
		}
		polled, err := cn.poller.Poll(min(wait, cancelCheckInterval))
		if err != nil {
			return nil, &Error{Kind: KindSocket, Reason: "poll", Err: osError(err)}
		}
		for _, p := range polled {
			if p.Socket == cn.mon {
				cn.drainEvents()
				if err := cn.refusal(); err != nil {
					return nil, err
				}
				if cn.dropped {
					return nil, &Error{Kind: KindDisconnected, Reason: "peer closed the connection before replying"}
				}
				continue
			}
			body, done, rerr := c.readReply(cn, id)
			if done {
				return body, rerr
			}
		}
	}
}

// readReply takes one message off cn. done is false when the message is a
// stale reply to an earlier request, which is discarded.
func (c *Client) readReply(cn *conn, id []byte) (body []byte, done bool, err *Error) {
	frames, rerr := cn.sock.RecvMessageBytes(zmq.DONTWAIT)
	if rerr != nil {
		if isEAGAIN(rerr) {
			return nil, false, nil
		}
		return nil, true, &Error{Kind: KindSocket, Reason: "receive", Err: osError(rerr)}
	}
	rep, perr := parseReply(frames)
	if perr != nil {
		return nil, true, &Error{Kind: KindProtocol, Reason: perr.Error()}
	}
	if string(rep.id) != string(id) {
		c.log.WithField("endpoint", cn.endpoint).Debug("discarding reply to an earlier request")
		return nil, false, nil
	}
	switch rep.status {
	case statusOK:
		return rep.body, true, nil
	case statusErr:
		return nil, true, &Error{Kind: KindRemote, Reason: string(rep.body)}
	case statusBusy:
		return nil, true, &Error{Kind: KindRefused, Reason: string(rep.body)}
	case statusBad:
		return nil, true, &Error{Kind: KindProtocol, Reason: "receiver rejected request: " + string(rep.body)}
	default:
		return nil, true, &Error{Kind: KindProtocol, Reason: fmt.Sprintf("unknown reply status %q", rep.status)}
	}
}

// checkout takes ownership of a healthy idle socket for t, or dials a new
// one.
func (c *Client) checkout(t Target) (*conn, error) {
	pool := poolKey(t)
	c.mu.Lock()
	var cn *conn
	if list := c.idle[pool]; len(list) > 0 {
		// Newest first: it is the most likely to still be connected, and
		// leaves the oldest at the front for pruning.
		cn = list[len(list)-1]
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(c.idle, pool)
		} else {
			c.idle[pool] = list[:len(list)-1]
		}
	}
	c.mu.Unlock()
	if cn != nil {
		cn.drainEvents()
		if !cn.dropped && time.Since(cn.idleSince) < c.cfg.IdleTimeout {
			return cn, nil
		}
		// The peer went away while the socket sat idle (it may be back on a
		// new process); start from a clean connection.
		cn.close()
	}
	return c.dial(t)
}

// checkin returns cn to the idle pool, or closes it if the pool is full or the
// Client closed. It also closes sockets idle for longer than IdleTimeout.
func (c *Client) checkin(cn *conn) {
	now := time.Now()
	cn.idleSince = now
	var stale []*conn
	c.mu.Lock()
	if c.closed || len(c.idle[cn.pool]) >= c.cfg.MaxIdlePerEndpoint {
		stale = append(stale, cn)
	} else {
		c.idle[cn.pool] = append(c.idle[cn.pool], cn)
	}
	if now.Sub(c.lastPrune) >= c.cfg.IdleTimeout/2 {
		c.lastPrune = now
		stale = append(stale, c.pruneLocked(now)...)
	}
	c.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

// pruneLocked removes idle sockets older than IdleTimeout from the pool and
// returns them for closing outside the lock.
func (c *Client) pruneLocked(now time.Time) []*conn {
	var stale []*conn
	for ep, list := range c.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idleSince) >= c.cfg.IdleTimeout {
			n++
		}
		if n == 0 {
			continue
		}
		stale = append(stale, list[:n]...)
		if n == len(list) {
			delete(c.idle, ep)
		} else {
			c.idle[ep] = append([]*conn(nil), list[n:]...)
		}
	}
	return stale
}

// Close aborts in-flight requests (they fail with [ErrClosed]), waits for
// them to return, and closes every socket. Closing twice returns ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	close(c.done)
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()

	for _, list := range idle {
		for _, cn := range list {
			cn.close()
		}
	}
	c.inflight.Wait()
	if c.owned {
		if err := c.zctx.Term(); err != nil {
			return fmt.Errorf("layers: close client: terminate zmq context: %w", err)
		}
	}
	return nil
}
