package xapp

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/houssem/cmbs/config"
)

// Paths and names the descriptor uses.
const (
	// Name is the xapp_name and container name by default.
	Name = "cmbs"
	// ConfigPath is where the RIC mounts the descriptor in the container.
	ConfigPath = "/opt/ric/config/config-file.json"
	// DefaultImage is the image the descriptor runs when none is given;
	// its tag is cmbs's version.
	DefaultImage = "ghcr.io/houssem/cmbs"
	// ImageStore is the store of the image (see the Dockerfile): its
	// volume. A descriptor whose configuration names no store uses it,
	// not the data directory of the machine writing the descriptor.
	ImageStore = "file:/var/lib/cmbs"
	// HTTPPort names the messaging port of the HTTP API.
	HTTPPort = "http"
	// AlivePath and ReadyPath are the probes cmbs serves (cmd/cmbs/ops).
	AlivePath = "/health/alive"
	ReadyPath = "/health/ready"
)

// Descriptor is an xApp descriptor, config-file.json, as the O-RAN SC
// onboarder's schema describes it.
type Descriptor struct {
	XAppName       string         `json:"xapp_name"`
	Version        string         `json:"version"`
	Containers     []Container    `json:"containers"`
	LivenessProbe  Probe          `json:"livenessProbe"`
	ReadinessProbe Probe          `json:"readinessProbe"`
	Messaging      Messaging      `json:"messaging"`
	Metrics        []Metric       `json:"metrics"`
	Controls       map[string]any `json:"controls"`
}

// Container is one container the xApp runs.
type Container struct {
	Name    string `json:"name"`
	Image   Image  `json:"image"`
	Command string `json:"command,omitempty"`
}

// Image names a container image by registry, name and tag.
type Image struct {
	Registry string `json:"registry"`
	Name     string `json:"name"`
	Tag      string `json:"tag"`
}

// Probe is an HTTP liveness or readiness probe.
type Probe struct {
	HTTPGet             HTTPGet `json:"httpGet"`
	InitialDelaySeconds int     `json:"initialDelaySeconds"`
	PeriodSeconds       int     `json:"periodSeconds"`
}

// HTTPGet is the request a probe makes.
type HTTPGet struct {
	Path string `json:"path"`
	Port int    `json:"port"`
}

// Messaging lists the ports the xApp's container listens on.
type Messaging struct {
	Ports []Port `json:"ports"`
}

// Port is one messaging port. The onboarder wants rxMessages, txMessages
// and policies together or none of them.
type Port struct {
	Name        string   `json:"name"`
	Container   string   `json:"container"`
	Port        int      `json:"port"`
	Description string   `json:"description,omitempty"`
	TxMessages  []string `json:"txMessages,omitempty"`
	RxMessages  []string `json:"rxMessages,omitempty"`
	Policies    *[]int   `json:"policies,omitempty"`
}

// Metric describes one metric the xApp exposes.
type Metric struct {
	ObjectName     string `json:"objectName"`
	ObjectInstance string `json:"objectInstance"`
	Name           string `json:"name"`
	Type           string `json:"type"`
	Description    string `json:"description"`
}

// Options says what New describes.
type Options struct {
	// Config is cmbs's configuration, which becomes the controls. Without
	// a member section, DefaultMember is declared.
	Config config.Config
	// Name is the xapp_name and container name; Name when empty.
	Name string
	// Image is REGISTRY/NAME[:TAG]; DefaultImage when empty. A missing
	// tag is the version.
	Image string
	// Version is cmbs's version as `cmbs version` prints it; SemVer makes
	// it the descriptor's version.
	Version string
}

// Probe timings: the probes answer within a few milliseconds; readiness
// may wait for the store and the MEC registration.
const (
	probeDelaySeconds  = 5
	probePeriodSeconds = 15
)

// DefaultMember is the member a descriptor declares when the
// configuration has none: the layers on every interface at the ports the
// image exposes (see the Dockerfile), all started.
func DefaultMember(name string) *config.Member {
	ports := map[string]int{"l1": 5010, "l2": 5020, "l31": 5031, "l32": 5032, "l4": 5040}
	m := &config.Member{ID: name, Sockets: map[string]string{}, Start: config.MemberLayers()}
	for _, l := range config.MemberLayers() {
		m.Sockets[l] = "tcp://*:" + strconv.Itoa(ports[l])
	}
	return m
}

// New builds the descriptor opts describe. Notes tell the operator what
// was changed or left out on the way: secrets, which belong in the
// container's environment rather than in a catalogue, and binds no other
// pod can reach.
func New(opts Options) (d *Descriptor, notes []string, err error) {
	if opts.Name == "" {
		opts.Name = Name
	}
	if !dnsLabel.MatchString(opts.Name) {
		return nil, nil, fmt.Errorf("xapp name %q: want a DNS label of lower-case letters, digits and -", opts.Name)
	}
	version := SemVer(opts.Version)
	image, err := parseImage(opts.Image, version)
	if err != nil {
		return nil, nil, err
	}
	cfg := opts.Config
	if cfg.Store == config.Default().Store {
		cfg.Store = ImageStore
		notes = append(notes, "the configuration names no store: the descriptor uses the image's volume, "+ImageStore)
	}
	if cfg.Member == nil {
		cfg.Member = DefaultMember(opts.Name)
		notes = append(notes, fmt.Sprintf("the configuration declares no member: the descriptor declares member %q with every layer on the image's ports 5010-5040", opts.Name))
	}
	// Checked with its secrets: the container gets them from its
	// environment.
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("the configuration is not valid:\n%w", err)
	}
	cfg, secretNotes := withoutSecrets(cfg)
	notes = append(notes, secretNotes...)
	httpPort, err := listenPort(cfg.HTTP)
	if err != nil {
		return nil, nil, fmt.Errorf("http %q: %w", cfg.HTTP, err)
	}
	ports, portNotes, err := layerPorts(opts.Name, cfg.Member)
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, portNotes...)
	if host, _, _ := net.SplitHostPort(cfg.HTTP); isLoopback(host) {
		notes = append(notes, fmt.Sprintf("http %s listens on loopback: the probes and other pods cannot reach it; use :%d", cfg.HTTP, httpPort))
	}
	controls, err := cfg.Document()
	if err != nil {
		return nil, nil, err
	}
	probe := func(path string) Probe {
		return Probe{HTTPGet: HTTPGet{Path: path, Port: httpPort}, InitialDelaySeconds: probeDelaySeconds, PeriodSeconds: probePeriodSeconds}
	}
	d = &Descriptor{
		XAppName: opts.Name,
		Version:  version,
		Containers: []Container{{
			Name:    opts.Name,
			Image:   image,
			Command: "cmbs serve --xapp-config " + ConfigPath,
		}},
		LivenessProbe:  probe(AlivePath),
		ReadinessProbe: probe(ReadyPath),
		Messaging: Messaging{Ports: append([]Port{{
			Name: HTTPPort, Container: opts.Name, Port: httpPort,
			Description: "cmbs OCCI HTTP API, probes and /metrics",
		}}, ports...)},
		Metrics:  Metrics(),
		Controls: controls,
	}
	return d, notes, nil
}

// JSON is the descriptor as config-file.json holds it, indented, with a
// final newline.
func (d *Descriptor) JSON() ([]byte, error) {
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Schema is the schema of the controls section: cmbs's config schema.
func Schema() []byte { return config.Schema() }

// dnsLabel is what Kubernetes accepts as a container and port name.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// registryPattern is the onboarder schema's pattern for image registries:
// a domain, with an optional port.
var registryPattern = regexp.MustCompile(`^[A-Za-z0-9\.-]{1,}\.[A-Za-z]{1,}(?:\:\d+)?$`)

// parseImage splits REGISTRY/NAME[:TAG]; the tag defaults to version.
func parseImage(ref, version string) (Image, error) {
	if ref == "" {
		ref = DefaultImage
	}
	registry, rest, ok := strings.Cut(ref, "/")
	if !ok || rest == "" {
		return Image{}, fmt.Errorf("image %q: want REGISTRY/NAME[:TAG], such as %s:%s", ref, DefaultImage, version)
	}
	if !registryPattern.MatchString(registry) {
		return Image{}, fmt.Errorf("image %q: registry %q is not a domain with an optional port, as the xApp onboarder requires", ref, registry)
	}
	name, tag := rest, version
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		name, tag = rest[:i], rest[i+1:]
	}
	if name == "" || tag == "" || strings.Contains(name, "@") {
		return Image{}, fmt.Errorf("image %q: want REGISTRY/NAME[:TAG] with a name and a tag", ref)
	}
	// Docker tags are plain: letters, digits, _, . and -, up to 128.
	tag = tagUnsafe.ReplaceAllString(tag, "-")
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return Image{Registry: registry, Name: name, Tag: tag}, nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// withoutSecrets removes the credentials of the store URL and the OAuth2
// client secret from cfg: the descriptor lands in a catalogue, secrets go
// into the container's environment.
func withoutSecrets(cfg config.Config) (config.Config, []string) {
	var notes []string
	if u, err := url.Parse(cfg.Store); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
			cfg.Store = u.String()
			notes = append(notes, "store: the CouchDB password is left out; give the container CMBS_STORE with it, from a Kubernetes secret")
		}
	}
	if cfg.MEC.OAuth2.ClientSecret != "" {
		cfg.MEC.OAuth2.ClientSecret = ""
		notes = append(notes, "mec.oauth2.client_secret is left out; give the container CMBS_MEC_OAUTH2_CLIENT_SECRET, from a Kubernetes secret")
	}
	return cfg, notes
}

// listenPort is the port of a listen address; 0 (any port) has no place
// in a descriptor.
func listenPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("port %q: want a fixed port from 1 to 65535", p)
	}
	return port, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// layerPorts declares a port per layer whose socket is a TCP port. ipc
// and inproc sockets are not network ports and are left out.
func layerPorts(container string, m *config.Member) ([]Port, []string, error) {
	var ports []Port
	var notes []string
	for _, l := range config.MemberLayers() {
		ep, ok := m.Sockets[l]
		if !ok {
			continue
		}
		field := "member.sockets." + l
		host, port, isTCP := tcpEndpoint(ep)
		if !isTCP {
			notes = append(notes, fmt.Sprintf("%s %s is not a TCP socket: the descriptor declares no port for it", field, ep))
			continue
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, nil, fmt.Errorf("%s %s: an xApp port needs a fixed port from 1 to 65535", field, ep)
		}
		if isLoopback(strings.Trim(host, "[]")) {
			notes = append(notes, fmt.Sprintf("%s %s binds loopback: other pods cannot reach it; use tcp://*:%d", field, ep, n))
		}
		none := []int{}
		types := MessageTypes(l)
		started := "started on request"
		if slices.Contains(m.Start, l) {
			started = "running from start-up"
		}
		ports = append(ports, Port{
			Name: l, Container: container, Port: n,
			Description: fmt.Sprintf("cmbs layer %s (ZeroMQ, %s): %s", l, started, layerRole[l]),
			TxMessages:  types, RxMessages: types, Policies: &none,
		})
	}
	return ports, notes, nil
}

// tcpEndpoint splits tcp://host:port.
func tcpEndpoint(ep string) (host, port string, ok bool) {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(rest)
	return host, port, err == nil
}

// layerRole says what each layer carries.
var layerRole = map[string]string{
	"l1":  "request/reply to one member, and discovery",
	"l2":  "broadcast to every member",
	"l31": "delivery to the members serving a provider",
	"l32": "delivery to the members subscribed to a topic",
	"l4":  "delivery by provider and topic",
}

// MessageTypes names the broker requests a layer carries, both ways: a
// member sends them to others on the layer and answers them on its own
// socket. DESCRIBE is discovery (L1 only); DELIVER_<layer> a message
// delivered, or forwarded towards its destinations.
func MessageTypes(layer string) []string {
	deliver := "CMBS_DELIVER_" + strings.ToUpper(layer)
	if layer == "l1" {
		return []string{"CMBS_DESCRIBE", deliver}
	}
	return []string{deliver}
}

// SemVer turns the version `cmbs version` prints into the semantic version
// the onboarder requires: v1.2.3 stays 1.2.3, git describe's
// v1.2.3-4-gabcdef becomes 1.2.3-4-gabcdef, a VCS revision becomes build
// metadata, and a build without a release version is 0.0.0-dev.
func SemVer(v string) string {
	v = strings.TrimSpace(v)
	base, revision, _ := strings.Cut(v, " ")
	base = strings.TrimPrefix(base, "v")
	var out string
	switch {
	case semverPattern.MatchString(base):
		out = base
	case gitHash.MatchString(strings.TrimSuffix(base, "-dirty")):
		// git describe --always without a tag: the hash alone.
		out = "0.0.0-dev+" + strings.ReplaceAll(base, "-dirty", ".dirty")
	default:
		out = "0.0.0-dev"
	}
	if revision = buildUnsafe.ReplaceAllString(revision, "-"); revision != "" && !strings.Contains(out, "+") {
		out += "+" + revision
	}
	return out
}

var (
	// semverPattern is the onboarder's (semver.org's) pattern.
	semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	gitHash       = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	buildUnsafe   = regexp.MustCompile(`[^0-9A-Za-z.-]`)
)
