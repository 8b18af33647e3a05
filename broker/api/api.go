// Package api is the broker's wire contract with its clients: the
// identifiers and locations of the member, message and subscription kinds,
// the layers, the attribute names, and the JSON shapes the broker writes
// into entities and reads from them (a member's description, a message's
// fields, a send's delivery outcome).
//
// It imports nothing of cmbs, so the server, the cmbs command-line client
// and any Go program talking to a cmbs server share one definition and
// cannot drift apart. Values travel as OCCI attributes, nested by the dots
// of their names ({"cmbs":{"message":{"topics":[…]}}}); MemberFromAttributes
// and MessageFromAttributes read them once, checking each field, and
// Member.Attributes and Message.Attributes write them back.
package api

import "strings"

// The query interface, where categories are registered and listed.
const QueryInterface = "/-/"

// Category identifiers, locations and provider names of the broker's kinds.
const (
	// Scheme is the scheme of the broker's kinds and of the layer mixins.
	Scheme = "http://houssem.org/cmbs#"

	MemberKind       = Scheme + "member"
	MessageKind      = Scheme + "message"
	SubscriptionKind = Scheme + "subscription"

	MemberLocation       = "/cmbs/member/"
	MessageLocation      = "/cmbs/message/"
	SubscriptionLocation = "/cmbs/subscription/"

	// MemberActions and MessageActions are the schemes of the kinds'
	// actions: MemberActions+"check_neighbors", MessageActions+"send_l2".
	MemberActions  = "http://houssem.org/cmbs/member/action#"
	MessageActions = "http://houssem.org/cmbs/message/action#"

	// Provider names, as the original's put_provider files attach them.
	MemberProvider       = "cmbs_member"
	MessageProvider      = "cmbs_message"
	SubscriptionProvider = "cmbs_subscription"
)

// Action terms of the member and message kinds that name no layer.
const (
	ActionCheckNeighbors = "check_neighbors"
	ActionExecute        = "execute"
)

// Layer names one of the broker's ZeroMQ layers.
type Layer string

// The layers, by the names their actions and mixins use.
const (
	L1  Layer = "l1"
	L2  Layer = "l2"
	L31 Layer = "l31"
	L32 Layer = "l32"
	L4  Layer = "l4"
)

// Layers lists every layer in order.
func Layers() []Layer { return []Layer{L1, L2, L31, L32, L4} }

// ParseLayer reads a layer name. The original's spellings "l3.1" and
// "l3.2" are accepted for l31 and l32.
func ParseLayer(s string) (Layer, bool) {
	s = strings.ReplaceAll(s, ".", "")
	for _, l := range Layers() {
		if string(l) == s {
			return l, true
		}
	}
	return "", false
}

// SocketAttr is the member attribute holding the layer's endpoint.
func (l Layer) SocketAttr() string { return "cmbs.member." + string(l) + "_socket" }

// Mixin is the message mixin that lets a message go out on the layer.
func (l Layer) Mixin() string { return Scheme + string(l) }

// SendAction is the term of the message action that sends on the layer.
func (l Layer) SendAction() string { return "send_" + string(l) }

// StartAction and StopAction are the terms of the member actions that
// start and stop the layer's receiver.
func (l Layer) StartAction() string { return "start_" + string(l) }

// StopAction: see StartAction.
func (l Layer) StopAction() string { return "stop_" + string(l) }

// Member attribute names.
const (
	MemberState          = "cmbs.member.state"
	MemberLocal          = "cmbs.member.local"
	MemberNeighbors      = "cmbs.member.neighbors_socket"
	MemberTopics         = "cmbs.member.topics"
	MemberProviders      = "cmbs.member.providers"
	MemberLayers         = "cmbs.member.layers"
	MemberNeighborsState = "cmbs.member.neighbors_state"
	MemberVia            = "cmbs.member.via"
	MemberDistance       = "cmbs.member.distance"
	MemberLastSeen       = "cmbs.member.last_seen"
	// MemberPublicKey is the member's CURVE public key (Z85), read-only:
	// the local member's is its server's key, the others' were learned in
	// discovery from the members themselves.
	MemberPublicKey = "cmbs.member.public_key"
	// MemberMaxMessageBytes is the largest layer message the member
	// accepts (its max_message_bytes), read-only like the key: senders cut
	// their requests to it.
	MemberMaxMessageBytes = "cmbs.member.max_message_bytes"
	// MemberReachable says whether this server has a route to the member
	// ("true"/"false"), kept current by the heartbeats.
	MemberReachable = "cmbs.member.reachable"
)

// Layer receiver states, as a local member's layers attribute shows them.
const (
	LayerRunning = "running"
	LayerStopped = "stopped"
)

// Message attribute names.
const (
	MessageLayer        = "cmbs.message.cmbs_layer"
	MessageExecutable   = "cmbs.message.executable"
	MessageSendable     = "cmbs.message.sendable"
	MessageStorable     = "cmbs.message.storable"
	MessagePath         = "cmbs.message.path_history"
	MessageContent      = "cmbs.message.message_content"
	MessageResult       = "cmbs.message.result"
	MessageReceiver     = "cmbs.message.l1_socket_receiver_member"
	MessageProviders    = "cmbs.message.providers"
	MessageTopics       = "cmbs.message.topics"
	MessageHopLimit     = "cmbs.message.hop_limit"
	MessageDelivery     = "cmbs.message.delivery"
	MessageExecuted     = "cmbs.message.executed"
	MessageOrigin       = "cmbs.message.origin"
	MessageExpires      = "cmbs.message.expires"
	MessageSendOnCreate = "cmbs.message.send_on_create"
)

// DefaultHopLimit bounds forwarding when a message sets no hop_limit.
const DefaultHopLimit = 32

// Subscription attribute names.
const (
	SubscriptionCallback     = "cmbs.subscription.callback"
	SubscriptionKindFilter   = "cmbs.subscription.kind"
	SubscriptionLocationPath = "cmbs.subscription.location"
	SubscriptionTopics       = "cmbs.subscription.topics"
	SubscriptionProviders    = "cmbs.subscription.providers"
	SubscriptionEvents       = "cmbs.subscription.events"
	SubscriptionExpires      = "cmbs.subscription.expires"
	SubscriptionSecret       = "cmbs.subscription.secret"
	SubscriptionState        = "cmbs.subscription.state"
	SubscriptionDelivered    = "cmbs.subscription.delivered"
	SubscriptionFailed       = "cmbs.subscription.failed"
	SubscriptionDropped      = "cmbs.subscription.dropped"
	SubscriptionLastError    = "cmbs.subscription.last_error"
	SubscriptionLastDelivery = "cmbs.subscription.last_delivery"
)

// Subscription states.
const (
	SubscriptionActive  = "active"
	SubscriptionFailing = "failing"
	SubscriptionExpired = "expired"
)

// Event types, as subscriptions and /events name them.
const (
	EventCreated         = "created"
	EventUpdated         = "updated"
	EventDeleted         = "deleted"
	EventMessageReceived = "message_received"
	EventDeliveryFailed  = "delivery_failed"
)
