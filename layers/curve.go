package layers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	zmq "github.com/pebbe/zmq4"
)

// KeyPair is a CURVE key pair (RFC 26), each key Z85-encoded in 40
// characters. The public key is what peers dial and admit; the secret key
// never leaves its holder.
type KeyPair struct {
	Public string
	Secret string
}

// NewKeyPair generates a key pair with libzmq's CSPRNG.
func NewKeyPair() (KeyPair, error) {
	if !zmq.HasCurve() {
		return KeyPair{}, errNoCurve
	}
	pub, sec, err := zmq.NewCurveKeypair()
	if err != nil {
		return KeyPair{}, fmt.Errorf("layers: new CURVE key pair: %w", err)
	}
	return KeyPair{Public: pub, Secret: sec}, nil
}

// KeyPairFromSecret derives the key pair of a Z85 secret key.
func KeyPairFromSecret(secret string) (KeyPair, error) {
	if err := CheckKey(secret); err != nil {
		return KeyPair{}, fmt.Errorf("secret key: %w", err)
	}
	if !zmq.HasCurve() {
		return KeyPair{}, errNoCurve
	}
	pub, err := zmq.AuthCurvePublic(secret)
	if err != nil {
		return KeyPair{}, fmt.Errorf("layers: derive the public key: %w", err)
	}
	return KeyPair{Public: pub, Secret: secret}, nil
}

// checkKeyPair refuses a key pair whose keys are malformed or do not
// belong together, before libzmq sees them.
func checkKeyPair(k KeyPair) error {
	if err := CheckKey(k.Public); err != nil {
		return fmt.Errorf("CURVE public key: %w", err)
	}
	derived, err := KeyPairFromSecret(k.Secret)
	if err != nil {
		return err
	}
	if derived.Public != k.Public {
		return errors.New("the CURVE public key is not the secret key's")
	}
	return nil
}

var errNoCurve = errors.New("layers: this libzmq was built without CURVE (libsodium); member security needs it")

// z85Alphabet is ZeroMQ's Z85 encoding alphabet (RFC 32).
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// KeyLen is the length of a Z85-encoded CURVE key.
const KeyLen = 40

// CheckKey reports why s is not a Z85-encoded 32-byte CURVE key, or nil.
// It decodes in Go, so a malformed key is an error rather than a libzmq
// assertion.
func CheckKey(s string) error {
	if len(s) != KeyLen {
		return fmt.Errorf("a CURVE key is %d Z85 characters, got %d", KeyLen, len(s))
	}
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := i; j < i+5; j++ {
			d := strings.IndexByte(z85Alphabet, s[j])
			if d < 0 {
				return fmt.Errorf("character %d (%q) is not Z85", j+1, s[j])
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return fmt.Errorf("characters %d-%d are not a Z85 group", i+1, i+5)
		}
	}
	return nil
}

// ShortKey abbreviates a key for logs and messages: enough to tell keys
// apart, short enough to read.
func ShortKey(key string) string {
	if len(key) <= 12 {
		return key
	}
	return key[:8] + "…" + key[len(key)-4:]
}

// CurveServer makes a [Receiver] a CURVE server.
type CurveServer struct {
	// Keys is the receiver's key pair: peers dial Keys.Public.
	Keys KeyPair
	// Admit decides whether the peer a handshake presents may connect: a
	// nil error admits it, an error refuses it (its text is the ZAP status
	// text, and the Refusal's reason). It runs on the receiver's socket
	// loop once per handshake, so it must be quick and must not block. Nil
	// admits every key: the traffic is encrypted, not authenticated.
	Admit func(Peer) error
}

// zapDomain is the ZAP domain of every CURVE receiver.
const zapDomain = "cmbs"

// zapEndpoint is where libzmq asks the ZAP handler of a context (RFC 27).
const zapEndpoint = "inproc://zeromq.zap.01"

// Peer is what a Receiver knows of a request's sender.
type Peer struct {
	// Key is the CURVE public key (Z85) the peer proved it holds in the
	// handshake; empty without CURVE.
	Key string
	// Address is the peer's IP address.
	Address string
}

type peerKey struct{}

// PeerFrom returns the sender of the request a Handler is running for.
// ok is false when the receiver does not speak CURVE: the sender is then
// unknown.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// WithPeer returns ctx carrying p as PeerFrom reads it, for code that calls
// a Handler itself (tests, replays).
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// RefusalCause says at which step a peer was turned away.
type RefusalCause uint8

// Refusal causes.
const (
	// RefusedKey: the handshake proved the peer's key and Admit refused it.
	RefusedKey RefusalCause = iota + 1
	// RefusedHandshake: the handshake failed before any key was proven:
	// the peer does not speak CURVE, or does not know the receiver's key.
	RefusedHandshake
)

func (c RefusalCause) String() string {
	switch c {
	case RefusedKey:
		return "untrusted key"
	case RefusedHandshake:
		return "handshake failed"
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Refusal is a peer a Receiver turned away.
type Refusal struct {
	Cause RefusalCause
	// Peer holds the key and address when the handshake got as far as
	// the key (RefusedKey); a failed handshake tells neither.
	Peer Peer
	// Reason explains the refusal.
	Reason string
}

// Target is a Receiver to send to: its endpoint and, when the Client
// speaks CURVE, its public key.
type Target struct {
	Endpoint string
	// Key is the receiver's CURVE public key (Z85). A CURVE client needs
	// it; a plain one ignores it.
	Key string
}

// handshakeCode reads a monitor event's value: ZAP status codes for auth
// failures, ZMTP protocol error codes for protocol failures.
const (
	protocolErrorCryptographic     = 0x11000001
	protocolErrorMechanismMismatch = 0x11000002
)

// protocolProblem explains a ZMTP protocol error a handshake failed with,
// and says whether it is a mismatch of the two sides' security (as
// opposed to a peer that is not ZeroMQ at all).
func protocolProblem(code int) (string, bool) {
	switch code {
	case protocolErrorMechanismMismatch:
		return "the two sides' security differs (one speaks CURVE, the other does not)", true
	case protocolErrorCryptographic:
		return "CURVE handshake failed: the peer does not hold the key it was dialled with, or does not know this receiver's key", true
	}
	return fmt.Sprintf("ZMTP handshake failed: protocol error 0x%x", code), false
}
