package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/houssem/cmbs/layers"
	"github.com/houssem/cmbs/occi"
)

// Layer receiver states, as the member's layers attribute shows them.
const (
	stateRunning = "running"
	stateStopped = "stopped"
)

// memberProvider is cmbs_member: it keeps one local member per server,
// checks sockets, and runs the member's actions.
type memberProvider struct{ b *Broker }

// checkSockets checks a member's sockets: endpoints a receiver can bind,
// and, for the local member of a server that binds a layer elsewhere (see
// Bind), one peers can dial.
func (p memberProvider) checkSockets(e *occi.Entity) error {
	local := flag(e, attrLocal, false)
	for _, l := range Layers() {
		if s := str(e, l.SocketAttr()); s != "" {
			if err := layers.ValidateEndpoint(s); err != nil {
				return occi.BadRequest(l.SocketAttr(), "%s: %v", l.SocketAttr(), err)
			}
			if !local {
				continue
			}
			if err := p.b.cfg.Bind.checkAdvertised(l, s); err != nil {
				return occi.BadRequest(l.SocketAttr(), "%s: %v", l.SocketAttr(), err)
			}
		}
	}
	for i, s := range strs(e, attrNeighbors) {
		if err := layers.ValidateConnectEndpoint(s); err != nil {
			return occi.BadRequest(fmt.Sprintf("%s[%d]", attrNeighbors, i), "%s: %v", attrNeighbors, err)
		}
	}
	return nil
}

// checkOneLocal refuses a second local member.
func (p memberProvider) checkOneLocal(ctx context.Context, e *occi.Entity) error {
	if !flag(e, attrLocal, false) {
		return nil
	}
	local, err := p.b.localMember(ctx)
	if err != nil {
		return err
	}
	if local != nil && local.Location != e.Location {
		return occi.Conflict(attrLocal, "%s is already the local member of this server; a server has exactly one (set local to \"false\" for members on other hosts)", local.Location)
	}
	// Members written by the same request are not stored yet.
	for _, other := range occi.Batch(ctx) {
		if other.Location != e.Location && other.Kind == e.Kind && flag(other, attrLocal, false) {
			return occi.Conflict(attrLocal, "%s and %s cannot both be the local member of this server; a server has exactly one", other.Location, e.Location)
		}
	}
	return nil
}

// Exclusive makes the server run member creates and updates one at a time,
// so checkOneLocal sees every local member stored before it.
func (memberProvider) Exclusive() {}

func (p memberProvider) Create(ctx context.Context, e *occi.Entity) error {
	if err := p.checkSockets(e); err != nil {
		return err
	}
	if err := p.b.fixReadOnly(nil, e); err != nil {
		return err
	}
	if err := p.checkOneLocal(ctx, e); err != nil {
		return err
	}
	if flag(e, attrLocal, false) {
		e.SetAttr(attrLayers, p.b.layerStates())
	}
	return nil
}

func (p memberProvider) Read(_ context.Context, e *occi.Entity) error {
	if flag(e, attrLocal, false) {
		e.SetAttr(attrLayers, p.b.layerStates())
		p.b.markSelf(e)
	}
	return nil
}

func (p memberProvider) Update(ctx context.Context, old, updated *occi.Entity) error {
	if err := p.checkSockets(updated); err != nil {
		return err
	}
	if err := p.b.fixReadOnly(old, updated); err != nil {
		return err
	}
	if err := p.checkOneLocal(ctx, updated); err != nil {
		return err
	}
	if !flag(old, attrLocal, false) {
		// Becoming local: the stored layers are what Start restarts and
		// readiness expects, so they say what really runs.
		if flag(updated, attrLocal, false) {
			updated.SetAttr(attrLayers, p.b.layerStates())
		}
		return nil
	}
	running := p.b.running()
	if len(running) > 0 && !flag(updated, attrLocal, false) {
		return occi.Conflict(attrLocal, "stop the running layers (%s) before the member stops being local", strings.Join(running, ", "))
	}
	for _, name := range running {
		l := Layer(name)
		if str(old, l.SocketAttr()) != str(updated, l.SocketAttr()) {
			return occi.Conflict(l.SocketAttr(), "layer %s is running on %s; stop it before changing its socket", l, str(old, l.SocketAttr()))
		}
	}
	if flag(updated, attrLocal, false) {
		updated.SetAttr(attrLayers, p.b.layerStates())
	}
	return nil
}

func (p memberProvider) Delete(_ context.Context, e *occi.Entity) error {
	if !flag(e, attrLocal, false) {
		return nil
	}
	for _, name := range p.b.running() {
		if err := p.b.stopLayer(Layer(name)); err != nil {
			return err
		}
	}
	return nil
}

// memberActionResult is the answer of start, stop and check_neighbors.
type memberActionResult struct {
	Member   string `json:"member"`
	Action   string `json:"action"`
	Layer    Layer  `json:"layer,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	State    string `json:"state,omitempty"`
	// Bound is what this server bound, when not Endpoint itself (see
	// Bind).
	Bound string `json:"bound,omitempty"`
	// Discovery outcome.
	Discovered  []string          `json:"discovered,omitempty"`
	Unreachable map[string]string `json:"unreachable,omitempty"`
}

func (p memberProvider) Action(ctx context.Context, e *occi.Entity, inv occi.ActionInvocation) (*occi.ActionResult, error) {
	if !flag(e, attrLocal, false) {
		return nil, occi.BadRequest("action", "%s is not the local member: its layers run on its own host, so act on it there", e.Location)
	}
	verb, layer, _ := strings.Cut(inv.Term, "_l")
	switch {
	case inv.Term == "check_neighbors":
		res, err := p.b.discover(ctx, e)
		if err != nil {
			return nil, err
		}
		return &occi.ActionResult{Status: http.StatusOK, Body: res}, nil
	case verb == "start" || verb == "stop":
		l, ok := parseLayer("l" + strings.ReplaceAll(layer, ".", ""))
		if !ok {
			return nil, occi.BadRequest("action", "no layer %q", layer)
		}
		var err error
		res := memberActionResult{Member: e.ID, Action: inv.Term, Layer: l, Endpoint: str(e, l.SocketAttr())}
		if verb == "start" {
			res.Bound, err = p.b.startLayer(ctx, e, l)
			if res.Bound == res.Endpoint {
				res.Bound = ""
			}
			res.State = stateRunning
		} else {
			err = p.b.stopLayer(l)
			res.State = stateStopped
		}
		if err != nil {
			return nil, err
		}
		if err := p.b.saveLayerStates(ctx, e.Location); err != nil {
			return nil, err
		}
		return &occi.ActionResult{Status: http.StatusOK, Body: res}, nil
	}
	return nil, occi.BadRequest("action", "the member provider has no action %q", inv.Term)
}

// layerStates reports each layer's receiver as running or stopped.
func (b *Broker) layerStates() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]any{}
	for _, l := range Layers() {
		if r, ok := b.receivers[l]; ok && r.Running() {
			out[string(l)] = stateRunning
		} else {
			out[string(l)] = stateStopped
		}
	}
	return out
}

func (b *Broker) running() []string {
	var out []string
	states := b.layerStates()
	for _, l := range Layers() {
		if states[string(l)] == stateRunning {
			out = append(out, string(l))
		}
	}
	return out
}

func (b *Broker) saveLayerStates(ctx context.Context, location string) error {
	_, err := occi.UpdateEntity(ctx, b.st, location, func(e *occi.Entity) error {
		e.SetAttr(attrLayers, b.layerStates())
		return nil
	})
	return err
}

// startLayer binds the layer's receiver on the member's socket for it, or
// where the server's Bind says, and returns the endpoint it bound.
func (b *Broker) startLayer(ctx context.Context, member *occi.Entity, l Layer) (string, error) {
	advertised := str(member, l.SocketAttr())
	if advertised == "" {
		return "", occi.BadRequest(l.SocketAttr(), "the member has no %s; set it before starting layer %s", l.SocketAttr(), l)
	}
	if err := b.cfg.Bind.checkAdvertised(l, advertised); err != nil {
		return "", occi.BadRequest(l.SocketAttr(), "layer %s: %v", l, err)
	}
	endpoint, err := b.cfg.Bind.Endpoint(l, advertised)
	if err != nil {
		return "", occi.BadRequest(l.SocketAttr(), "layer %s: %v", l, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", errors.New("broker is shutting down")
	}
	if r, ok := b.receivers[l]; ok && r.Running() {
		return "", occi.Conflict("action", "layer %s is already running on %s", l, r.Endpoint())
	}
	r, err := layers.NewReceiver(layers.ReceiverConfig{
		Endpoint:       endpoint,
		Handler:        b.handler(l),
		Logger:         b.log.WithField("layer", l),
		MaxMessageSize: b.cfg.MaxMessageSize,
		Curve:          b.curveServer(),
		OnRefused:      b.onRefused(l),
		// A peer's deliveries are taken in the order it sent them.
		PeerOrder: true,
	})
	if err != nil {
		return "", occi.BadRequest(l.SocketAttr(), "layer %s: %v", l, err)
	}
	if err := r.Start(); err != nil {
		detail := fmt.Sprintf("layer %s cannot bind %s: %v", l, endpoint, err)
		if !b.cfg.Bind.Separate(l, advertised) {
			detail += " (a server binds the member's socket unless told otherwise: a host name it cannot bind needs --bind-host or --bind-socket)"
		}
		return "", &occi.Error{Status: http.StatusConflict, Field: l.SocketAttr(), Err: err, Detail: detail}
	}
	b.receivers[l] = r
	b.log.WithFields(map[string]any{"layer": l, "endpoint": r.Endpoint(), "advertised": advertised}).Info("layer started")
	return r.Endpoint(), nil
}

// stopLayer closes the layer's receiver: socket closed, goroutine gone,
// port free.
func (b *Broker) stopLayer(l Layer) error {
	b.mu.Lock()
	r, ok := b.receivers[l]
	delete(b.receivers, l)
	b.mu.Unlock()
	if !ok || !r.Running() {
		return occi.Conflict("action", "layer %s is not running", l)
	}
	if err := r.Close(); err != nil {
		return fmt.Errorf("stop layer %s: %w", l, err)
	}
	b.log.WithField("layer", l).Info("layer stopped")
	return nil
}
