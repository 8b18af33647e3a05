package broker

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// routeTable is what this member knows of the paths to the others: a path
// vector protocol. Each direct neighbour tells, in every describe exchange,
// the path it has to each member it knows; this member keeps the latest
// table of each neighbour, refuses every path through itself (so no route
// loops), and routes each member through the neighbour with the shortest
// path, among the neighbours that are up. When a neighbour goes silent its
// table goes with it and the routes through it move to the next best: that
// is the rerouting, and it needs no count to infinity.
type routeTable struct {
	self string

	mu sync.Mutex
	// neighbors are the members this one exchanges with directly.
	neighbors map[string]*neighbor
	// heard holds, for each neighbour, the paths it last advertised, by
	// destination; each path starts at the neighbour and ends at the
	// destination.
	heard map[string]map[string][]string
}

// neighbor is the state of a direct neighbour.
type neighbor struct {
	id string
	// socket is the L1 socket exchanges go to.
	socket string
	// up tells whether it answered within the liveness window; heard when
	// it last did, since when its state holds.
	up    bool
	heard time.Time
	since time.Time
	// reason is why it is down.
	reason string
}

// route is the way to one member: through via (the member itself when it
// is a direct neighbour), along path (the members after this one, the
// destination last).
type route struct {
	via  string
	path []string
}

func (r route) distance() int { return len(r.path) }

func newRouteTable(self string) *routeTable {
	return &routeTable{self: self, neighbors: map[string]*neighbor{}, heard: map[string]map[string][]string{}}
}

// alive records an exchange with neighbour id at socket that succeeded at
// now, with the paths it advertised (nil keeps the last ones). It reports
// whether the neighbour came up, and whether its paths differ from those it
// advertised last: then this member's routes may change, and its
// neighbours should hear of it now rather than at the next heartbeat.
func (t *routeTable) alive(id, socket string, advertised map[string][]string, now time.Time) (cameUp, newPaths bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id == t.self || id == "" {
		return false, false
	}
	n := t.neighbors[id]
	if n == nil {
		n = &neighbor{id: id, since: now}
		t.neighbors[id] = n
	}
	if socket != "" {
		n.socket = socket
	}
	cameUp = !n.up
	if cameUp {
		n.since = now
	}
	n.up, n.heard, n.reason = true, now, ""
	if advertised != nil {
		accepted := t.accept(id, advertised)
		newPaths = !samePaths(t.heard[id], accepted)
		t.heard[id] = accepted
	}
	return cameUp, newPaths
}

// samePaths reports whether two advertisements hold the same paths.
func samePaths(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for dest, path := range a {
		if other, ok := b[dest]; !ok || !slices.Equal(path, other) {
			return false
		}
	}
	return true
}

// accept keeps the paths advertised by neighbour from that are well formed
// (from the neighbour to the destination) and do not pass through this
// member.
func (t *routeTable) accept(from string, advertised map[string][]string) map[string][]string {
	out := make(map[string][]string, len(advertised))
	for dest, path := range advertised {
		if dest == t.self || dest == from || len(path) < 2 || path[0] != from || path[len(path)-1] != dest || slices.Contains(path, t.self) {
			continue
		}
		out[dest] = slices.Clone(path)
	}
	return out
}

// silent marks the neighbours not heard since before deadline as down,
// with reason, and returns their ids.
func (t *routeTable) silent(deadline, now time.Time, reason func(id string) string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var down []string
	for id, n := range t.neighbors {
		if n.up && n.heard.Before(deadline) {
			n.up, n.since, n.reason = false, now, reason(id)
			delete(t.heard, id)
			down = append(down, id)
		}
	}
	sort.Strings(down)
	return down
}

// setSelf changes the id of the local member, forgetting what was learned
// for another.
func (t *routeTable) setSelf(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.self != id {
		t.self = id
		t.neighbors = map[string]*neighbor{}
		t.heard = map[string]map[string][]string{}
	}
}

// forget drops neighbour id.
func (t *routeTable) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.neighbors, id)
	delete(t.heard, id)
}

// neighborList returns a copy of every neighbour's state, by id.
func (t *routeTable) neighborList() []neighbor {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]neighbor, 0, len(t.neighbors))
	for _, n := range t.neighbors {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// routes returns the best route to every member reachable now.
func (t *routeTable) routes() map[string]route {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]route{}
	ids := make([]string, 0, len(t.neighbors))
	for id := range t.neighbors {
		ids = append(ids, id)
	}
	sort.Strings(ids) // ties go to the smallest neighbour id
	for _, id := range ids {
		if t.neighbors[id].up {
			out[id] = route{via: id, path: []string{id}}
		}
	}
	for _, id := range ids {
		if !t.neighbors[id].up {
			continue
		}
		for dest, path := range t.heard[id] {
			if dest == t.self {
				continue
			}
			candidate := route{via: id, path: path}
			if cur, ok := out[dest]; !ok || candidate.distance() < cur.distance() {
				out[dest] = candidate
			}
		}
	}
	return out
}

// routeAvoiding returns the shortest route to dest, through a neighbour
// that is up, on which no member of avoid lies (as next hop or further
// on): the way around a stale route that leads back along the path a
// message came.
func (t *routeTable) routeAvoiding(dest string, avoid []string) (route, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear := func(path []string) bool {
		for _, id := range path {
			if slices.Contains(avoid, id) {
				return false
			}
		}
		return true
	}
	var best route
	found := false
	for id, n := range t.neighbors {
		if !n.up {
			continue
		}
		var path []string
		if id == dest {
			path = []string{dest}
		} else {
			path = t.heard[id][dest]
		}
		if len(path) == 0 || !clear(path) {
			continue
		}
		candidate := route{via: id, path: path}
		if !found || candidate.distance() < best.distance() || candidate.distance() == best.distance() && id < best.via {
			best, found = candidate, true
		}
	}
	return best, found
}

// neighborState returns neighbour id's state.
func (t *routeTable) neighborState(id string) (neighbor, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.neighbors[id]
	if !ok {
		return neighbor{}, false
	}
	return *n, true
}

// advertisement is what this member tells a neighbour of its routes: the
// path to each member it reaches, starting with itself. The routes through
// that neighbour are left out (split horizon): the neighbour would refuse
// them anyway, and they only cost bytes.
func advertisement(self, to string, routes map[string]route) map[string][]string {
	out := make(map[string][]string, len(routes))
	for dest, r := range routes {
		if r.via == to || dest == to {
			continue
		}
		out[dest] = append([]string{self}, r.path...)
	}
	return out
}

// advertise is the advertisement to neighbour to (every neighbour when
// empty), keeping only the members this one has a record of: a neighbour
// that hears of a path asks this member at once and must find the
// destination among those it describes, or it would keep a route to a
// member it cannot name until the next heartbeat.
func (b *Broker) advertise(ctx context.Context, self, to string) map[string][]string {
	routes := b.routes.routes()
	ms, err := b.table.get(ctx)
	if err == nil {
		for dest := range routes {
			if m := ms.byID[dest]; m == nil || m.Local {
				delete(routes, dest)
			}
		}
	}
	return advertisement(self, to, routes)
}
