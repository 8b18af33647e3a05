package mec

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/houssem/cmbs/config"
)

// ServiceName is the serName of every service cmbs registers.
const ServiceName = "cmbs"

// layerTransport is the MEC transport type of each layer, by what it
// does: L1 asks one member and waits for its answer, L2 publishes to
// every member, L3.1 and L4 route by provider, L3.2 by topic.
var layerTransport = map[string]string{
	"l1":  "RPC",
	"l2":  "MB_PUBSUB",
	"l31": "MB_ROUTING",
	"l32": "MB_TOPIC_BASED",
	"l4":  "MB_ROUTING",
}

var layerSummary = map[string]string{
	"l1":  "cmbs L1: request/reply to one member, and discovery",
	"l2":  "cmbs L2: broadcast to every member",
	"l31": "cmbs L3.1: delivery to the members serving a provider",
	"l32": "cmbs L3.2: delivery to the members subscribed to a topic",
	"l4":  "cmbs L4: delivery by provider and topic",
}

// serviceInfos describes the HTTP API and each layer the member section
// starts, one service per transport.
func (l *Lifecycle) serviceInfos(httpAddr net.Addr) ([]serviceInfo, error) {
	api, err := l.apiURL(httpAddr)
	if err != nil {
		return nil, err
	}
	service := func(t transportInfo) serviceInfo {
		return serviceInfo{SerName: ServiceName, Version: l.version, State: "ACTIVE", TransportInfo: t, Serializer: "JSON"}
	}
	out := []serviceInfo{service(transportInfo{
		ID: "cmbs-http", Name: "cmbs OCCI HTTP API",
		Description: "OCCI REST interface of the cmbs broker (application/occi+json): members, messages, categories",
		Type:        "REST_HTTP", Protocol: "HTTP", Version: "1.1",
		Endpoint: endpointURIs{URIs: []string{api}},
	})}
	m := l.cfg.Member
	if m == nil {
		return out, nil
	}
	for _, layer := range config.MemberLayers() {
		ep, ok := m.Sockets[layer]
		if !ok || !slices.Contains(m.Start, layer) {
			continue
		}
		uri, err := l.layerURI(ep)
		if err != nil {
			return nil, fmt.Errorf("member.sockets.%s: %w", layer, err)
		}
		if uri == "" {
			l.log.WithField("layer", layer).Info("MEC platform: layer " + layer + " binds " + ep + ", which no other process can reach; not registered")
			continue
		}
		out = append(out, service(transportInfo{
			ID: "cmbs-" + layer, Name: "cmbs layer " + layer,
			Description: layerSummary[layer] + " (ZeroMQ ROUTER; requests acknowledged by reply)",
			Type:        layerTransport[layer], Protocol: "ZMTP", Version: "3.1",
			Endpoint:         endpointURIs{URIs: []string{uri}},
			ImplSpecificInfo: map[string]any{"layer": layer, "member": m.ID},
		}))
	}
	return out, nil
}

// apiURL is where clients reach the HTTP API: the public URL, else http
// on the listen address (its host, or the advertised one for a wildcard).
func (l *Lifecycle) apiURL(httpAddr net.Addr) (string, error) {
	if l.cfg.PublicURL != "" {
		return strings.TrimRight(l.cfg.PublicURL, "/") + "/", nil
	}
	base, err := l.listenBase(httpAddr)
	if err != nil {
		return "", err
	}
	return base + "/", nil
}

// callbackURL is the URL the platform posts the termination notice to.
func (l *Lifecycle) callbackURL(httpAddr net.Addr) (string, error) {
	base := l.mec.CallbackURL
	if base == "" {
		base = l.cfg.PublicURL
	}
	if base == "" {
		var err error
		if base, err = l.listenBase(httpAddr); err != nil {
			return "", err
		}
	}
	return url.JoinPath(base, CallbackPrefix, l.token)
}

// listenBase is http://HOST:PORT (https with TLS) for the address the
// server listens on.
func (l *Lifecycle) listenBase(httpAddr net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr.String())
	if err != nil {
		return "", fmt.Errorf("listen address %s: %w", httpAddr, err)
	}
	if isWildcard(host) {
		if host, err = l.advertised(); err != nil {
			return "", err
		}
	}
	scheme := "http"
	if l.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// layerURI is the endpoint other processes dial for a bind endpoint, or
// "" for one only this process can reach (inproc).
func (l *Lifecycle) layerURI(ep string) (string, error) {
	switch {
	case strings.HasPrefix(ep, "inproc://"):
		return "", nil
	case strings.HasPrefix(ep, "ipc://"):
		return ep, nil
	}
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return "", fmt.Errorf("%s is not a tcp, ipc or inproc endpoint", ep)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || port == "*" {
		return "", fmt.Errorf("%s names no fixed port", ep)
	}
	if isWildcard(host) {
		if host, err = l.advertised(); err != nil {
			return "", err
		}
	}
	return "tcp://" + net.JoinHostPort(host, port), nil
}

// advertised is the host named for wildcard binds.
func (l *Lifecycle) advertised() (string, error) {
	switch {
	case l.mec.AdvertiseHost != "":
		return l.mec.AdvertiseHost, nil
	case l.hostname != "":
		return l.hostname, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name to advertise (set mec.advertise_host): %w", err)
	}
	return h, nil
}

func isWildcard(host string) bool {
	switch strings.Trim(host, "[]") {
	case "", "*", "0.0.0.0", "::":
		return true
	}
	return false
}
