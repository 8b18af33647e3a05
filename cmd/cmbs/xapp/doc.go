// Package xapp makes cmbs an O-RAN SC xApp: it writes the xApp descriptor
// (config-file.json) the RIC's xApp onboarder takes, and reads one back as
// the configuration of `cmbs serve --xapp-config`.
//
// The descriptor declares one container running
// `cmbs serve --xapp-config /opt/ric/config/config-file.json`, its liveness
// and readiness probes on /health/alive and /health/ready, a messaging port
// for the HTTP API and one per layer socket (named l1, l2, l31, l32, l4,
// each listing the broker message types the layer carries), cmbs's
// Prometheus metrics, and, as controls, cmbs's own configuration. The
// schema of the controls is cmbs's config schema (`cmbs xapp schema`), so
// the onboarder validates the controls as `cmbs config check` would.
//
// Reading a descriptor, the controls are a config file of their own
// (problems name their key from the descriptor's root, controls.http, with
// the descriptor's line), and the messaging ports win over the controls:
// the port named http sets the HTTP port, a port named after a layer the
// port of that layer's socket. The RIC maps each declared port to the same
// port in the container, so what the platform exposes is what cmbs binds.
package xapp
