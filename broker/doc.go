// Package broker makes cmbs a message broker: the member and message kinds,
// their providers (cmbs_member, cmbs_message) and the ZeroMQ layers that
// carry messages between members. Members learn of each other over L1
// (recursive discovery) and deliver messages on L2 (to all), L3.1 (by
// provider), L3.2 (by topic) and L4 (by both), forwarding hop by hop to
// members that are not direct neighbours. The names and JSON shapes that
// travel between server and clients are in [github.com/houssem/cmbs/broker/api].
//
// # Members
//
// A member (http://houssem.org/cmbs#member, at /cmbs/member/) has
// cmbs.member.{state, local, l1_socket, l2_socket, l31_socket, l32_socket,
// l4_socket, neighbors_socket, topics, providers}; the broker adds layers
// (each receiver's state), neighbors_state (the last discovery's outcome per
// socket) and, on members learned from the network, via (next hop),
// distance and last_seen. The original's spellings l3.1_socket and
// start_l3.1 are aliases of the same attributes and actions.
//
// Exactly one member per server is local (local "true"); a second is
// refused with 409. Its socket attributes are where its receivers bind and
// what other members dial, so a member bound on tcp://*:port cannot be
// dialled (peers refuse its description and say why). Its actions:
//
//	start_l1 … start_l4   bind that layer's receiver (409 if running or the socket cannot be bound)
//	stop_l1 … stop_l4     close it: socket closed, goroutine gone, port free (409 if not running)
//	check_neighbors       discovery; answers with the members found and the sockets unreachable
//
// Running layers are recorded on the member and restarted when the server
// restarts.
//
// # Discovery
//
// Discovery is an L1 exchange with each socket in neighbors_socket: the
// neighbour answers with its description and the members it knows, records
// the asker, and discovery goes on with the sockets newly learned, level by
// level, in parallel (at most 32 at once), until none is left. Members
// answering directly are direct neighbours; members only learned of through
// another are recorded with via that member, and messages to them are
// forwarded. An unreachable neighbour costs one request timeout (3 s by
// default: three attempts of 1 s, Lazy Pirate style), is logged and appears
// in neighbors_state; it blocks nobody else.
//
// # Messages
//
// A message (http://houssem.org/cmbs#message, at /cmbs/message/) has
// cmbs.message.{cmbs_layer, executable, sendable, storable, path_history,
// message_content, result, l1_socket_receiver_member, providers, topics}
// plus hop_limit (default 8), origin, executed and delivery. Its content may
// be any JSON value; the flags take booleans or "True"/"False" in any case.
// The built-in kinds' types and patterns accept every value the original's
// files send, so strict validation refuses only what is really wrong.
//
//	send_l1    to the member whose L1 socket is l1_socket_receiver_member: request/reply, the reply written into result
//	send_l2    to every known member
//	send_l31   to members whose providers include one of the message's
//	send_l32   to members subscribed to a topic matching one of the message's
//	send_l4    to members matching both
//	execute    run the message here (result and executed recorded)
//
// A send answers 202 with the message's Location; it is refused with 400
// when the message is not sendable, lacks the layer's mixin or declares
// another cmbs_layer, and with 409 when the server has no local member.
// The outcome is recorded in delivery: state, counts by status, and per
// destination its status with the endpoint, the path, via, whether it was
// stored, a duplicate or executed, the result, or the reason it failed.
//
// Each receiver stores the message as a message resource with the same id,
// path_history extended with its own id. A message arriving again (a retry,
// a second send) is acknowledged as a duplicate and stored once. A
// non-storable message is delivered and counted but not stored; an
// executable one is executed on arrival (Executor is the hook for
// application handlers; the default records it and echoes its content). L1
// requests are executed on every arrival, since the reply is their point.
//
// # Topics
//
// Topics are dot-separated subjects, as in NATS: in a member's subscription
// "*" (or MQTT's "+") matches one token and a final ">" (or "#") one or more;
// weather.* matches weather.paris but not weather or weather.paris.temp,
// which weather.> matches. Matching is exact and case-sensitive otherwise.
//
// # Forwarding
//
// A member that is not a direct neighbour is reached through the via member
// discovery recorded: the sender makes one request per next hop naming the
// final destinations; each hop delivers what is for it and forwards the
// rest the same way. Loops are refused (a member already in path_history
// does not forward again), hop_limit bounds the path, and the whole
// delivery has a deadline (10 s by default) that each hop passes on, so a
// dead member far away is reported failed rather than waited for.
// Acknowledgements are end to end: the sender's outcome says whether the
// final destination stored the message.
//
// # Delivery guarantees
//
// Every layer uses the same transport ([github.com/houssem/cmbs/layers]):
// the receiver binds a ROUTER, the sender connects a DEALER and waits for an
// application-level acknowledgement, with a request id per attempt; on a
// timeout the socket is closed, reopened and the request sent again (the
// ZeroMQ guide's Lazy Pirate). One goroutine owns each receiver socket;
// handlers run in a bounded pool. PUB/SUB was rejected for L2–L4: it
// silently drops what is published before a subscriber connects.
//
//	L1     ROUTER/DEALER request/reply; at-least-once request, the reply is the acknowledgement,
//	       late replies discarded; a member down fails after the attempts with unreachable or timeout
//	L2     acknowledged requests, one per member, in parallel; at-least-once to every known member,
//	       deduplicated by message id at the receiver, so effectively once; outcome per member
//	L3.1   as L2, to members selected by provider
//	L3.2   as L2, to members selected by topic
//	L4     as L2, to members selected by provider and topic
//
// A receiver whose queue is full answers BUSY at once (reported as refused)
// rather than letting senders time out. Every stored message is committed
// on the receiver before the acknowledgement, and the sender records the
// pending state and the outcome.
package broker
