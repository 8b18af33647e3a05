package layers

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// monitoredEvents are the socket events a conn tracks to explain failures:
// whether a ZMTP session was ever up, how often connecting failed, and whether
// an established session dropped.
const monitoredEvents = zmq.EVENT_CONNECT_RETRIED |
	zmq.EVENT_DISCONNECTED |
	zmq.EVENT_HANDSHAKE_SUCCEEDED |
	zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
	zmq.EVENT_HANDSHAKE_FAILED_AUTH

// conn is one DEALER socket connected to one endpoint, plus the PAIR socket
// that receives its monitor events. ZeroMQ connects in the background and
// hides failures; the monitor is what lets a timeout be explained as
// "nothing listening" versus "connected but no reply".
type conn struct {
	endpoint string
	pool     string      // the idle pool it returns to: endpoint and server key
	curve    bool        // the DEALER is a CURVE client
	sock     *zmq.Socket // DEALER
	mon      *zmq.Socket // PAIR fed by sock's monitor
	poller   *zmq.Poller

	ready          bool   // ZMTP handshake completed and not dropped since
	dropped        bool   // an established session was lost
	connectRetries int    // failed TCP connects (refused, unreachable)
	problem        string // latest handshake failure, if any
	refused        string // why the handshake can never succeed, if it cannot
	zapStatus      int    // the receiver's ZAP handler refused the client's key with this status
	failed         int    // handshakes that failed without detail
	idleSince      time.Time
}

// dial opens a DEALER with a monitor and starts connecting to t.
func (c *Client) dial(t Target) (*conn, error) {
	addr := fmt.Sprintf("inproc://cmbs-layers-monitor-%x-%d", c.nonce, c.mons.Add(1))
	return dialConn(c.zctx, t, c.cfg.Curve, c.cfg.MaxMessageSize, addr)
}

// poolKey names the idle pool of connections to t: a connection made with
// one server key is never reused for another.
func poolKey(t Target) string { return t.Endpoint + " " + t.Key }

// dialConn opens a DEALER in zctx with a monitor publishing on the inproc
// address monitor, and starts connecting to t; with keys, as a CURVE
// client presenting them to t.Key.
func dialConn(zctx *zmq.Context, t Target, keys *KeyPair, maxMessageSize int64, monitor string) (cn *conn, err error) {
	cn = &conn{endpoint: t.Endpoint, pool: poolKey(t), curve: keys != nil}
	defer func() {
		if err != nil {
			cn.close()
			cn = nil
		}
	}()
	if cn.sock, err = newSocket(zctx, zmq.DEALER); err != nil {
		return nil, err
	}
	if maxMessageSize > 0 {
		if err = cn.sock.SetMaxmsgsize(maxMessageSize); err != nil {
			return nil, fmt.Errorf("set MAXMSGSIZE: %w", err)
		}
	}
	if keys != nil {
		if err = curveClient(cn.sock, *keys, t.Key); err != nil {
			return nil, err
		}
	}
	// The monitor must be attached and its reader connected before Connect,
	// or the first connection failures would go unseen.
	if err = cn.sock.Monitor(monitor, monitoredEvents); err != nil {
		return nil, fmt.Errorf("monitor DEALER: %w", err)
	}
	if cn.mon, err = newSocket(zctx, zmq.PAIR); err != nil {
		return nil, err
	}
	if err = cn.mon.Connect(monitor); err != nil {
		return nil, fmt.Errorf("connect monitor: %w", err)
	}
	if err = cn.sock.Connect(t.Endpoint); err != nil {
		return nil, fmt.Errorf("connect %s: %w", t.Endpoint, osError(err))
	}
	cn.poller = zmq.NewPoller()
	cn.poller.Add(cn.sock, zmq.POLLIN)
	cn.poller.Add(cn.mon, zmq.POLLIN)
	return cn, nil
}

// curveClient makes sock a CURVE client presenting keys to the server
// whose public key is server.
func curveClient(sock *zmq.Socket, keys KeyPair, server string) error {
	if err := sock.SetCurveServerkey(server); err != nil {
		return fmt.Errorf("set CURVE_SERVERKEY: %w", err)
	}
	if err := sock.SetCurvePublickey(keys.Public); err != nil {
		return fmt.Errorf("set CURVE_PUBLICKEY: %w", err)
	}
	if err := sock.SetCurveSecretkey(keys.Secret); err != nil {
		return fmt.Errorf("set CURVE_SECRETKEY: %w", err)
	}
	return nil
}

// drainEvents applies every queued monitor event to the conn's state.
func (cn *conn) drainEvents() {
	for {
		ev, _, value, err := cn.mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		switch ev {
		case zmq.EVENT_HANDSHAKE_SUCCEEDED:
			cn.ready = true
			cn.problem = ""
		case zmq.EVENT_DISCONNECTED:
			if cn.ready {
				cn.dropped = true
			}
			cn.ready = false
		case zmq.EVENT_CONNECT_RETRIED:
			cn.connectRetries++
		case zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
			if problem, mismatch := protocolProblem(value); mismatch {
				cn.refused = problem
			} else {
				cn.problem = problem
			}
		case zmq.EVENT_HANDSHAKE_FAILED_AUTH:
			cn.zapStatus = value
			cn.refused = fmt.Sprintf("the receiver did not admit this client's CURVE key (ZAP status %d)", value)
		case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			cn.failed++
			cn.problem = "ZMTP handshake failed"
			if cn.curve {
				// A CURVE server that cannot open the client's HELLO
				// just closes the connection.
				cn.problem += " (the receiver may not hold the CURVE key it was dialled with)"
			}
		}
	}
}

// state describes the connection for an attempt cut short by the caller.
func (cn *conn) state() string {
	if cn.ready {
		return "connected, reply outstanding"
	}
	return "not connected yet"
}

// refusal is the error of a handshake that cannot succeed, or nil.
func (cn *conn) refusal() *Error {
	if cn.refused == "" {
		return nil
	}
	return &Error{Kind: KindAuth, Reason: cn.refused}
}

// timeoutError explains an attempt that ran out of time.
func (cn *conn) timeoutError(timeout time.Duration) *Error {
	if err := cn.refusal(); err != nil {
		return err
	}
	if cn.ready {
		return &Error{Kind: KindTimeout, Reason: fmt.Sprintf("connected, but no reply within %v", timeout)}
	}
	reason := fmt.Sprintf("no ZeroMQ connection established within %v", timeout)
	switch {
	case cn.problem != "":
		reason += ": " + cn.problem
	case cn.connectRetries > 0:
		reason += fmt.Sprintf(": %d connection attempts failed (refused or unreachable)", cn.connectRetries)
	}
	return &Error{Kind: KindUnreachable, Reason: reason}
}

// close releases both sockets. The monitor is stopped before the DEALER is
// closed: pebbe/zmq4 documents crashes when a context is terminated while a
// monitor is still attached.
func (cn *conn) close() {
	if cn.sock != nil {
		_ = cn.sock.Monitor("", 0)
	}
	if cn.mon != nil {
		_ = cn.mon.Close()
	}
	if cn.sock != nil {
		_ = cn.sock.Close()
	}
}
