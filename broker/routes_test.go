package broker

import (
	"reflect"
	"testing"
	"time"
)

// TestRouteTable: paths learned from neighbours give each member its
// shortest route; paths through this member are refused; a neighbour that
// goes silent takes its routes with it and the next best take over.
func TestRouteTable(t *testing.T) {
	now := time.Now()
	// a sees b and c; b reaches d in one hop, c in two (through e).
	a := newRouteTable("a")
	a.alive("b", "tcp://b", map[string][]string{"d": {"b", "d"}, "e": {"b", "d", "e"}, "c": {"b", "a", "c"}}, now)
	a.alive("c", "tcp://c", map[string][]string{"d": {"c", "e", "d"}, "e": {"c", "e"}}, now)
	routes := a.routes()
	want := map[string]route{
		"b": {via: "b", path: []string{"b"}},
		"c": {via: "c", path: []string{"c"}},
		"d": {via: "b", path: []string{"b", "d"}},
		"e": {via: "c", path: []string{"c", "e"}},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Fatalf("routes = %v\nwant %v", routes, want)
	}
	// The split horizon: what a tells b leaves out the routes through b.
	adv := advertisement("a", "b", routes)
	if _, ok := adv["d"]; ok || !reflect.DeepEqual(adv["e"], []string{"a", "c", "e"}) || !reflect.DeepEqual(adv["c"], []string{"a", "c"}) {
		t.Fatalf("advertisement to b = %v", adv)
	}

	// b goes silent: d is reached through c now.
	down := a.silent(now.Add(time.Second), now.Add(3*time.Second), func(string) string { return "silent" })
	if !reflect.DeepEqual(down, []string{"b", "c"}) {
		t.Fatalf("silent = %v", down)
	}
	a.alive("c", "", nil, now.Add(4*time.Second)) // c answers again, its paths kept? no: silent dropped them
	if r := a.routes(); len(r) != 1 || r["c"].via != "c" {
		t.Fatalf("after c came back without paths: %v", r)
	}
	a.alive("c", "", map[string][]string{"d": {"c", "e", "d"}, "e": {"c", "e"}}, now.Add(5*time.Second))
	if r := a.routes(); r["d"].via != "c" || r["d"].distance() != 3 {
		t.Fatalf("d after b went down: %v", r["d"])
	}
	if n, _ := a.neighborState("b"); n.up || n.reason != "silent" {
		t.Fatalf("b: %+v", n)
	}
	// Malformed paths are refused.
	a.alive("c", "", map[string][]string{"x": {"y", "x"}, "z": {"c", "q"}, "c": {"c"}}, now)
	if r := a.routes(); len(r) != 1 {
		t.Fatalf("malformed paths taken: %v", r)
	}
}

// TestRouteAvoiding: a route around members a message already passed is
// the shortest whose hops are all clear of them, the destination itself
// when it is a neighbour.
func TestRouteAvoiding(t *testing.T) {
	now := time.Now()
	a := newRouteTable("a")
	a.alive("b", "tcp://b", map[string][]string{"d": {"b", "d"}}, now)
	a.alive("c", "tcp://c", map[string][]string{"d": {"c", "e", "d"}}, now)
	a.alive("d", "tcp://d", nil, now)
	tests := []struct {
		name    string
		dest    string
		avoid   []string
		wantVia string
		wantOK  bool
	}{
		{name: "direct neighbour", dest: "d", avoid: []string{"x"}, wantVia: "d", wantOK: true},
		{name: "not through b", dest: "e", avoid: []string{"b"}, wantOK: false},
		{name: "the destination itself avoided", dest: "d", avoid: []string{"d"}, wantOK: false},
		{name: "around b and d's own socket is still d", dest: "d", avoid: []string{"b"}, wantVia: "d", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := a.routeAvoiding(tt.dest, tt.avoid)
			if ok != tt.wantOK || ok && r.via != tt.wantVia {
				t.Errorf("routeAvoiding(%s, %v) = %v, %v; want via %q, %v", tt.dest, tt.avoid, r, ok, tt.wantVia, tt.wantOK)
			}
		})
	}
	// d down: around b, the way to d is through c and e.
	a.silent(now.Add(time.Second), now.Add(2*time.Second), func(string) string { return "silent" })
	a.alive("b", "", nil, now.Add(3*time.Second))
	a.alive("c", "", map[string][]string{"d": {"c", "e", "d"}}, now.Add(3*time.Second))
	if r, ok := a.routeAvoiding("d", []string{"b"}); !ok || r.via != "c" {
		t.Errorf("around b with d down: %v, %v; want via c", r, ok)
	}
}
