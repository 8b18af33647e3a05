package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// KindBackends is one entry of the backends section: the providers that
// back a kind. It is the equivalent of the original's cmbs_backends.json,
// which named the provider modules to load, together with its
// put_provider_*.json requests, which attached them to kinds: cmbs's
// providers are built in, so only the attachment is left to configure.
type KindBackends struct {
	// Kind is the identifier (scheme and term) of a kind or mixin, such
	// as http://houssem.org/cmbs#member.
	Kind string `yaml:"kind" json:"kind"`
	// Local names built-in providers, called in order for the kind's
	// entities: cmbs_member, cmbs_message, dummy.
	Local []string `yaml:"local" json:"local"`
	// Remote lists remote providers, recorded on the kind for clients.
	Remote []string `yaml:"remote,omitempty" json:"remote,omitempty"`
}

// Member is the member section: the local member of this server, as a
// POST of the original's post_member.json would create it, with the layers
// to start and whether to discover neighbours, as its actions would.
type Member struct {
	// ID is the member's id; it lives at /cmbs/member/ID.
	ID      string `yaml:"id" json:"id"`
	Title   string `yaml:"title,omitempty" json:"title,omitempty"`
	Summary string `yaml:"summary,omitempty" json:"summary,omitempty"`
	// Sockets maps a layer (l1, l2, l31, l32, l4) to the ZeroMQ endpoint
	// its receiver binds: cmbs.member.<layer>_socket.
	Sockets map[string]string `yaml:"sockets,omitempty" json:"sockets,omitempty"`
	// Neighbors are the L1 sockets discovery starts from:
	// cmbs.member.neighbors_socket.
	Neighbors []string `yaml:"neighbors,omitempty" json:"neighbors,omitempty"`
	// Topics and Providers are what L3.2, L3.1 and L4 route by.
	Topics    []string `yaml:"topics,omitempty" json:"topics,omitempty"`
	Providers []string `yaml:"providers,omitempty" json:"providers,omitempty"`
	// Start lists the layers running once the server is up; the others
	// are stopped, even if they ran before the restart.
	Start []string `yaml:"start,omitempty" json:"start,omitempty"`
	// Discover runs check_neighbors once the layers are up.
	Discover bool `yaml:"discover,omitempty" json:"discover,omitempty"`
}

// MemberLayers lists the layer names a member section uses, in order.
func MemberLayers() []string { return []string{"l1", "l2", "l31", "l32", "l4"} }

// Kinds backed by default, and their providers.
const (
	MemberKind      = "http://houssem.org/cmbs#member"
	MessageKind     = "http://houssem.org/cmbs#message"
	MemberProvider  = "cmbs_member"
	MessageProvider = "cmbs_message"
)

// DefaultBackends is what an absent backends section amounts to.
func DefaultBackends() []KindBackends {
	return []KindBackends{
		{Kind: MemberKind, Local: []string{MemberProvider}},
		{Kind: MessageKind, Local: []string{MessageProvider}},
	}
}

// memberIDPattern is occi's rule for ids in locations.
var memberIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:~@-]{0,254}$`)

// validateMember adds the member section's problems: the schema's rules
// again, for configs not read from a file, and the rules across fields the
// schema cannot state. Endpoints are checked in full by the broker when it
// binds them.
func validateMember(m *Member, bad func(field, format string, args ...any)) {
	if !memberIDPattern.MatchString(m.ID) {
		bad("member.id", "%q is not an id of letters, digits and _.:~@- starting with a letter or digit", m.ID)
	}
	layers := MemberLayers()
	byEndpoint := checkSockets(m.Sockets, layers, bad)
	for i, n := range m.Neighbors {
		if own := byEndpoint[n]; own != "" {
			bad(fmt.Sprintf("member.neighbors[%d]", i), "%s is this member's own %s socket", n, own)
		}
	}
	checkStart(m, layers, bad)
}

// checkSockets checks that each socket is one of layers' and that no two
// layers bind the same endpoint (but for a wildcard port), and returns the
// layer of each endpoint.
func checkSockets(sockets map[string]string, layers []string, bad func(field, format string, args ...any)) map[string]string {
	byEndpoint := map[string]string{}
	for _, l := range layers {
		ep, ok := sockets[l]
		if !ok {
			continue
		}
		field := "member.sockets." + l
		switch {
		case strings.TrimSpace(ep) == "":
			bad(field, "empty (want a ZeroMQ endpoint such as tcp://127.0.0.1:5010)")
		case byEndpoint[ep] != "" && !strings.HasSuffix(ep, ":*"):
			bad(field, "%s is also the socket of %s; each layer binds its own", ep, byEndpoint[ep])
		default:
			byEndpoint[ep] = l
		}
	}
	for l := range sockets {
		if !slices.Contains(layers, l) {
			bad("member.sockets."+l, "unknown layer (want %s)", strings.Join(layers, ", "))
		}
	}
	return byEndpoint
}

// checkStart checks that the layers to start are known, listed once and
// have a socket.
func checkStart(m *Member, layers []string, bad func(field, format string, args ...any)) {
	seen := map[string]int{}
	for i, l := range m.Start {
		field := fmt.Sprintf("member.start[%d]", i)
		switch first, dup := seen[l]; {
		case !slices.Contains(layers, l):
			bad(field, "unknown layer %q (want %s)", l, strings.Join(layers, ", "))
		case dup:
			bad(field, "repeats member.start[%d]", first)
		case strings.TrimSpace(m.Sockets[l]) == "":
			bad(field, "layer %s has no socket; set member.sockets.%s", l, l)
		}
		seen[l] = i
	}
}

// validateBackends adds the backends section's problems. Whether each
// provider exists is known only to the server, which checks it at start.
func validateBackends(bs []KindBackends, bad func(field, format string, args ...any)) {
	seen := map[string]int{}
	for i, b := range bs {
		field := fmt.Sprintf("backends[%d]", i)
		if !strings.Contains(b.Kind, "#") {
			bad(field+".kind", "%q is not a category identifier scheme#term", b.Kind)
		} else if first, dup := seen[b.Kind]; dup {
			bad(field+".kind", "%s is already configured by backends[%d]", b.Kind, first)
		} else {
			seen[b.Kind] = i
		}
		if len(b.Local) == 0 {
			bad(field+".local", "must not be empty")
		}
		for j, name := range b.Local {
			if strings.TrimSpace(name) == "" {
				bad(fmt.Sprintf("%s.local[%d]", field, j), "empty provider name")
			}
		}
	}
}
