package xapp

// Metrics describes the cmbs_* metrics /metrics exposes, for the
// descriptor's metrics section: objectName groups them by the part of
// cmbs they measure, objectInstance and name are the Prometheus name.
// TestMetricsMatchServer keeps the list equal, name and type, to what a
// running server exposes.
func Metrics() []Metric {
	m := func(object, name, typ, desc string) Metric {
		return Metric{ObjectName: object, ObjectInstance: name, Name: name, Type: typ, Description: desc}
	}
	const (
		http   = "CmbsHTTP"
		store  = "CmbsStore"
		layers = "CmbsLayers"
		member = "CmbsMembers"
	)
	return []Metric{
		m(http, "cmbs_http_requests_total", "counter", "HTTP requests answered, by route, method and status code."),
		m(http, "cmbs_http_request_duration_seconds", "histogram", "Time taken to answer HTTP requests, by route and method."),
		m(http, "cmbs_http_requests_in_flight", "gauge", "HTTP requests being answered."),
		m(store, "cmbs_store_operations_total", "counter", "Store operations made, by operation and backend."),
		m(store, "cmbs_store_errors_total", "counter", "Store operations that failed, by operation and backend."),
		m(store, "cmbs_store_operation_duration_seconds", "histogram", "Time store operations took, by operation and backend."),
		m(layers, "cmbs_layer_messages_sent_total", "counter", "Messages this member started sending, by layer."),
		m(layers, "cmbs_layer_messages_received_total", "counter", "Messages that reached this member as a destination, by layer."),
		m(layers, "cmbs_layer_messages_forwarded_total", "counter", "Messages this member passed on towards other members, by layer."),
		m(layers, "cmbs_layer_messages_failed_total", "counter", "Destinations that messages sent from this member did not reach, by layer."),
		m(layers, "cmbs_layer_delivery_duration_seconds", "histogram", "Time from a send's start to its recorded outcome, by layer."),
		m(layers, "cmbs_layer_receiver_running", "gauge", "Whether the layer's receiver is bound and serving (1) or not (0)."),
		m(layers, "cmbs_layer_peers_refused_total", "counter", "Peers a layer receiver of this member turned away, by layer and reason (untrusted_key, handshake, identity)."),
		m(layers, "cmbs_layer_refused_by_peers_total", "counter", "Connections of this member that a peer's receiver refused, by layer."),
		m(member, "cmbs_members_known", "gauge", "Members other than the local one that this server knows of."),
		m(member, "cmbs_members_reachable", "gauge", "Known members whose latest exchange with this member succeeded."),
	}
}
