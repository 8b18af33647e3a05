// Package ops gives a cmbs server what operators run it by: liveness and
// readiness probes (GET /health/alive, GET /health/ready), Prometheus
// metrics (GET /metrics) and the HTTP middleware that counts requests.
//
// The probes and /metrics are served ahead of authentication: orchestrators
// and scrapers call them without credentials, and they reveal no stored
// data, only check names, states and counters. Keep the port off untrusted
// networks, or filter /metrics at a proxy.
//
// /health/alive answers 200 whenever the process serves HTTP; it never looks
// at the store, so a store outage does not get the server restarted.
// /health/ready answers 200 when every check passes and 503 otherwise, the
// body naming each check and its state: "store" (the store answers and
// accepts a write of health:probe:<hostname>) and "layer <l>" for each
// layer the local member records as running. cmbs health asks it and exits
// 0 only when ready.
//
// The metrics: cmbs_http_requests_total (route, method, code),
// cmbs_http_request_duration_seconds, cmbs_http_requests_in_flight,
// cmbs_store_operations_total, cmbs_store_errors_total and
// cmbs_store_operation_duration_seconds (op, backend),
// cmbs_layer_messages_sent_total, _received_total, _forwarded_total and
// _failed_total and cmbs_layer_delivery_duration_seconds (layer),
// cmbs_members_known, cmbs_members_reachable and
// cmbs_layer_receiver_running (layer), with the Go and process collectors.
//
// An Ops owns one Prometheus registry; nothing is registered globally, so
// servers in one process (as in tests) keep separate metrics.
package ops
