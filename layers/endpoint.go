package layers

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrInvalidEndpoint is wrapped by every endpoint validation failure.
var ErrInvalidEndpoint = errors.New("invalid endpoint")

// maxIPCPathLen is the usable length of sun_path on Linux (108 bytes including
// the terminating NUL). libzmq reports a longer path only as ENAMETOOLONG at
// bind time, which is much harder to trace back to configuration.
const maxIPCPathLen = 107

// ValidateEndpoint checks that s is a ZeroMQ endpoint this package can bind or
// connect: tcp://host:port, ipc://path or inproc://name. For binding, the host
// may be "*" (all interfaces) and the port may be "*" (an ephemeral port, read
// back with [Receiver.Endpoint]).
func ValidateEndpoint(s string) error {
	return validateEndpoint(s, true)
}

// ValidateConnectEndpoint is like [ValidateEndpoint] but rejects the wildcard
// forms, which only make sense for binding: a member's advertised address must
// be something a peer can dial.
func ValidateConnectEndpoint(s string) error {
	return validateEndpoint(s, false)
}

func validateEndpoint(s string, bind bool) error {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return fmt.Errorf("%w %q: want transport://address", ErrInvalidEndpoint, s)
	}
	if strings.ContainsAny(rest, " \t\r\n\x00") {
		return fmt.Errorf("%w %q: address contains whitespace or NUL", ErrInvalidEndpoint, s)
	}
	switch scheme {
	case "tcp":
		if err := validateTCP(rest, bind); err != nil {
			return fmt.Errorf("%w %q: %w", ErrInvalidEndpoint, s, err)
		}
	case "ipc":
		switch {
		case rest == "":
			return fmt.Errorf("%w %q: empty ipc path", ErrInvalidEndpoint, s)
		case rest == "*" && !bind:
			return fmt.Errorf("%w %q: wildcard ipc path can only be bound", ErrInvalidEndpoint, s)
		case len(rest) > maxIPCPathLen:
			return fmt.Errorf("%w %q: ipc path longer than %d bytes", ErrInvalidEndpoint, s, maxIPCPathLen)
		}
	case "inproc":
		if rest == "" {
			return fmt.Errorf("%w %q: empty inproc name", ErrInvalidEndpoint, s)
		}
	default:
		return fmt.Errorf("%w %q: unsupported transport %q (want tcp, ipc or inproc)", ErrInvalidEndpoint, s, scheme)
	}
	return nil
}

func validateTCP(hostport string, bind bool) error {
	if strings.Contains(hostport, ";") {
		// libzmq's "source;destination" form is deliberately unsupported:
		// members advertise one dialable address.
		return errors.New("source-address form is not supported")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	switch {
	case host == "":
		return errors.New("empty host")
	case host == "*":
		if !bind {
			return errors.New("wildcard host can only be bound")
		}
	case net.ParseIP(host) != nil:
	case !validHostname(host):
		return fmt.Errorf("bad host %q", host)
	}
	if port == "*" {
		if !bind {
			return errors.New("wildcard port can only be bound")
		}
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1-65535", port)
	}
	return nil
}

// validHostname accepts DNS names and interface names (libzmq binds to an
// interface when given its name, e.g. tcp://eth0:5555).
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return false
			}
		}
	}
	return true
}
