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
	sock     *zmq.Socket // DEALER
	mon      *zmq.Socket // PAIR fed by sock's monitor
	poller   *zmq.Poller

	ready          bool   // ZMTP handshake completed and not dropped since
	dropped        bool   // an established session was lost
	connectRetries int    // failed TCP connects (refused, unreachable)
	problem        string // latest handshake failure, if any
	idleSince      time.Time
}

// dial opens a DEALER with a monitor and starts connecting to endpoint.
func (c *Client) dial(endpoint string) (*conn, error) {
	addr := fmt.Sprintf("inproc://cmbs-layers-monitor-%x-%d", c.nonce, c.mons.Add(1))
	return dialConn(c.zctx, endpoint, c.cfg.MaxMessageSize, addr)
}

// dialConn opens a DEALER in zctx with a monitor publishing on the inproc
// address monitor, and starts connecting to endpoint.
func dialConn(zctx *zmq.Context, endpoint string, maxMessageSize int64, monitor string) (cn *conn, err error) {
	cn = &conn{endpoint: endpoint}
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
	if err = cn.sock.Connect(endpoint); err != nil {
		return nil, fmt.Errorf("connect %s: %w", endpoint, osError(err))
	}
	cn.poller = zmq.NewPoller()
	cn.poller.Add(cn.sock, zmq.POLLIN)
	cn.poller.Add(cn.mon, zmq.POLLIN)
	return cn, nil
}

// drainEvents applies every queued monitor event to the conn's state.
func (cn *conn) drainEvents() {
	for {
		ev, _, _, err := cn.mon.RecvEvent(zmq.DONTWAIT)
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
			cn.problem = "ZMTP handshake failed: peer does not speak the ZeroMQ protocol"
		case zmq.EVENT_HANDSHAKE_FAILED_AUTH:
			cn.problem = "ZMTP handshake failed: authentication rejected"
		case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			cn.problem = "ZMTP handshake failed"
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

// timeoutError explains an attempt that ran out of time.
func (cn *conn) timeoutError(timeout time.Duration) *Error {
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
