package layers

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Stream is a pipelined channel to one Receiver: requests go out without
// waiting for the replies to earlier ones, and each reply is matched to its
// request by id. It owns one DEALER socket, so its requests reach the
// receiver in the order they were sent, and a Receiver with PeerOrder
// handles them in that order.
//
// A Stream is not safe for concurrent use: one goroutine owns it, as the
// ZeroMQ guide has every socket owned, and closes it. It never retries: a
// request whose reply does not come is its owner's to send again, on a new
// Stream once the connection dropped (Recv says so), which is how a sender
// keeping its own sequence numbers gets at-least-once delivery in order.
type Stream struct {
	c     *Client
	cn    *conn
	nonce [8]byte
	seq   uint64
}

// StreamReply is the answer to one request sent on a Stream.
type StreamReply struct {
	// Seq is the number Send returned for the request.
	Seq uint64
	// Body is the handler's reply when Err is nil.
	Body []byte
	// Err is the receiver's refusal: KindRemote (the handler failed),
	// KindRefused (its queue was full) or KindProtocol.
	Err *Error
}

// OpenStream dials endpoint and returns a Stream to it: OpenStreamTo with
// no server key, which only a plain Client can use.
func (c *Client) OpenStream(endpoint string) (*Stream, error) {
	return c.OpenStreamTo(Target{Endpoint: endpoint})
}

// OpenStreamTo dials the Receiver t names and returns a Stream to it. It
// fails only for an invalid endpoint, a CURVE Client given no valid server
// key, a closed Client or a socket error: connecting goes on in the
// background, and requests sent meanwhile wait in the socket.
func (c *Client) OpenStreamTo(t Target) (*Stream, error) {
	endpoint := t.Endpoint
	if err := c.check(t, nil); err != nil {
		return nil, err
	}
	if !c.enter() {
		return nil, &Error{Endpoint: endpoint, Kind: KindClosed}
	}
	s := &Stream{c: c}
	if _, err := rand.Read(s.nonce[:]); err != nil {
		c.inflight.Done()
		return nil, &Error{Endpoint: endpoint, Kind: KindSocket, Err: fmt.Errorf("stream nonce: %w", err)}
	}
	cn, err := c.dial(t)
	if err != nil {
		c.inflight.Done()
		return nil, &Error{Endpoint: endpoint, Kind: KindSocket, Err: err}
	}
	s.cn = cn
	return s, nil
}

// Endpoint is the receiver the Stream sends to.
func (s *Stream) Endpoint() string { return s.cn.endpoint }

// Send queues payload for the receiver and returns the request's sequence
// number, which its StreamReply carries. It does not block: when the socket
// cannot take more (its peer is gone and the queue is full), it fails with
// KindUnreachable; a payload over the Client's MaxMessageSize fails with
// KindTooLarge, and the Stream stays usable.
func (s *Stream) Send(payload []byte) (uint64, error) {
	if max := s.c.cfg.MaxMessageSize; max > 0 && int64(len(payload)) > max {
		return 0, &Error{Endpoint: s.cn.endpoint, Kind: KindTooLarge, Reason: tooLarge(len(payload), max)}
	}
	s.seq++
	id := requestID(s.nonce, s.seq)
	if _, err := s.cn.sock.SendMessageDontwait([]byte{}, id, payload); err != nil {
		if isEAGAIN(err) {
			return 0, &Error{Endpoint: s.cn.endpoint, Kind: KindUnreachable, Reason: "send queue to peer is full"}
		}
		return 0, &Error{Endpoint: s.cn.endpoint, Kind: KindSocket, Reason: "send", Err: osError(err)}
	}
	return s.seq, nil
}

// Recv waits up to wait for the next reply. It returns nil, nil when none
// came in time. An error means the Stream is done: the connection dropped
// with requests possibly unanswered (KindDisconnected), the receiver
// refused the handshake (KindAuth), the Client closed (KindClosed), or the
// socket failed; close it and open another.
func (s *Stream) Recv(wait time.Duration) (*StreamReply, error) {
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-s.c.done:
			return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindClosed}
		default:
		}
		if rep, err := s.read(); rep != nil || err != nil {
			return rep, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		polled, err := s.cn.poller.Poll(min(left, cancelCheckInterval))
		if err != nil {
			return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindSocket, Reason: "poll", Err: osError(err)}
		}
		for _, p := range polled {
			if p.Socket != s.cn.mon {
				continue
			}
			s.cn.drainEvents()
			if err := s.cn.refusal(); err != nil {
				err.Endpoint = s.cn.endpoint
				return nil, err
			}
			if s.cn.dropped {
				return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindDisconnected, Reason: "peer closed the connection"}
			}
		}
	}
}

// read takes one reply off the socket, if one is there.
func (s *Stream) read() (*StreamReply, error) {
	frames, err := s.cn.sock.RecvMessageBytes(zmq.DONTWAIT)
	if err != nil {
		if isEAGAIN(err) {
			return nil, nil
		}
		return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindSocket, Reason: "receive", Err: osError(err)}
	}
	rep, err := parseReply(frames)
	if err != nil {
		return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindProtocol, Reason: err.Error()}
	}
	if string(rep.id[:8]) != string(s.nonce[:]) {
		return nil, &Error{Endpoint: s.cn.endpoint, Kind: KindProtocol, Reason: "reply to a request this stream did not send"}
	}
	out := &StreamReply{Seq: binary.BigEndian.Uint64(rep.id[8:])}
	switch rep.status {
	case statusOK:
		out.Body = rep.body
	case statusErr:
		out.Err = &Error{Endpoint: s.cn.endpoint, Kind: KindRemote, Reason: string(rep.body)}
	case statusBusy:
		out.Err = &Error{Endpoint: s.cn.endpoint, Kind: KindRefused, Reason: string(rep.body)}
	case statusBad:
		out.Err = &Error{Endpoint: s.cn.endpoint, Kind: KindProtocol, Reason: "receiver rejected request: " + string(rep.body)}
	default:
		out.Err = &Error{Endpoint: s.cn.endpoint, Kind: KindProtocol, Reason: fmt.Sprintf("unknown reply status %q", rep.status)}
	}
	return out, nil
}

// Connected reports whether the connection to the receiver is up: its
// ZeroMQ handshake done and not dropped since.
func (s *Stream) Connected() bool {
	s.cn.drainEvents()
	return s.cn.ready
}

// Stalled explains why replies have not come for as long as waited: the
// connection never came up (KindUnreachable, with what the monitor saw) or
// it is up and the receiver is silent (KindTimeout).
func (s *Stream) Stalled(waited time.Duration) *Error {
	s.cn.drainEvents()
	err := s.cn.timeoutError(waited)
	err.Endpoint = s.cn.endpoint
	return err
}

// Close closes the socket; replies still on their way are lost.
func (s *Stream) Close() {
	if s.cn == nil {
		return
	}
	s.cn.close()
	s.cn = nil
	s.c.inflight.Done()
}
