package layers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/sirupsen/logrus"
)

// Handler processes one request payload and returns the reply bytes. A
// non-nil error is sent back instead of the reply and surfaces at the sender
// as an [*Error] of [KindRemote] whose Reason is err.Error(). ctx is canceled
// when the Receiver closes; [Receiver.Close] waits for running handlers, so
// handlers must return promptly once ctx is done. An error returned once ctx
// is canceled is not sent: the sender sees the connection drop instead of a
// remote error caused by the shutdown. On a CURVE receiver, [PeerFrom]
// reads from ctx the key the sender proved it holds.
type Handler func(ctx context.Context, msg []byte) ([]byte, error)

// Receiver defaults.
const (
	DefaultWorkers      = 8
	DefaultQueueSize    = 256
	DefaultPollInterval = 50 * time.Millisecond
)

// requestDrainBatch bounds how many requests the loop takes per poll, so a
// flood of requests cannot starve the reply path or the shutdown check.
const requestDrainBatch = 64

// ReceiverConfig configures a [Receiver].
type ReceiverConfig struct {
	// Endpoint to bind, e.g. "tcp://*:5010" or "tcp://127.0.0.1:*".
	Endpoint string
	// Handler decides the reply to every request. Required.
	Handler Handler
	// Logger receives connection-level diagnostics; nil discards them.
	Logger logrus.FieldLogger
	// Workers is how many handlers may run concurrently (default 8).
	Workers int
	// QueueSize is how many requests may wait for a free worker (default
	// 256). Requests beyond Workers+QueueSize are answered "BUSY" at once,
	// which the sender reports as KindRefused, rather than being left to time
	// out.
	QueueSize int
	// PollInterval bounds how long the socket loop blocks before checking for
	// shutdown, and so how long Close takes to begin (default 50ms).
	PollInterval time.Duration
	// MaxMessageSize, if positive, makes libzmq drop peers that send larger
	// messages, bounding the memory a misbehaving peer can consume.
	MaxMessageSize int64
	// Curve, when set, makes the receiver a CURVE server (RFC 26) that
	// admits the peers Curve.Admit accepts, through a ZAP handler (RFC 27)
	// on its socket loop. It needs the receiver's own ZeroMQ context
	// (Context nil): ZAP has one handler per context.
	Curve *CurveServer
	// OnRefused, when set, hears of every peer turned away: refused by
	// Curve.Admit, or whose handshake failed (no CURVE, a wrong key, a
	// plain receiver dialled with CURVE). It runs on the socket loop, so
	// it must be quick and must not block.
	OnRefused func(Refusal)
	// PeerOrder makes the receiver handle the requests of one peer (one
	// connected socket, such as a Stream) one at a time, in the order they
	// arrived, while different peers still run in parallel. A sender that
	// pipelines requests then sees them handled in the order it sent them.
	PeerOrder bool
	// Context is an optional ZeroMQ context to create sockets in. Leave it
	// nil to give the Receiver its own context, which Close terminates: that
	// is what guarantees the TCP port is released when Close returns (libzmq
	// closes listeners asynchronously otherwise). A shared context is needed
	// only for inproc:// endpoints, which work within one context.
	Context *zmq.Context
}

// Receiver binds a ROUTER socket and answers each request with its Handler's
// reply. Create one with [NewReceiver]; it may be started and closed
// repeatedly.
type Receiver struct {
	cfg ReceiverConfig
	log logrus.FieldLogger

	// mu serializes Start and Close (Close holds it until the loop has
	// exited, so a Start racing a Close cannot find the port still bound)
	// and guards run.
	mu   sync.Mutex
	run  *receiverRun
	runs uint64 // Start count, makes each run's inproc reply address unique
}

// receiverRun is the state of one Start..Close cycle.
type receiverRun struct {
	cancel   context.CancelFunc
	done     chan struct{} // closed when the loop goroutine has exited
	endpoint string        // endpoint actually bound (wildcards resolved)
	err      error         // loop's fatal error, read after done
}

// job is one request handed from the loop to a worker.
type job struct {
	envelope [][]byte
	id       []byte
	payload  []byte
	peer     *Peer // the sender, on a CURVE receiver
}

// receiverSockets are created by Start and handed over to the loop, which owns
// router and pull; each push socket is handed on to exactly one worker.
type receiverSockets struct {
	zctx    *zmq.Context
	ownCtx  bool
	router  *zmq.Socket
	zap     *zmq.Socket // REP answering libzmq's ZAP requests, with Curve
	mon     *zmq.Socket // PAIR fed by the router's monitor, with OnRefused
	pull    *zmq.Socket
	pushes  []*zmq.Socket
	replyTo string
}

// NewReceiver validates cfg and applies defaults. The receiver is not bound
// until Start.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := ValidateEndpoint(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("layers: new receiver: %w", err)
	}
	if cfg.Handler == nil {
		return nil, errors.New("layers: new receiver: nil Handler")
	}
	if cfg.Curve != nil {
		if cfg.Context != nil {
			return nil, errors.New("layers: new receiver: a CURVE receiver needs its own ZeroMQ context, for its ZAP handler")
		}
		if err := checkKeyPair(cfg.Curve.Keys); err != nil {
			return nil, fmt.Errorf("layers: new receiver: %w", err)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	log := orDiscard(cfg.Logger).WithFields(logrus.Fields{"component": "layers.receiver", "endpoint": cfg.Endpoint})
	return &Receiver{cfg: cfg, log: log}, nil
}

// Start binds the endpoint and starts serving. A bind failure (address in use,
// unknown interface, bad path) is returned here, synchronously; errors that
// are OS errno values unwrap to syscall.Errno (e.g. syscall.EADDRINUSE).
// Starting a running receiver returns [ErrAlreadyRunning].
func (r *Receiver) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run != nil {
		return ErrAlreadyRunning
	}
	s, bound, err := r.open()
	if err != nil {
		return fmt.Errorf("layers: start receiver on %s: %w", r.cfg.Endpoint, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &receiverRun{cancel: cancel, done: make(chan struct{}), endpoint: bound}
	// The sockets were created on this goroutine; from here on only the loop
	// and its workers touch them. The go statement orders our writes before
	// the loop's first use.
	go r.loop(ctx, s, run)
	r.run = run
	r.log.WithField("bound", bound).Info("receiver started")
	return nil
}

// open creates and binds every socket of one run, cleaning up after itself on
// failure.
func (r *Receiver) open() (_ *receiverSockets, bound string, err error) {
	s := &receiverSockets{zctx: r.cfg.Context}
	if s.zctx == nil {
		if s.zctx, err = zmq.NewContext(); err != nil {
			return nil, "", fmt.Errorf("new zmq context: %w", err)
		}
		s.ownCtx = true
	}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if s.router, err = newSocket(s.zctx, zmq.ROUTER); err != nil {
		return nil, "", err
	}
	// Mandatory routing turns a reply to a vanished peer into EHOSTUNREACH
	// we can log, instead of a silent drop.
	if err = s.router.SetRouterMandatory(1); err != nil {
		return nil, "", fmt.Errorf("set ROUTER_MANDATORY: %w", err)
	}
	if r.cfg.MaxMessageSize > 0 {
		if err = s.router.SetMaxmsgsize(r.cfg.MaxMessageSize); err != nil {
			return nil, "", fmt.Errorf("set MAXMSGSIZE: %w", err)
		}
	}
	r.runs++
	if err = r.secure(s); err != nil {
		return nil, "", err
	}
	if err = s.router.Bind(r.cfg.Endpoint); err != nil {
		return nil, "", fmt.Errorf("bind: %w", osError(err))
	}
	if bound, err = s.router.GetLastEndpoint(); err != nil {
		return nil, "", fmt.Errorf("read bound endpoint: %w", err)
	}

	// Workers cannot write to the ROUTER (it belongs to the loop), and the
	// loop cannot wait on a Go channel while it sits in zmq_poll. So replies
	// travel on a Go channel (no copy of the body) and each worker then sends
	// an empty wake-up frame over its inproc PUSH socket into a PULL socket
	// the loop polls.
	s.replyTo = fmt.Sprintf("inproc://cmbs-layers-replies-%p-%d", r, r.runs)
	if s.pull, err = newSocket(s.zctx, zmq.PULL); err != nil {
		return nil, "", err
	}
	if err = s.pull.Bind(s.replyTo); err != nil {
		return nil, "", fmt.Errorf("bind reply channel: %w", err)
	}
	for i := 0; i < r.cfg.Workers; i++ {
		push, perr := newSocket(s.zctx, zmq.PUSH)
		if perr != nil {
			return nil, "", perr
		}
		s.pushes = append(s.pushes, push)
		if err = push.Connect(s.replyTo); err != nil {
			return nil, "", fmt.Errorf("connect reply channel: %w", err)
		}
	}
	return s, bound, nil
}

// secure makes the router a CURVE server with a ZAP handler, and attaches
// the monitor that reports failed handshakes, as the config asks. Both
// come before the router binds, so no peer's handshake goes unchecked or
// unseen.
func (r *Receiver) secure(s *receiverSockets) error {
	var err error
	if c := r.cfg.Curve; c != nil {
		// Without a handler bound, libzmq would let every CURVE client
		// in: the handler must exist before the first handshake.
		if s.zap, err = newSocket(s.zctx, zmq.REP); err != nil {
			return err
		}
		if err = s.zap.Bind(zapEndpoint); err != nil {
			return fmt.Errorf("bind the ZAP handler: %w", osError(err))
		}
		if err = s.router.SetCurveServer(1); err != nil {
			return fmt.Errorf("set CURVE_SERVER: %w", err)
		}
		if err = s.router.SetCurveSecretkey(c.Keys.Secret); err != nil {
			return fmt.Errorf("set CURVE_SECRETKEY: %w", err)
		}
		if err = s.router.SetZapDomain(zapDomain); err != nil {
			return fmt.Errorf("set ZAP_DOMAIN: %w", err)
		}
	}
	if r.cfg.OnRefused != nil {
		addr := fmt.Sprintf("inproc://cmbs-layers-refusals-%p-%d", r, r.runs)
		if err = s.router.Monitor(addr, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL|zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL); err != nil {
			return fmt.Errorf("monitor ROUTER: %w", err)
		}
		if s.mon, err = newSocket(s.zctx, zmq.PAIR); err != nil {
			return err
		}
		if err = s.mon.Connect(addr); err != nil {
			return fmt.Errorf("connect monitor: %w", err)
		}
	}
	return nil
}

// closeRouter closes the router with what serves it: its monitor first
// (pebbe/zmq4 documents crashes when a monitored socket's context ends
// with the monitor attached), then the ZAP handler, once no handshake can
// ask it anything.
func (s *receiverSockets) closeRouter() {
	if s.router != nil {
		if s.mon != nil {
			_ = s.router.Monitor("", 0)
		}
		_ = s.router.Close()
	}
	if s.mon != nil {
		_ = s.mon.Close()
	}
	if s.zap != nil {
		_ = s.zap.Close()
	}
}

// closeAll closes whatever sockets exist and terminates an owned context. It
// is only used on a failed open, before any goroutine has taken ownership.
func (s *receiverSockets) closeAll() {
	for _, p := range s.pushes {
		_ = p.Close()
	}
	if s.pull != nil {
		_ = s.pull.Close()
	}
	s.closeRouter()
	if s.ownCtx {
		_ = s.zctx.Term()
	}
}

// newSocket creates a socket with LINGER 0: a closing socket must never block
// on, or later deliver, frames queued for a peer that is gone.
func newSocket(zctx *zmq.Context, t zmq.Type) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(t)
	if err != nil {
		return nil, fmt.Errorf("new %s socket: %w", t, osError(err))
	}
	if err := s.SetLinger(0); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("set LINGER on %s socket: %w", t, err)
	}
	return s, nil
}

// Close stops the receiver: it stops accepting requests, cancels the context
// passed to handlers, waits for running handlers and the socket loop to
// finish, and closes every socket. When the receiver owns its ZeroMQ context
// (the default) the port is free again when Close returns. Closing a receiver
// that is not running returns [ErrNotRunning].
func (r *Receiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	run := r.run
	if run == nil {
		return ErrNotRunning
	}
	run.cancel()
	<-run.done
	r.run = nil
	r.log.Info("receiver closed")
	if run.err != nil {
		return fmt.Errorf("layers: receiver on %s: %w", run.endpoint, run.err)
	}
	return nil
}

// Running reports whether the receiver is started and not yet closed.
func (r *Receiver) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run != nil
}

// Endpoint returns the endpoint actually bound while running (with wildcard
// ports resolved, e.g. "tcp://127.0.0.1:41234"), otherwise the configured one.
// A wildcard host reads back as 0.0.0.0, which is not what peers should dial:
// a member advertises its own reachable address.
func (r *Receiver) Endpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run != nil {
		return r.run.endpoint
	}
	return r.cfg.Endpoint
}

// loop owns the ROUTER and PULL sockets for one run. It hands requests to the
// workers, forwards their replies to the requesting peers, and on shutdown
// closes everything it owns after the workers have exited.
func (r *Receiver) loop(ctx context.Context, s *receiverSockets, run *receiverRun) {
	defer close(run.done)

	capacity := r.cfg.Workers + r.cfg.QueueSize
	// Every buffer equals the in-flight limit, so neither the loop handing
	// over a job nor a worker handing back a reply ever blocks. Workers
	// share one queue, or with PeerOrder each has its own and a peer's
	// requests always go to the same one.
	queues := make([]chan job, 1, len(s.pushes))
	queues[0] = make(chan job, capacity)
	if r.cfg.PeerOrder {
		for range len(s.pushes) - 1 {
			queues = append(queues, make(chan job, capacity))
		}
	}
	replies := make(chan [][]byte, capacity)
	var workers sync.WaitGroup
	for i, push := range s.pushes {
		workers.Add(1)
		go r.worker(ctx, push, queues[i%len(queues)], replies, &workers)
	}

	poller := zmq.NewPoller()
	// Replies first: they free capacity for the requests polled after them.
	poller.Add(s.pull, zmq.POLLIN)
	// Handshakes next: a peer waits for its admission.
	if s.zap != nil {
		poller.Add(s.zap, zmq.POLLIN)
	}
	if s.mon != nil {
		poller.Add(s.mon, zmq.POLLIN)
	}
	poller.Add(s.router, zmq.POLLIN)
	inflight := 0
	for ctx.Err() == nil {
		polled, err := poller.Poll(r.cfg.PollInterval)
		if err != nil {
			run.err = fmt.Errorf("poll: %w", err)
			r.log.WithError(err).Error("receiver loop stopped")
			break
		}
		for _, p := range polled {
			switch p.Socket {
			case s.pull:
				inflight -= r.forwardReplies(s.pull, s.router, replies)
			case s.zap:
				r.answerZAP(s.zap)
			case s.mon:
				r.reportHandshakes(s.mon)
			case s.router:
				if n := r.acceptRequests(s.router, queues, inflight, capacity); n > 0 {
					inflight += n
					// The woken worker sits in this P's run queue, and the
					// loop is about to block in zmq_poll, a cgo call that
					// keeps the P until sysmon retakes it (tens of
					// microseconds or more). Yielding first lets the
					// worker run now; it measured as most of the latency
					// this package adds to a round trip.
					runtime.Gosched()
				}
			}
		}
	}

	s.closeRouter()
	for _, q := range queues {
		close(q)
	}
	workers.Wait()
	_ = s.pull.Close()
	if s.ownCtx {
		// Term returns once libzmq has really closed the listener, which is
		// what lets a later Start bind the same port.
		if err := s.zctx.Term(); err != nil && run.err == nil {
			run.err = fmt.Errorf("terminate zmq context: %w", err)
		}
	}
}

// acceptRequests reads up to a batch of requests and returns how many were
// handed to workers: to the one queue, or to the queue of the sending peer.
func (r *Receiver) acceptRequests(router *zmq.Socket, queues []chan job, inflight, capacity int) int {
	accepted := 0
	for i := 0; i < requestDrainBatch; i++ {
		frames, peer, err := r.receive(router)
		if err != nil {
			if !isEAGAIN(err) {
				r.log.WithError(err).Warn("receive request")
			}
			return accepted
		}
		envelope, body, ok := splitEnvelope(frames)
		if !ok {
			r.log.WithField("frames", len(frames)).Warn("dropping request without routing envelope")
			continue
		}
		if len(body) != 2 || len(body[0]) != requestIDLen {
			id := []byte{}
			if len(body) > 0 {
				id = body[0]
			}
			r.sendReply(router, envelope, id, statusBad, []byte(fmt.Sprintf("malformed request: %d body frames", len(body))))
			continue
		}
		if inflight+accepted >= capacity {
			r.sendReply(router, envelope, body[0], statusBusy,
				[]byte(fmt.Sprintf("receiver queue full (%d requests in flight)", capacity)))
			continue
		}
		queues[peerQueue(envelope, len(queues))] <- job{envelope: envelope, id: body[0], payload: body[1], peer: peer}
		accepted++
	}
	return accepted
}

// receive reads one request; on a CURVE receiver, with the sender's key
// and address, which the ZAP handler's answer attached to the connection.
func (r *Receiver) receive(router *zmq.Socket) ([][]byte, *Peer, error) {
	if r.cfg.Curve == nil {
		frames, err := router.RecvMessageBytes(zmq.DONTWAIT)
		return frames, nil, err
	}
	// The routing id frame the ROUTER makes up carries no metadata once
	// zmq_poll has prefetched the message (libzmq 4.3), so the metadata
	// is read from the first frame the peer sent.
	first, err := router.RecvBytes(zmq.DONTWAIT)
	if err != nil {
		return nil, nil, err
	}
	frames := [][]byte{first}
	var peer *Peer
	for {
		more, err := router.GetRcvmore()
		if err != nil || !more {
			return frames, peer, err
		}
		var frame []byte
		if peer == nil {
			var meta map[string]string
			frame, meta, err = router.RecvBytesWithMetadata(0, "User-Id", "Peer-Address")
			peer = &Peer{Key: meta["User-Id"], Address: meta["Peer-Address"]}
		} else {
			frame, err = router.RecvBytes(0)
		}
		if err != nil {
			return frames, peer, err
		}
		frames = append(frames, frame)
	}
}

// peerQueue picks the queue of the peer whose routing envelope is given.
func peerQueue(envelope [][]byte, queues int) int {
	if queues == 1 {
		return 0
	}
	h := fnv.New32a()
	for _, frame := range envelope {
		_, _ = h.Write(frame)
	}
	return int(h.Sum32() % uint32(queues))
}

// forwardReplies consumes the pending wake-ups, then moves every finished
// reply to its peer, and returns how many replies it sent. Wake-ups are
// drained first: a worker queues its reply before waking the loop, so every
// reply whose wake-up was consumed is already in the channel. The channel is
// emptied completely because a reply left behind might have no wake-up
// pending any more.
func (r *Receiver) forwardReplies(pull, router *zmq.Socket, replies <-chan [][]byte) int {
	for {
		if _, err := pull.RecvBytes(zmq.DONTWAIT); err != nil {
			if !isEAGAIN(err) {
				r.log.WithError(err).Warn("receive worker wake-up")
			}
			break
		}
	}
	n := 0
	for {
		select {
		case frames := <-replies:
			r.send(router, frames)
			n++
		default:
			return n
		}
	}
}

func (r *Receiver) sendReply(router *zmq.Socket, envelope [][]byte, id []byte, status string, body []byte) {
	frames := make([][]byte, 0, len(envelope)+4)
	frames = append(frames, envelope...)
	frames = append(frames, []byte{}, id, []byte(status), body)
	r.send(router, frames)
}

// send never blocks the loop: a peer that is gone or not reading loses its
// reply, and its client times out and retries.
func (r *Receiver) send(router *zmq.Socket, frames [][]byte) {
	if _, err := router.SendMessageDontwait(frames); err != nil {
		r.log.WithError(osError(err)).Debug("reply dropped: requester gone or not reading")
	}
}

// worker runs handlers for jobs until the loop closes the jobs channel, and
// owns push, its wake-up line to the loop.
func (r *Receiver) worker(ctx context.Context, push *zmq.Socket, jobs <-chan job, replies chan<- [][]byte, wg *sync.WaitGroup) {
	defer wg.Done()
	defer func() { _ = push.Close() }()
	for j := range jobs {
		if ctx.Err() != nil {
			// Shutting down: the ROUTER is closed, nobody could get a reply.
			continue
		}
		hctx := ctx
		if j.peer != nil {
			hctx = context.WithValue(ctx, peerKey{}, *j.peer)
		}
		status, body := r.handle(hctx, j.payload)
		if status == statusErr && ctx.Err() != nil {
			// Most likely the handler failed because we are shutting down.
			// That is not the handler's verdict on the message, so no
			// remote error is reported: the sender sees the connection drop
			// and may retry later.
			continue
		}
		frames := make([][]byte, 0, len(j.envelope)+4)
		frames = append(frames, j.envelope...)
		frames = append(frames, []byte{}, j.id, []byte(status), body)
		replies <- frames
		// EAGAIN means this worker's pipe is full of wake-ups the loop has
		// not consumed yet, so the loop will wake anyway.
		if _, err := push.SendBytes(nil, zmq.DONTWAIT); err != nil && !isEAGAIN(err) {
			r.log.WithError(err).Warn("wake receiver loop")
		}
	}
}

// handle calls the Handler, turning an error or a panic into an error reply so
// one bad message cannot kill the receiver.
func (r *Receiver) handle(ctx context.Context, payload []byte) (status string, body []byte) {
	defer func() {
		if p := recover(); p != nil {
			r.log.WithField("panic", p).WithField("stack", string(debug.Stack())).Error("handler panicked")
			status, body = statusErr, []byte(fmt.Sprintf("handler panic: %v", p))
		}
	}()
	reply, err := r.cfg.Handler(ctx, payload)
	if err != nil {
		return statusErr, []byte(err.Error())
	}
	return statusOK, reply
}
