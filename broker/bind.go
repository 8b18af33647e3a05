package broker

import (
	"fmt"
	"net"
	"strings"

	"github.com/houssem/cmbs/layers"
)

// Bind separates what this server binds from what its member advertises,
// as Kafka's listeners and advertised.listeners do. A member's
// cmbs.member.<layer>_socket attributes are what peers dial: in a
// container that is a name such as tcp://broker-a.example:5010, which the
// container cannot bind, while it can bind tcp://0.0.0.0:5010. Bind is a
// property of the server, not of the member: several servers running one
// member on one store each bind their own addresses.
//
// The zero Bind binds each layer on the member's socket itself.
type Bind struct {
	// Host replaces the host of every tcp socket of the member, keeping
	// its port: "0.0.0.0" (every IPv4 interface), "*", an address or an
	// interface name. Sockets on other transports are bound as they are.
	Host string
	// Sockets binds a layer on exactly this endpoint, whatever the
	// member's socket for it says; it wins over Host.
	Sockets map[Layer]string
}

// Separate reports whether layer l binds somewhere other than the member's
// socket for it, which must then be an address peers can dial.
func (b Bind) Separate(l Layer, advertised string) bool {
	if b.Sockets[l] != "" {
		return true
	}
	return b.Host != "" && strings.HasPrefix(advertised, "tcp://")
}

// Endpoint returns what layer l binds for a member advertising advertised.
func (b Bind) Endpoint(l Layer, advertised string) (string, error) {
	if ep := b.Sockets[l]; ep != "" {
		return ep, nil
	}
	if !b.Separate(l, advertised) {
		return advertised, nil
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(advertised, "tcp://"))
	if err != nil {
		return "", fmt.Errorf("%s: want tcp://host:port: %w", advertised, err)
	}
	return "tcp://" + net.JoinHostPort(b.Host, port), nil
}

// Check reports every problem of the bind settings, naming the field.
func (b Bind) Check() error {
	var errs []string
	if b.Host != "" {
		if err := layers.ValidateEndpoint("tcp://" + net.JoinHostPort(b.Host, "1")); err != nil {
			errs = append(errs, fmt.Sprintf("bind host %q: want an address, * or an interface name", b.Host))
		}
	}
	for l, ep := range b.Sockets {
		if _, ok := parseLayer(string(l)); !ok {
			errs = append(errs, fmt.Sprintf("bind socket: no layer %q", l))
			continue
		}
		if err := layers.ValidateEndpoint(ep); err != nil {
			errs = append(errs, fmt.Sprintf("bind socket %s: %v", l, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("broker: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkAdvertised checks the socket a local member advertises for layer l
// when this server binds elsewhere: peers dial it, so it cannot be a
// wildcard.
func (b Bind) checkAdvertised(l Layer, advertised string) error {
	if advertised == "" || !b.Separate(l, advertised) {
		return nil
	}
	if err := layers.ValidateConnectEndpoint(advertised); err != nil {
		return fmt.Errorf("this server binds layer %s elsewhere, so its socket is what peers dial: %w", l, err)
	}
	return nil
}
