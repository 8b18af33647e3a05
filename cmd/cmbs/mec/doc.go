// Package mec runs cmbs as an ETSI MEC application: the application life
// cycle of ETSI GS MEC 011 (Edge Platform Application Enablement) over the
// platform's Mp1 APIs.
//
// Once the server listens and its layers are bound, a Lifecycle
//
//  1. confirms to the platform that the application is up
//     (POST .../applications/{appInstanceId}/confirm_ready, READY);
//  2. registers cmbs's endpoints as MEC services named cmbs: the OCCI
//     HTTP API (REST_HTTP) and each started layer's ZeroMQ socket, one
//     ServiceInfo per transport since a ServiceInfo holds one
//     (POST .../applications/{appInstanceId}/services);
//  3. subscribes to the application's termination with a callback URL
//     the Lifecycle serves itself
//     (POST .../applications/{appInstanceId}/subscriptions).
//
// Readiness (the probe Lifecycle.Probe gives) fails until all three have
// succeeded. While the platform is unreachable or answers 5xx, 409 or 429
// each step is retried with a growing, capped wait and jitter; any other
// answer stops the start-up with the platform's problem detail.
//
// A termination notice posted to the callback makes the Lifecycle refuse
// new sends and drain the broker's outbox (Drainer.Drain) within the
// notice's maxGracefulTimeout, delete its service registrations and its
// subscription, and confirm the termination
// (POST .../applications/{appInstanceId}/confirm_termination); Run then
// returns nil and the server stops with exit status 0. When the process
// is stopped instead (SIGTERM), Run deletes the registrations and the
// subscription before returning.
//
// With OAuth 2.0 client credentials configured, every request carries a
// bearer token from the token endpoint, fetched again when it expires or
// the platform answers 401.
package mec
