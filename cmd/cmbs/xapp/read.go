package xapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/houssem/cmbs/config"
)

// errNoDescriptor wraps what keeps a file from being read as a descriptor.
var errNoDescriptor = errors.New("not an xApp descriptor")

// ReadConfig reads the descriptor at path as cmbs's configuration: its
// controls checked against cmbs's config schema (a *config.FileError
// naming each problem as controls.key.path with its line), then its
// messaging ports applied. Neither the environment nor flags are applied,
// nor Validate.
func ReadConfig(path string) (config.Config, error) {
	cfg, err := config.LoadSection(path, "controls")
	if err != nil {
		return config.Config{}, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, fmt.Errorf("xapp config: %w", err)
	}
	var d struct {
		Messaging struct {
			Ports []struct {
				Name string `json:"name"`
				Port int    `json:"port"`
			} `json:"ports"`
		} `json:"messaging"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return config.Config{}, fmt.Errorf("xapp config %s: %w: %w", path, errNoDescriptor, err)
	}
	seen := map[string]int{}
	for i, p := range d.Messaging.Ports {
		field := fmt.Sprintf("messaging.ports[%d]", i)
		if first, dup := seen[p.Name]; dup {
			return config.Config{}, fmt.Errorf("xapp config %s: %s: port name %q repeats messaging.ports[%d]", path, field, p.Name, first)
		}
		seen[p.Name] = i
		if p.Name != HTTPPort && !slices.Contains(config.MemberLayers(), p.Name) {
			// Ports of other parts of the xApp are not cmbs's to bind.
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			return config.Config{}, fmt.Errorf("xapp config %s: %s.port: %d is not a port from 1 to 65535", path, field, p.Port)
		}
		if err := applyPort(&cfg, p.Name, p.Port); err != nil {
			return config.Config{}, fmt.Errorf("xapp config %s: %s (%s): %w", path, field, p.Name, err)
		}
	}
	return cfg, nil
}

// applyPort sets the port of the HTTP address or of a layer's socket,
// keeping the host the controls give (every interface when they give
// none).
func applyPort(cfg *config.Config, name string, port int) error {
	p := strconv.Itoa(port)
	if name == HTTPPort {
		host, _, err := net.SplitHostPort(cfg.HTTP)
		if err != nil {
			host = ""
		}
		cfg.HTTP = net.JoinHostPort(host, p)
		return nil
	}
	if cfg.Member == nil {
		return fmt.Errorf("the controls declare no member whose %s socket would bind it", name)
	}
	m := *cfg.Member
	m.Sockets = make(map[string]string, len(cfg.Member.Sockets)+1)
	for k, v := range cfg.Member.Sockets {
		m.Sockets[k] = v
	}
	ep, ok := m.Sockets[name]
	switch host, _, isTCP := tcpEndpoint(ep); {
	case !ok:
		m.Sockets[name] = "tcp://*:" + p
	case isTCP:
		m.Sockets[name] = "tcp://" + joinHost(host, p)
	default:
		return fmt.Errorf("controls.member.sockets.%s is %s, not a TCP socket a port applies to", name, ep)
	}
	cfg.Member = &m
	return nil
}

// joinHost is net.JoinHostPort for a host that may already be bracketed
// or be ZeroMQ's *.
func joinHost(host, port string) string {
	if h := strings.Trim(host, "[]"); strings.Contains(h, ":") {
		return "[" + h + "]:" + port
	}
	return host + ":" + port
}
