package broker_test

// A mesh of in-process members on real loopback ZeroMQ sockets, in a
// random connected graph: every member lists a few earlier members as its
// neighbours (a random spanning tree, plus extra edges), heartbeats at the
// product's default interval do the rest. TestMesh checks that discovery
// converges and that an L2 from a random member reaches every other exactly
// once; BenchmarkMesh50 measures the same on 50 members, with the memory
// and idle CPU a member costs:
//
//	go test -run '^$' -bench Mesh50 -benchtime 5x ./broker/

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/api"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/occi"
)

// meshExecutor counts the runs of each message on each member, so a test
// sees a message executed twice anywhere.
type meshExecutor struct {
	mu   sync.Mutex
	runs map[string]map[string]int // message -> member -> runs
}

func (x *meshExecutor) Execute(_ context.Context, member string, msg *occi.Entity) (any, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.runs[msg.ID] == nil {
		x.runs[msg.ID] = map[string]int{}
	}
	x.runs[msg.ID][member]++
	return map[string]any{"member": member}, nil
}

func (x *meshExecutor) runsOf(id string) map[string]int {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]int, len(x.runs[id]))
	for member, n := range x.runs[id] {
		out[member] = n
	}
	return out
}

// mesh is n members in a random connected graph.
type mesh struct {
	members []*brokertest.Member
	// edges lists, for each member, the earlier members it names as
	// neighbours.
	edges [][]int
	exec  *meshExecutor
	// last is when the last member was up, its layers started.
	last time.Time
}

// meshGraph returns, for each of n members, the earlier members it names
// as neighbours: one at random (a spanning tree) and, with probability
// extra, one more.
func meshGraph(rng *rand.Rand, n int, extra float64) [][]int {
	edges := make([][]int, n)
	for i := 1; i < n; i++ {
		edges[i] = []int{rng.IntN(i)}
		if i > 1 && rng.Float64() < extra {
			if j := rng.IntN(i); j != edges[i][0] {
				edges[i] = append(edges[i], j)
			}
		}
	}
	return edges
}

// diameter is the longest of the shortest paths between two members of
// the undirected graph edges describes.
func diameter(edges [][]int) int {
	n := len(edges)
	adj := make([][]int, n)
	for i, ns := range edges {
		for _, j := range ns {
			adj[i] = append(adj[i], j)
			adj[j] = append(adj[j], i)
		}
	}
	longest := 0
	for s := range n {
		dist := make([]int, n)
		for i := range dist {
			dist[i] = -1
		}
		dist[s] = 0
		queue := []int{s}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, v := range adj[u] {
				if dist[v] < 0 {
					dist[v] = dist[u] + 1
					longest = max(longest, dist[v])
					queue = append(queue, v)
				}
			}
		}
	}
	return longest
}

// startMesh starts n members, in order, each naming its neighbours of the
// graph seed gives; heartbeats run at the product's default interval.
func startMesh(tb testing.TB, n int, seed uint64) *mesh {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	m := &mesh{edges: meshGraph(rng, n, 0.3), exec: &meshExecutor{runs: map[string]map[string]int{}}}
	tb.Logf("mesh of %d members, seed %d (CMBS_MESH_SEED=%d reproduces it), diameter %d", n, seed, seed, diameter(m.edges))
	began := time.Now()
	for i := range n {
		var neighbors []*brokertest.Member
		for _, j := range m.edges[i] {
			neighbors = append(neighbors, m.members[j])
		}
		m.members = append(m.members, brokertest.Start(tb, brokertest.Options{
			ID: meshID(i), Neighbors: neighbors,
			Broker: broker.Config{HeartbeatInterval: broker.DefaultHeartbeatInterval, Executor: m.exec},
		}))
	}
	m.last = time.Now()
	tb.Logf("%d members started in %v", n, m.last.Sub(began).Round(time.Millisecond))
	return m
}

func meshID(i int) string { return fmt.Sprintf("mesh-%02d", i) }

// meshSeed is CMBS_MESH_SEED when set, a fresh seed otherwise.
func meshSeed(tb testing.TB) uint64 {
	if s := os.Getenv("CMBS_MESH_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("CMBS_MESH_SEED: %v", err)
		}
		return seed
	}
	return rand.Uint64()
}

// meshSize is CMBS_MESH_MEMBERS when set, def otherwise.
func meshSize(tb testing.TB, def int) int {
	s := os.Getenv("CMBS_MESH_MEMBERS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 2 {
		tb.Fatalf("CMBS_MESH_MEMBERS=%q: want a number of members, 2 or more", s)
	}
	return n
}

// missing lists, for the members that do not yet record every other as
// reachable, which they lack; empty when discovery converged.
func (m *mesh) missing(ctx context.Context) []string {
	var out []string
	for _, mb := range m.members {
		ents, err := occi.FindEntities(ctx, mb.Store, broker.MemberKind)
		if err != nil {
			out = append(out, mb.ID+": "+err.Error())
			continue
		}
		reachable := map[string]string{}
		for _, e := range ents {
			r, _ := e.Attr("cmbs.member.reachable")
			reachable[e.ID], _ = r.(string)
		}
		var lacks []string
		for _, other := range m.members {
			if r, known := reachable[other.ID]; other != mb && r != "true" {
				if !known {
					r = "unknown"
				}
				lacks = append(lacks, other.ID+" "+r)
			}
		}
		if len(lacks) > 0 {
			out = append(out, fmt.Sprintf("%s lacks %d (%s)", mb.ID, len(lacks), strings.Join(lacks[:min(3, len(lacks))], ", ")))
		}
	}
	return out
}

// converge waits, polling every few milliseconds, until every member
// records every other as reachable, and returns how long after the last
// member started that was.
func (m *mesh) converge(tb testing.TB, within time.Duration) time.Duration {
	tb.Helper()
	ctx := context.Background()
	var lacking []string
	deadline := m.last.Add(within)
	for {
		if lacking = m.missing(ctx); len(lacking) == 0 {
			return time.Since(m.last)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("discovery did not converge within %v; %d members lack others: %s",
				within, len(lacking), strings.Join(lacking[:min(5, len(lacking))], "; "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// broadcast creates message id on member from and sends it on L2; it
// returns when the send was accepted. The hop limit is the number of
// members: every member is then within reach, however long the graph's
// paths (a path never passes a member twice). The default, 8
// (api.DefaultHopLimit), is shorter than the longest path from a random
// sender in about one 50-member graph in six (one 20-member graph in a
// hundred): the members further away are then refused at the 8th hop.
func (m *mesh) broadcast(from int, id string) {
	src := m.members[from]
	src.Message(id, "l2", map[string]any{"hop_limit": len(m.members)})
	src.Must(202, "POST", broker.MessageLocation+id+"?action=send_l2", map[string]any{})
}

// reached waits until every member but from stores message id, and
// returns how long after start that was. It fails at once when the
// sender records a final failure for a member still waiting, and after
// within otherwise, saying what became of the message on its way.
func (m *mesh) reached(tb testing.TB, from int, id string, start time.Time, within time.Duration) time.Duration {
	tb.Helper()
	ctx := context.Background()
	pending := map[int]bool{}
	for i := range m.members {
		if i != from {
			pending[i] = true
		}
	}
	var looked time.Time
	for len(pending) > 0 {
		for i := range pending {
			if _, err := occi.GetEntity(ctx, m.members[i].Store, broker.MessageLocation+id); err == nil {
				delete(pending, i)
			}
		}
		if len(pending) == 0 {
			break
		}
		late := time.Since(start) > within
		if !late && time.Since(looked) < 100*time.Millisecond {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		looked = time.Now()
		var ids []string
		for i := range pending {
			ids = append(ids, meshID(i))
		}
		slices.Sort(ids)
		dests := m.destinations(from, id)
		failed := slices.ContainsFunc(ids, func(dest string) bool {
			status, _ := dests[dest]["status"].(string)
			return api.Final(status) && status != api.StatusDelivered
		})
		if late || failed {
			var said []string
			for _, dest := range ids[:min(3, len(ids))] {
				said = append(said, fmt.Sprintf("%s: %v\n%s", dest, dests[dest], m.trace(from, id, dest)))
			}
			tb.Fatalf("%s from %s not at %d members after %v: %s", id, meshID(from), len(ids),
				time.Since(start).Round(time.Millisecond), strings.Join(said, "\n"))
		}
	}
	return time.Since(start)
}

// destinations is what the sender's delivery of message id says of each
// destination.
func (m *mesh) destinations(from int, id string) map[string]map[string]any {
	e, err := occi.GetEntity(context.Background(), m.members[from].Store, broker.MessageLocation+id)
	if err != nil {
		return nil
	}
	raw, _ := e.Attr("cmbs.message.delivery")
	d, _ := raw.(map[string]any)
	all, _ := d["destinations"].(map[string]any)
	out := make(map[string]map[string]any, len(all))
	for dest, r := range all {
		out[dest], _ = r.(map[string]any)
	}
	return out
}

// trace says where a message to dest that did not get there may be: the
// route to dest from the sender on (each member's record of it: via,
// reachable, distance), and every outbox entry of the message naming dest.
func (m *mesh) trace(from int, id, dest string) string {
	ctx := context.Background()
	var out []string
	at, passed := meshID(from), map[string]bool{}
	for at != dest && !passed[at] {
		passed[at] = true
		i := slices.IndexFunc(m.members, func(mb *brokertest.Member) bool { return mb.ID == at })
		if i < 0 {
			break
		}
		e, err := occi.GetEntity(ctx, m.members[i].Store, broker.MemberLocation+dest)
		if err != nil {
			out = append(out, fmt.Sprintf("  %s has no record of %s: %v", at, dest, err))
			break
		}
		via, _ := e.Attr("cmbs.member.via")
		reachable, _ := e.Attr("cmbs.member.reachable")
		distance, _ := e.Attr("cmbs.member.distance")
		out = append(out, fmt.Sprintf("  %s routes to %s via %q (reachable %v, distance %v)", at, dest, via, reachable, distance))
		if at, _ = via.(string); at == "" {
			at = dest
		}
	}
	for _, mb := range m.members {
		docs, err := mb.Store.Scan(ctx, "outbox/", "", 1<<20)
		if err != nil {
			out = append(out, fmt.Sprintf("  %s: outbox not read: %v", mb.ID, err))
			continue
		}
		for _, d := range docs {
			var entry struct {
				To        []string `json:"to"`
				MessageID string   `json:"message_id"`
				Message   string   `json:"message"`
			}
			if json.Unmarshal(d.Body, &entry) == nil && slices.Contains(entry.To, dest) &&
				(entry.MessageID == id || entry.Message == broker.MessageLocation+id) {
				out = append(out, fmt.Sprintf("  %s's outbox holds %s for %v", mb.ID, d.ID, entry.To))
			}
		}
	}
	return strings.Join(out, "\n")
}

// checkOnce checks that message id from member from reached every other
// member exactly once: each stores it along a path from the sender to
// itself that passes no member twice, each ran it once (the sender never),
// and the sender's delivery records every destination delivered, none as
// a duplicate.
func (m *mesh) checkOnce(tb testing.TB, from int, id string) {
	tb.Helper()
	ctx := context.Background()
	src := m.members[from]
	for i, mb := range m.members {
		if i == from {
			continue
		}
		e, err := occi.GetEntity(ctx, mb.Store, broker.MessageLocation+id)
		if err != nil {
			tb.Errorf("%s: %s: %v", mb.ID, id, err)
			continue
		}
		raw, _ := e.Attr("cmbs.message.path_history")
		hops, _ := raw.([]any)
		path := make([]string, len(hops))
		for k, h := range hops {
			path[k], _ = h.(string)
		}
		if len(path) < 2 || path[0] != src.ID || path[len(path)-1] != mb.ID || len(slices.Compact(slices.Sorted(slices.Values(path)))) != len(path) {
			tb.Errorf("%s stores %s with path %v", mb.ID, id, path)
		}
	}
	runs := m.exec.runsOf(id)
	for i, mb := range m.members {
		want := 1
		if i == from {
			want = 0
		}
		if runs[mb.ID] != want {
			tb.Errorf("%s ran %s %d times, want %d", mb.ID, id, runs[mb.ID], want)
		}
	}
	delivery := src.WaitDelivery(id)
	dests, _ := delivery["destinations"].(map[string]any)
	if len(dests) != len(m.members)-1 {
		tb.Errorf("the delivery of %s names %d destinations, want %d", id, len(dests), len(m.members)-1)
	}
	for dest, r := range dests {
		res, _ := r.(map[string]any)
		if res["status"] != "delivered" || res["duplicate"] == true {
			tb.Errorf("the delivery of %s to %s: %v", id, dest, res)
		}
	}
}

// TestMesh: members in a random connected graph, each naming one or two
// others, find every other by heartbeats alone; an L2 from a random member
// then reaches each other member exactly once. 20 members, so that the
// race detector on a shared machine keeps it quick
// (CMBS_MESH_MEMBERS=50 runs the full mesh); timings are logged, not
// asserted (see BenchmarkMesh50).
func TestMesh(t *testing.T) {
	n := meshSize(t, 20)
	seed := meshSeed(t)
	m := startMesh(t, n, seed)
	took := m.converge(t, 30*time.Second)
	t.Logf("discovery converged %v after the last member started", took.Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(seed, 1))
	for k := range 2 {
		from := rng.IntN(n)
		id := fmt.Sprintf("mesh-l2-%d", k)
		start := time.Now()
		m.broadcast(from, id)
		took := m.reached(t, from, id, start, 30*time.Second)
		t.Logf("%s from %s reached the other %d members in %v", id, meshID(from), n-1, took.Round(time.Millisecond))
		m.checkOnce(t, from, id)
	}
}

// BenchmarkMesh50 measures a 50-member mesh: how long discovery takes to
// converge after the last member started, how long an L2 from a random
// member takes to reach the other 49 (the time per op; the first, which
// also opens the connections, and the slowest reported apart), the memory a member costs (Go heap in
// use, and resident memory, which counts libzmq's; both after GC, over the
// process before the mesh, per member), and its CPU at idle (process CPU
// time over an idle window once converged, per member, as a percentage of
// one core).
func BenchmarkMesh50(b *testing.B) {
	n := meshSize(b, 50)
	heap0, rss0 := memoryInUse()
	seed := meshSeed(b)
	m := startMesh(b, n, seed)
	converged := m.converge(b, 30*time.Second)
	heap1, rss1 := memoryInUse()

	const idle = 5 * time.Second
	cpu0, wall0 := cpuTime(b), time.Now()
	time.Sleep(idle)
	cpu := cpuTime(b) - cpu0
	wall := time.Since(wall0)

	rng := rand.New(rand.NewPCG(seed, 1))
	var first, slowest time.Duration
	var froms []int
	for b.Loop() {
		i := len(froms)
		froms = append(froms, rng.IntN(n))
		id := fmt.Sprintf("mesh-bench-%d", i)
		start := time.Now()
		m.broadcast(froms[i], id)
		took := m.reached(b, froms[i], id, start, time.Minute)
		if i == 0 {
			first = took
		}
		slowest = max(slowest, took)
	}
	b.StopTimer()
	for i, from := range froms {
		m.checkOnce(b, from, fmt.Sprintf("mesh-bench-%d", i))
	}
	b.ReportMetric(float64(converged.Milliseconds()), "converge-ms")
	// The first L2 also opens the connections between the members; the
	// time per op is the mean.
	b.ReportMetric(float64(first.Milliseconds()), "first-fanout-ms")
	b.ReportMetric(float64(slowest.Milliseconds()), "max-fanout-ms")
	b.ReportMetric(float64(heap1-heap0)/float64(n)/(1<<20), "heap-MiB/member")
	b.ReportMetric(float64(rss1-rss0)/float64(n)/(1<<20), "rss-MiB/member")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds()/float64(n), "idle-cpu-%/member")
	b.ReportMetric(float64(threads()), "threads")
}

// memoryInUse returns the Go heap in use and the process's resident set,
// in bytes, after a collection.
func memoryInUse() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, statusField("VmRSS") * 1024
}

// threads is the process's OS threads, libzmq's I/O threads included.
func threads() uint64 { return statusField("Threads") }

// statusField reads a number from /proc/self/status (0 where there is
// none).
func statusField(name string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// cpuTime is the user and system CPU time the process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
