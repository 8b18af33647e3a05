// Package notify tells clients what happens in cmbs: entities created,
// updated and deleted (from the store's change feed) and messages received
// or not delivered (from the broker). Clients subscribe in two ways, with
// the same events and filters:
//
//   - a subscription resource (kind http://houssem.org/cmbs#subscription at
//     /cmbs/subscription/) whose matching events are POSTed to its callback
//     URL, signed with HMAC-SHA256 when it has a secret, retried with
//     exponential backoff, in the manner of MEC subscriptions;
//   - the stream of Handler (GET /events), filtered by query parameters, for
//     clients that cannot expose a callback: a WebSocket, or Server-Sent
//     Events for a plain GET accepting text/event-stream (curl -N).
//
// Nothing blocks the request or delivery paths: each subscription has a
// bounded queue and one worker, and each stream a bounded buffer. Events
// are not persisted: those queued when the server stops are lost, and
// servers sharing one CouchDB database each run the same subscriptions.
//
// # Events and filters
//
// created, updated and deleted come from any entity written to the store;
// message_received from a message reaching this member (duplicates are not
// reported again); delivery_failed from a send that did not reach a
// destination (one event per destination). The broker's events add layer,
// member, from, and for failures reason, endpoint and via. An event's id is
// the same on every retry, so receivers can drop repeats.
//
// Filters, all optional, those given must all match: kind (an OCCI kind
// id), location (a path prefix), topics (any, in the broker's topic syntax,
// matching the entity's topics), providers (any), events (among the five).
//
// # Subscriptions
//
// Attributes under cmbs.subscription.: callback (required, http or https),
// the filter fields, expires (RFC 3339), secret (always rendered ********),
// and read-only state (active, failing, expired), delivered, failed,
// dropped, last_error and last_delivery. Each matching event is POSTed as
// JSON with X-CMBS-Event, X-CMBS-Event-Id, X-CMBS-Subscription and, with a
// secret, X-CMBS-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed
// with the secret>. Any 2xx is a success. A failure (transport error,
// non-2xx, redirect) is retried with exponential backoff, 5 tries pausing
// 0.5, 1, 2 and 4 s; an event given up on counts as failed and makes the
// subscription failing (state and last_error), where it gets one try per
// event until one succeeds or the subscription is updated. Events go out
// one at a time per subscription, in order; each queues up to 256, and an
// event finding the queue full counts as dropped.
//
// # The stream
//
// Over WebSocket one event is one text frame. The server pings every 25 s
// and drops clients silent for 60 s; a client that lets its 256-event
// buffer fill is closed with 1008 ("too slow"), and on shutdown streams
// close with 1001. As Server-Sent Events each event is an "id:", "event:"
// and "data:" block (data is the event's JSON); a client reconnecting with
// Last-Event-ID gets the events it missed while they are kept (the latest
// Config.History, 1024 by default), else a "gap" event first; a slow
// client gets an "error" event and shutdown a "close" event. An invalid
// filter answers 400 naming the parameter; a plain GET accepting neither
// 426.
package notify
