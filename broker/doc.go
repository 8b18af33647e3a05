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
// # Liveness and routes
//
// Discovery runs on demand (check_neighbors), every DiscoveryInterval with
// jitter, and when L1 starts; between runs, heartbeats keep the routes
// current. Every HeartbeatInterval (1 s by default) a member exchanges a
// describe with each direct neighbour, carrying its routes as path vectors:
// for each member it reaches, the path there. A member keeps, per
// destination, the paths its neighbours advertise, refuses any through
// itself (so no loop forms) and routes along the shortest one whose first
// hop is up; the record of each member says via, distance and reachable. A
// neighbour silent for three heartbeats is down: its routes go, member_down
// is reported (and member_up when it answers again), and the outbox entries
// waiting on it move to the next hop another path gives, committed before
// they leave the dead hop's stream, so a route change loses nothing. A
// member with no route for ForgetAfter (24 h by default) is forgotten: its
// record is deleted and the log says so.
//
// # Messages
//
// A message (http://houssem.org/cmbs#message, at /cmbs/message/) has
// cmbs.message.{cmbs_layer, executable, sendable, storable, path_history,
// message_content, result, l1_socket_receiver_member, providers, topics}
// plus hop_limit (default 32), origin, executed and delivery. Its content may
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
// A send answers 202 with the message's Location once the send is
// committed (see Delivery guarantees); it is refused with 400 when the
// message is not sendable, lacks the layer's mixin, declares another
// cmbs_layer or has an unreadable attribute (expires, a flag), with 409
// when the server has no local member, and with 503 while the member is
// terminating (Drain). cmbs.message.send_on_create "True" makes a create
// send the message on its cmbs_layer as well, in the create's commit; a
// POST of many such messages creates and queues them all in one commit.
// With Prefer: wait=N (RFC 7240), an L1 send, or the create of an L1
// message that sends on create, answers once the reply is recorded or N
// seconds passed (capped by Config.MaxWait), with the outcome and result
// and Preference-Applied.
//
// The outcome is kept in delivery: state (pending, then done), the expiry,
// counts by status, and per destination its status (pending, forwarded,
// delivered, failed, expired) with the endpoint, the path, via, whether it
// was stored, a duplicate or executed, the result, the attempts, or the
// reason it failed. A reader of a pending message sees why a destination
// waits (the next hop unreachable since when, after how many attempts).
//
// Each receiver stores the message as a message resource with the same id,
// path_history extended with its own id. A message arriving again (a
// retry, a second path, a second send) is acknowledged as a duplicate and
// neither stored nor run again: the stored copy, or for a non-storable
// message a record of its id kept until it expires, says it was taken. An
// executable message is run on arrival (Executor is the hook for
// application handlers; the default records it and echoes its content).
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
// its record names (see Liveness and routes): the sender queues one entry per next hop naming the
// final destinations; each hop takes what is for it and queues the rest for
// its own next hops, in the commit that acknowledges the entry (custody:
// the sender's outcome says forwarded). The destination sends a receipt back
// to the origin, which makes the outcome final; a hop that cannot reach a
// destination before the message expires sends a receipt saying so. Loops
// are refused (a member already in path_history does not forward again) and
// hop_limit bounds the path.
//
// # Delivery guarantees
//
// A 202 (or a 201 for a create that sends) is a promise: the message's
// pending delivery and one outbox entry per next hop are committed in one
// store transaction before the answer. One deliverer per peer and layer
// drains the outbox over a layers.Stream, keeping up to Config.Window
// entries in flight in batches of Config.Batch, numbered within a session
// the receiver opens; the receiver takes a session's batches in order,
// commits each in one transaction (messages, seen records, entries it
// forwards) and only then acknowledges. An entry not acknowledged (peer
// down, connection lost, ack timeout) is sent again after a capped
// exponential backoff with jitter, across restarts of either side, until
// the message expires (cmbs.message.expires, an RFC 3339 time or a
// duration from the send; Config.Expiry by default): the destination is
// then expired and a delivery_failed event fires. Entries to one peer go in
// the order they were accepted, so a member that was down gets what was
// sent meanwhile, in order. On start the broker resumes every entry.
// Outcomes are folded into the messages by one recorder, many per commit,
// a lone one at once. Delivery is at least once on the wire and once in
// effect: duplicates are recognised by message id.
//
//	L1     to one member by socket: its reply, the result, comes back with the acknowledgement
//	L2     to every known member, one entry per next hop
//	L3.1   as L2, to members selected by provider
//	L3.2   as L2, to members selected by topic
//	L4     as L2, to members selected by provider and topic
//
// PUB/SUB was rejected for L2–L4: it silently drops what is published
// before a subscriber connects. Discovery stays request/reply with retries
// (the ZeroMQ guide's Lazy Pirate). A receiver whose queue is full answers
// BUSY at once; the sender pauses and sends again in order.
package broker
