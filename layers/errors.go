package layers

import (
	"errors"
	"fmt"
	"syscall"

	zmq "github.com/pebbe/zmq4"
)

// Receiver lifecycle errors.
var (
	// ErrAlreadyRunning is returned by [Receiver.Start] on a running receiver.
	ErrAlreadyRunning = errors.New("layers: receiver already running")
	// ErrNotRunning is returned by [Receiver.Close] on a receiver that is not
	// running (never started, or already closed).
	ErrNotRunning = errors.New("layers: receiver not running")
)

// Sentinels matched by [*Error] through errors.Is, one per [Kind], so callers
// can write errors.Is(err, layers.ErrTimeout) without a type assertion.
var (
	ErrTimeout      = errors.New("layers: timeout")
	ErrUnreachable  = errors.New("layers: unreachable")
	ErrDisconnected = errors.New("layers: disconnected")
	ErrRefused      = errors.New("layers: refused")
	ErrRemote       = errors.New("layers: remote handler error")
	ErrProtocol     = errors.New("layers: protocol error")
	ErrCanceled     = errors.New("layers: canceled")
	ErrClosed       = errors.New("layers: client closed")
	ErrSocket       = errors.New("layers: socket error")
	ErrAuth         = errors.New("layers: authentication failed")
	ErrTooLarge     = errors.New("layers: message too large")
)

// Kind classifies why a request was not delivered, so that the broker can
// explain every failed delivery.
type Kind uint8

// Failure kinds. Timeout, Unreachable and Disconnected mean the message may not
// have reached the handler; Remote means it did and the handler failed;
// Refused means the receiver saw it and declined to run the handler.
const (
	// KindTimeout: a ZeroMQ connection was up but no reply arrived in time.
	KindTimeout Kind = iota + 1
	// KindUnreachable: no ZeroMQ connection could be established (nothing
	// listening, connection refused, handshake failed, bad host).
	KindUnreachable
	// KindDisconnected: the peer dropped the connection while the reply was
	// outstanding.
	KindDisconnected
	// KindRefused: the receiver's queue was full and it rejected the request
	// without running the handler.
	KindRefused
	// KindRemote: the receiver's handler returned an error; Reason holds its
	// message.
	KindRemote
	// KindProtocol: the peer answered with frames this package cannot decode,
	// or rejected our request as malformed.
	KindProtocol
	// KindCanceled: the caller's context ended first; Err holds ctx.Err().
	KindCanceled
	// KindClosed: the Client was closed.
	KindClosed
	// KindInvalidEndpoint: the endpoint failed [ValidateConnectEndpoint].
	KindInvalidEndpoint
	// KindSocket: a local ZeroMQ call failed (e.g. out of file descriptors).
	KindSocket
	// KindAuth: the security handshake cannot succeed: the receiver did
	// not admit this client's CURVE key, the two sides' security differs
	// (one speaks CURVE, the other does not), or no key is known for the
	// receiver. The request was not delivered.
	KindAuth
	// KindTooLarge: the payload exceeds the Client's MaxMessageSize, so it
	// was not sent (a receiver with the same limit would drop the
	// connection rather than read it).
	KindTooLarge
)

var kindNames = [...]string{
	KindTimeout:         "timeout",
	KindUnreachable:     "unreachable",
	KindDisconnected:    "disconnected",
	KindRefused:         "refused",
	KindRemote:          "remote error",
	KindProtocol:        "protocol error",
	KindCanceled:        "canceled",
	KindClosed:          "client closed",
	KindInvalidEndpoint: "invalid endpoint",
	KindSocket:          "socket error",
	KindAuth:            "authentication failed",
	KindTooLarge:        "too large",
}

// String returns a short lower-case name for the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) sentinel() error {
	switch k {
	case KindTimeout:
		return ErrTimeout
	case KindUnreachable:
		return ErrUnreachable
	case KindDisconnected:
		return ErrDisconnected
	case KindRefused:
		return ErrRefused
	case KindRemote:
		return ErrRemote
	case KindProtocol:
		return ErrProtocol
	case KindCanceled:
		return ErrCanceled
	case KindClosed:
		return ErrClosed
	case KindInvalidEndpoint:
		return ErrInvalidEndpoint
	case KindSocket:
		return ErrSocket
	case KindAuth:
		return ErrAuth
	case KindTooLarge:
		return ErrTooLarge
	}
	return nil
}

// retryable reports whether a fresh attempt on a fresh socket may succeed.
// Remote, refused and protocol failures come from a live receiver that has
// already decided; repeating the request would only repeat the answer.
func (k Kind) retryable() bool {
	return k == KindTimeout || k == KindUnreachable || k == KindDisconnected
}

// Error describes a request that was not acknowledged by its receiver.
type Error struct {
	// Endpoint is the receiver the request was addressed to.
	Endpoint string
	// Kind says why the request failed.
	Kind Kind
	// Attempts is how many times the request was sent (0 if never).
	Attempts int
	// Reason is a human-readable explanation; for KindRemote it is exactly
	// the message of the error returned by the remote handler.
	Reason string
	// Err is the underlying cause, if any (ctx.Err(), a socket error).
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("layers: request to %s: %s", e.Endpoint, e.Kind)
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil && e.Kind != KindCanceled {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause so errors.Is(err, context.Canceled)
// and similar checks work.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel for e.Kind (ErrTimeout, ErrRemote, ...).
func (e *Error) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// zmqHausnumero is libzmq's base for its own error numbers; values below it
// are plain errno values.
const zmqHausnumero = 156384712

// osError converts a libzmq errno that is really an OS errno into a
// syscall.Errno, so callers can test errors.Is(err, syscall.EADDRINUSE).
func osError(err error) error {
	var en zmq.Errno
	if errors.As(err, &en) && en > 0 && en < zmqHausnumero {
		return syscall.Errno(en)
	}
	return err
}

// isEAGAIN reports whether a non-blocking socket call found nothing to do.
func isEAGAIN(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN)
}
