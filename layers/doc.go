// Package layers moves opaque byte messages between cmbs broker members over
// ZeroMQ. It knows nothing about OCCI, storage or broker semantics: the broker
// decides what the bytes mean and what to answer.
//
// # Topology
//
// Every member binds one [Receiver] (a ROUTER socket) per layer endpoint and
// sends to other members with a [Client] (DEALER sockets that connect). L1's
// request/reply, L2's broadcast and L3/L4's selective sends all map onto the
// same primitive: [Client.Request] to one endpoint, or [Client.Broadcast] to
// many in parallel.
//
// # Delivery
//
// PUB/SUB drops messages silently when a subscriber is slow or absent. The
// broker needs to explain every delivery, so each request is acknowledged at
// the application level: the receiver's handler produces the reply bytes (an
// ack, or an L1 answer) and the request only counts as delivered once that
// reply arrives. Otherwise the client reports a typed [*Error] whose [Kind]
// says why: the peer was unreachable, it connected but did not answer in
// time, it dropped the connection, it refused the work because its queue was
// full, or its handler returned an error.
//
// Retries follow the ZeroMQ guide's Lazy Pirate pattern: when an attempt times
// out the client closes its socket (LINGER 0, so queued frames to a dead peer
// are discarded instead of being delivered late), opens a fresh one and sends
// again, up to [ClientConfig.Attempts] times. Delivery is therefore
// at-least-once: a handler can see the same payload twice if a reply was lost,
// so broker handlers should be idempotent.
//
// # Wire format
//
// A request travels as three frames from the DEALER:
//
//	""  request-id  payload
//
// and the ROUTER sees them prefixed with the routing envelope (one identity
// frame per hop). The empty delimiter frame separates the envelope from the
// body exactly as a REQ socket would, so ROUTER/DEALER proxies can be placed
// between members without changing either side. The reply repeats the
// envelope and request id:
//
//	""  request-id  status  body
//
// where status is "OK" (body is the handler's reply), "ERR" (body is the
// handler's error message), "BUSY" (the receiver's queue was full) or "BAD"
// (the request was malformed). The request id is unique per attempt, so a
// client discards any reply that does not answer the attempt it is waiting
// for.
//
// # Security
//
// Plain sockets hear anyone who reaches them. With [ReceiverConfig.Curve]
// a Receiver is a CURVE server (RFC 26): every connection is encrypted and
// its client proves it holds a key pair, and a ZAP handler (RFC 27) that
// the Receiver's loop answers asks [CurveServer.Admit] whether that key
// may connect. Handlers then read the sender's key with [PeerFrom], so the
// code above can bind what a request claims to who sent it. A Client with
// [ClientConfig.Curve] dials each receiver at the public key its [Target]
// names; [Client.FindKey] tells which of a set of keys a receiver at a
// socket holds. Handshakes that fail (an untrusted key, a peer without
// CURVE, a wrong key) never reach a handler: the Receiver reports them
// through [ReceiverConfig.OnRefused], and the client gets [KindAuth].
//
// MaxMessageSize bounds every frame on both sides before it is read into
// memory: libzmq drops a connection whose peer announces a larger frame,
// and a Client refuses to send one ([KindTooLarge]).
//
// # Ownership
//
// ZeroMQ sockets are not safe for concurrent use. Every socket in this package
// has exactly one owning goroutine at a time: the Receiver's loop owns the
// ROUTER; its workers pass replies back on a Go channel and each owns the
// inproc PUSH socket it uses to wake the loop out of zmq_poll; the loop also
// owns the ZAP handler's REP socket and the ROUTER's monitor; a Client socket
// is owned by the Request call that checked it out of the idle pool
// (ownership passes through the pool's mutex).
package layers
