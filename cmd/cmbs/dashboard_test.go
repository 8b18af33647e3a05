package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config"
)

// json12 asks for OCCI 1.2 JSON, whose attributes are flat dotted names.
const json12 = "application/occi+json; version=1.2"

// uiMember is a `cmbs serve` whose configuration declares its local member.
type uiMember struct {
	*server
	id      string
	sockets map[string]string
	http    *brokertest.Client
}

// startUIMember serves a member with every layer started on free loopback
// ports; with neighbours it discovers them before it serves.
func startUIMember(t *testing.T, m config.Member, args ...string) *uiMember {
	t.Helper()
	m.Sockets = e2eSockets(t)
	m.Start = config.MemberLayers()
	m.Discover = len(m.Neighbors) > 0
	raw, err := json.Marshal(map[string]any{"member": m})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cmbs.yaml")
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, append([]string{"--config", cfg, "--store", "file:" + filepath.Join(dir, "store"), "--log-level", "warn"}, args...)...)
	return &uiMember{server: s, id: m.ID, sockets: m.Sockets, http: &brokertest.Client{T: t, URL: s.url, Name: m.ID}}
}

// attrs reads an entity's flat attributes.
func (m *uiMember) attrs(path string) map[string]any {
	res := m.http.MustRequest(http.StatusOK, "GET", path, nil, "Accept", json12)
	a, _ := res.Body["attributes"].(map[string]any)
	return a
}

func (m *uiMember) layerState(layer string) string {
	layers, _ := m.attrs("/cmbs/member/" + m.id)["cmbs.member.layers"].(map[string]any)
	s, _ := layers[layer].(string)
	return s
}

func hostPort(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestDashboard opens the dashboard of member A in a cluster of three
// (A's neighbour is B, B's is C) and uses every view as a person would:
// the graph shows the three members and their links, a layer stops and
// starts from the page, an L2 and an L1 message are sent from the form
// and their outcomes and events appear, messages page and filter, and
// nothing is logged to the console. Screenshots of each view are written
// to the test's output folder.
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("an end-to-end test: runs without -short")
	}
	chromiumPath(t)
	c := startUIMember(t, config.Member{ID: "member-c", Title: "member C", Topics: []string{"weather.paris", "news"}, Providers: []string{"storage"}})
	b := startUIMember(t, config.Member{ID: "member-b", Title: "member B", Topics: []string{"weather.*"}, Providers: []string{"compute"},
		Neighbors: []string{c.sockets["l1"]}})
	a := startUIMember(t, config.Member{ID: "member-a", Title: "member A", Neighbors: []string{b.sockets["l1"]}})
	// Messages from before the page opened: the page knows no time for
	// them, so they come after the others, by id.
	bulk := []any{}
	for i := range 23 {
		bulk = append(bulk, map[string]any{"kind": "http://houssem.org/cmbs#message", "id": fmt.Sprintf("bulk-%02d", i),
			"mixins": []string{"http://houssem.org/cmbs#l32"},
			"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{
				"cmbs_layer": "l32", "topics": []string{"news.sport"}, "message_content": i}}}})
	}
	a.http.Must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": bulk})
	br := startBrowser(t, nil)

	// A browser asking for / is sent to the dashboard.
	br.do("open /", chromedp.Navigate(a.url+"/"))
	br.wait("redirected to the dashboard", `location.pathname === "/ui/"`)
	br.wait("the local member", `document.querySelector("#local-id")?.textContent === "member-a"`)
	br.wait("its five layers running", `document.querySelectorAll('#layers [data-state="running"]').length === 5`)
	br.wait("three members counted", `document.querySelector("#count-members .value")?.textContent === "3"`)
	br.wait("the event stream", `document.querySelector("#conn").dataset.state === "live"`)
	br.wait("the metrics", `document.querySelector("#traffic") !== null`)
	br.wait("the counts", `document.querySelector("#count-messages .value")?.textContent === "23"`)

	t.Log("members and routes")
	br.show("#/members", `document.querySelectorAll("#graph [data-member]").length === 3`)
	edges := evalJS[[]string](br, `[...document.querySelectorAll("#graph [data-edge]")].map((e) => `+
		"`${e.dataset.edge} neighbours=${e.dataset.neighbour} route=${e.dataset.route}`).sort()")
	wantEdges := []string{
		"member-a member-b neighbours=true route=true",  // A's declared neighbour, its route to B
		"member-a member-c neighbours=false route=true", // learned through B, reached directly
		"member-b member-c neighbours=true route=false"} // B's declared neighbour
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("graph edges = %q, want %q", edges, wantEdges)
	}
	br.wait("B and C reachable", `["member-b", "member-c"].every((m) => document.querySelector(`+
		"`#graph [data-member=\"${m}\"]`"+`).dataset.status === "reachable")`)
	// Keyboard: the node takes the focus and Enter selects it.
	br.do("select member-b with the keyboard",
		chromedp.Focus(chromedp.CSS(`#graph [data-member="member-b"]`)),
		chromedp.KeyEvent(kb.Enter))
	br.wait("member-b's attributes", `document.querySelector("#member-detail-title")?.textContent.startsWith("member-b") &&
		document.querySelector('#member-detail [data-field="topics"]').textContent === "weather.*" &&
		document.querySelector('#member-detail [data-field="providers"]').textContent === "compute"`)
	br.wait("the selection in the address", `location.hash === "#/members/member-b"`)
	br.wait("focus kept on the node", `document.activeElement?.dataset.member === "member-b"`)
	br.shot("members")
	if _, err := chromedp.Call(br.tab, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	br.shot("members-dark")
	if _, err := chromedp.Call(br.tab, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}}); err != nil {
		t.Fatal(err)
	}

	t.Log("stop and start a layer")
	br.show("#/overview", `document.querySelector('[data-action="stop_l2"]') !== null`)
	br.do("click Stop on l2", chromedp.Click(chromedp.CSS(`[data-action="stop_l2"]`)))
	br.wait("l2 shown stopped", `document.querySelector('#layers tr[data-layer="l2"] [data-state]').dataset.state === "stopped"`)
	if got := a.layerState("l2"); got != "stopped" {
		t.Errorf("after Stop, member-a's l2 is %q, want stopped", got)
	}
	if addr := hostPort(t, a.sockets["l2"]); !e2ePortFree(addr) {
		t.Errorf("after Stop, l2's socket %s is still bound", addr)
	}
	br.do("click Start on l2", chromedp.Click(chromedp.CSS(`[data-action="start_l2"]`)))
	br.wait("l2 shown running", `document.querySelector('#layers tr[data-layer="l2"] [data-state]').dataset.state === "running"`)
	if got := a.layerState("l2"); got != "running" {
		t.Errorf("after Start, member-a's l2 is %q, want running", got)
	}
	br.do("click Check neighbours", chromedp.Click(chromedp.CSS(`[data-action="check_neighbors"]`)))
	br.wait("discovery's outcome", `document.querySelector("#announce").textContent === "Discovery: 2 members discovered, 0 sockets unreachable"`)

	t.Log("send an L2 message from the form")
	br.show("#/send", `document.querySelector("#send-form") !== null`)
	br.do("fill in and send an L2 message",
		br.set("send-layer", "l2"),
		chromedp.SendKeys(chromedp.ID("send-content"), `{"text":"hello from the dashboard"}`),
		chromedp.Click(chromedp.CSS("#send-form details summary")),
		chromedp.SendKeys(chromedp.ID("send-id"), "ui-l2"),
		chromedp.Click(chromedp.ID("send-submit")))
	br.wait("the L2 outcome", `document.querySelector("#send-result .summary")?.dataset.state === "done"`)
	br.wait("delivered to B and C", `["member-b", "member-c"].every((m) => document.querySelector(`+
		"`#send-result tr[data-destination=\"${m}\"]`"+`)?.dataset.status === "delivered")`)
	br.shotPage("send")
	for _, m := range []*uiMember{b, c} {
		content, _ := m.attrs("/cmbs/message/ui-l2")["cmbs.message.message_content"].(map[string]any)
		if content["text"] != "hello from the dashboard" {
			t.Errorf("%s stored ui-l2 with content %v", m.id, content)
		}
	}

	t.Log("the event stream")
	// B broadcasts too, so A reports a message received.
	b.http.Must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#message", "id": "from-b", "mixins": []string{"http://houssem.org/cmbs#l2"},
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{"cmbs_layer": "l2", "message_content": "hello from B"}}}}}})
	b.http.Must(http.StatusAccepted, "POST", "/cmbs/message/from-b?action=send_l2", map[string]any{})
	br.show("#/events", `document.querySelector('#events-list li[data-location="/cmbs/message/ui-l2"]') !== null &&
		document.querySelector('#events-list li[data-event="message_received"][data-location="/cmbs/message/from-b"]') !== null`)
	br.shot("events")
	br.do("pause", chromedp.Click(chromedp.ID("events-pause")))
	a.http.Must(http.StatusCreated, "POST", "/cmbs/message/", map[string]any{"resources": []any{map[string]any{
		"kind": "http://houssem.org/cmbs#message", "id": "while-paused",
		"attributes": map[string]any{"cmbs": map[string]any{"message": map[string]any{"message_content": "x"}}}}}})
	br.wait("the new event waits", `/paused, [1-9][0-9]* new events? waiting/.test(document.querySelector("#events-status").textContent)`)
	if evalJS[bool](br, `document.querySelector('#events-list li[data-location="/cmbs/message/while-paused"]') !== null`) {
		t.Error("a paused event list shows a new event")
	}
	br.do("resume", chromedp.Click(chromedp.ID("events-pause")))
	br.wait("the waiting event shown", `document.querySelector('#events-list li[data-location="/cmbs/message/while-paused"]') !== null`)
	br.do("filter by text", chromedp.SendKeys(chromedp.ID("events-text"), "ui-l2"))
	br.wait("only ui-l2's events", `[...document.querySelectorAll("#events-list li[data-location]")].every((li) => li.dataset.location.endsWith("/ui-l2"))`)

	t.Log("send an L1 message and see the reply")
	br.show("#/send", `document.querySelector("#send-form") !== null`)
	br.do("fill in and send an L1 message",
		br.set("send-layer", "l1"),
		chromedp.SendKeys(chromedp.ID("send-to"), c.sockets["l1"]),
		br.set("send-content", ""),
		chromedp.SendKeys(chromedp.ID("send-content"), "ping"),
		br.set("send-id", ""),
		chromedp.SendKeys(chromedp.ID("send-id"), "ui-l1"),
		chromedp.Click(chromedp.ID("send-submit")))
	br.wait("C's reply", `/"content": "ping"/.test(document.querySelector("#send-reply")?.textContent) &&
		/"member": "member-c"/.test(document.querySelector("#send-reply").textContent)`)
	br.shotPage("send-l1")

	t.Log("the overview after some traffic")
	br.show("#/overview", `document.querySelector("#rate-sent .value")?.textContent.endsWith("/s") &&
		document.querySelector('#traffic tr[data-layer="l1"] td:nth-of-type(5)')?.textContent === "1"`)
	br.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	br.shotPage("overview")

	t.Log("messages, paged in the page")
	total := len(a.http.MustRequest(http.StatusOK, "GET", "/cmbs/message/", nil).Locations())
	br.show("#/messages", fmt.Sprintf(`document.querySelector("#page-info")?.textContent.startsWith("1–20 of %d,")`, total))
	br.shot("messages")
	order := evalJS[[]string](br, `[...document.querySelectorAll("#messages-table tr[data-message]")].map((r) => r.dataset.message)`)
	if len(order) != 20 {
		t.Errorf("first page has %d rows, want 20", len(order))
	}
	br.do("older", chromedp.Click(chromedp.CSS(".pager button:last-child")))
	br.wait("the second page", fmt.Sprintf(`document.querySelector("#page-info").textContent.startsWith("21–%d of %d,")`, total, total))
	all := slices.Concat(order, evalJS[[]string](br, `[...document.querySelectorAll("#messages-table tr[data-message]")].map((r) => r.dataset.message)`))
	if i1, i2 := slices.Index(all, "ui-l1"), slices.Index(all, "ui-l2"); i1 < 0 || i2 < 0 || i1 > i2 {
		t.Errorf("messages in order %q: want ui-l1 (sent last) before ui-l2", all)
	}
	br.do("filter by topic", chromedp.SendKeys(chromedp.ID("f-topic"), "news.>"))
	br.wait("the bulk messages", `document.querySelector("#page-info").textContent.startsWith("1–20 of 23 ")`)
	br.do("clear the topic, filter by layer",
		br.set("f-topic", ""),
		br.set("f-layer", "l1"))
	br.wait("only ui-l1", `[...document.querySelectorAll("#messages-table tr[data-message]")].map((r) => r.dataset.message).join() === "ui-l1"`)
	br.do("filter by state",
		br.set("f-layer", ""),
		br.set("f-state", "done"))
	br.wait("the two sent", `[...document.querySelectorAll("#messages-table tr[data-message]")].map((r) => r.dataset.message).join() === "ui-l1,ui-l2"`)
	br.do("open ui-l2", chromedp.Click(chromedp.CSS(`#messages-table tr[data-message="ui-l2"] a`)))
	br.wait("ui-l2's outcome", `document.querySelector('#message-outcome tr[data-destination="member-c"] td:nth-of-type(4)')?.textContent === "member-a → member-c"`)
	br.do("resend", chromedp.Click(chromedp.ID("resend")))
	br.wait("the resend's outcome", `/duplicate/.test(document.querySelector('#message-outcome tr[data-destination="member-b"]')?.textContent) &&
		document.querySelector("#message-outcome .summary").dataset.state === "done"`)
	br.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	br.shot("message")

	t.Log("a member goes down")
	if err := b.stop(t); err != nil {
		t.Fatalf("stop member-b: %v", err)
	}
	br.show("#/send", `document.querySelector("#send-form") !== null`)
	br.do("send an L2 message with B down",
		br.set("send-layer", "l2"),
		br.set("send-content", "anyone there?"),
		br.set("send-id", "ui-l2-down"),
		br.set("send-expires", "2s"),
		chromedp.Click(chromedp.ID("send-submit")))
	br.wait("B expired, C delivered", `document.querySelector("#send-result .summary")?.dataset.state === "done" &&
		document.querySelector('#send-result tr[data-destination="member-b"]')?.dataset.status === "expired" &&
		document.querySelector('#send-result tr[data-destination="member-c"]')?.dataset.status === "delivered"`)
	br.show("#/members/member-b", `document.querySelector('#graph [data-member="member-b"]')?.dataset.status === "unreachable" &&
		document.querySelector('#graph [data-member="member-c"]')?.dataset.status === "reachable"`)
	br.shot("members-unreachable")
	br.show("#/events", `document.querySelector('#events-list li[data-event="delivery_failed"][data-location="/cmbs/message/ui-l2-down"]') !== null`)

	t.Log("categories")
	br.show("#/categories", `document.querySelector('[data-category="http://houssem.org/cmbs#member"]') !== null`)
	br.do("open the member kind", chromedp.Click(chromedp.CSS(`[data-category="http://houssem.org/cmbs#member"] summary`)))
	br.wait("its attributes", `[...document.querySelectorAll('[data-category="http://houssem.org/cmbs#member"] th')].some((th) => th.textContent === "cmbs.member.l1_socket")`)
	br.shot("categories")

	t.Log("a narrow window")
	br.do("narrow the window", chromedp.EmulateViewport(390, 844))
	for _, v := range []string{"overview", "members", "messages", "send", "events", "categories"} {
		br.show("#/"+v, fmt.Sprintf(`!document.querySelector("#view-%s").hidden`, v))
		br.wait(v+" fits a narrow window", `document.documentElement.scrollWidth <= window.innerWidth`)
		if v == "overview" {
			br.shot("narrow-overview")
		}
	}
	br.show("#/members/member-c", `document.querySelector("#member-detail-title")?.textContent.startsWith("member-c")`)
	br.shot("narrow-members")

	if evalJS[bool](br, `!document.querySelector("#alert").hidden`) {
		t.Errorf("the page shows an error: %s", evalJS[string](br, `document.querySelector("#alert").textContent`))
	}
	br.noConsoleErrors()
}

// TestDashboardModules runs the page's own logic in the browser: topic
// matching, the Prometheus text parser and histogram quantiles.
func TestDashboardModules(t *testing.T) {
	chromiumPath(t)
	s := startServe(t, "--store", "file:"+t.TempDir(), "--log-level", "warn")
	br := startBrowser(t, nil)
	br.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	br.wait("the page", `document.querySelector("#main") !== null`)
	failures := evalJS[[]string](br, `(async () => {
		const model = await import("/ui/js/model.js");
		const metrics = await import("/ui/js/metrics.js");
		const out = [];
		const topics = [
			["weather.*", "weather.paris", true], ["weather.*", "weather", false], ["weather.*", "weather.paris.temp", false],
			["weather.>", "weather.paris.temp", true], ["weather.>", "weather", false], ["weather.#", "weather.x", true],
			["weather.+", "weather.x", true], ["news", "news", true], ["news", "News", false], ["*", "a", true], ["a.*.c", "a.b.c", true],
		];
		for (const [p, t, want] of topics) {
			if (model.topicMatches(p, t) !== want) out.push("topicMatches(" + p + ", " + t + ") != " + want);
		}
		const text = [
			"# HELP x_total things",
			"# TYPE x_total counter",
			'x_total{layer="l1"} 3',
			'x_total{layer="l2",odd="a \\"quoted\\" \\\\ value"} 4.5',
			"h_bucket{le=\"0.1\"} 1", "h_bucket{le=\"1\"} 3", "h_bucket{le=\"+Inf\"} 4",
			"bad line {",
			"up 1 1700000000000",
		].join("\n");
		const m = metrics.parse(text);
		if (metrics.sum(m, "x_total") !== 7.5) out.push("sum x_total = " + metrics.sum(m, "x_total"));
		if (metrics.sum(m, "x_total", { layer: "l1" }) !== 3) out.push("sum x_total{l1}");
		if (m.get("x_total")[1].labels.odd !== 'a "quoted" \\ value') out.push("label escapes: " + m.get("x_total")[1].labels.odd);
		if (metrics.sum(m, "up") !== 1) out.push("timestamped sample");
		if (metrics.sum(m, "missing") !== null) out.push("missing metric");
		const q = metrics.quantile(0.5, [{ le: 0.1, count: 1 }, { le: 1, count: 3 }, { le: Infinity, count: 4 }]);
		if (Math.abs(q - 0.55) > 1e-9) out.push("p50 = " + q);
		if (metrics.quantile(0.99, [{ le: 1, count: 3 }, { le: Infinity, count: 4 }]) !== 1) out.push("p99 in +Inf bucket");
		if (metrics.quantile(0.5, [{ le: 1, count: 0 }]) !== null) out.push("quantile of nothing");
		const members = new Map([
			["a", { id: "a", attributes: { "cmbs.member.local": "true", "cmbs.member.l1_socket": "tcp://h:1",
				"cmbs.member.neighbors_socket": ["tcp://h:2", "tcp://h:9"],
				"cmbs.member.neighbors_state": { "tcp://h:2": "reachable: b", "tcp://h:9": "unreachable: timeout" } } }],
			["b", { id: "b", attributes: { "cmbs.member.l1_socket": "tcp://h:2", "cmbs.member.neighbors_socket": ["tcp://h:3"],
				"cmbs.member.distance": 1, "cmbs.member.via": "", "cmbs.member.last_seen": "2026-01-01T00:00:00Z" } }],
			["c", { id: "c", attributes: { "cmbs.member.l1_socket": "tcp://h:3", "cmbs.member.distance": 2, "cmbs.member.via": "b" } }],
		]);
		const obs = new Map();
		const reach = model.reachability(members, "a", obs);
		if (reach.get("b").status !== "reachable") out.push("b: " + reach.get("b").status);
		if (reach.get("c").status !== "unknown") out.push("c: " + reach.get("c").status);
		model.observe(obs, "c", false, "2026-01-02T00:00:00Z", "refused");
		if (model.reachability(members, "a", obs).get("c").status !== "unreachable") out.push("c after a failed delivery");
		const g = model.graph(members, "a", model.reachability(members, "a", obs));
		const edges = g.edges.map((e) => e.a + "-" + e.b + (e.neighbour ? "n" : "") + (e.route ? "r" : "")).sort().join(" ");
		if (edges !== "a-bnr a-socket:tcp://h:9n b-cnr") out.push("edges: " + edges);
		const dangling = g.nodes.find((n) => n.id === "socket:tcp://h:9");
		if (!dangling || dangling.status !== "unreachable") out.push("unreachable neighbour socket: " + JSON.stringify(dangling));
		const pos = model.layout(g.nodes, g.edges, 640, 420);
		for (const [id, p] of pos) {
			if (!(p.x >= 0 && p.x <= 640 && p.y >= 0 && p.y <= 420)) out.push("node " + id + " outside the box");
			for (const [other, q] of pos) {
				if (other !== id && Math.hypot(p.x - q.x, p.y - q.y) < 44) out.push("nodes " + id + " and " + other + " overlap");
			}
		}
		const msg = { id: "m", attributes: { cmbs: { message: { delivery: { state: "done", failed: 1, layer: "l2" }, origin: "a" } } } };
		if (model.messageState(msg, "a") !== "failed") out.push("nested delivery state: " + model.messageState(msg, "a"));
		if (model.messageLayer(msg) !== "l2") out.push("layer from delivery");
		if (model.messageState({ id: "r", attributes: { "cmbs.message.origin": "b" } }, "a") !== "received") out.push("received");
		return out;
	})()`)
	if len(failures) > 0 {
		t.Errorf("the page's modules:\n%s", strings.Join(failures, "\n"))
	}
	br.noConsoleErrors()
}

// TestDashboardAuth serves the dashboard with --users: the browser is asked
// for credentials, and with them the page, its requests and its event
// stream all work; a layer stops from the page.
func TestDashboardAuth(t *testing.T) {
	chromiumPath(t)
	users := brokertest.UsersFile(t, "operator", "s3cret-pw")
	m := startUIMember(t, config.Member{ID: "member-x"}, "--users", users)
	m.http.User, m.http.Password = "operator", "s3cret-pw"

	anon := m.http.Anonymous().Request("GET", "/ui/", nil, "Accept", "text/html")
	if anon.Status != http.StatusUnauthorized || !strings.HasPrefix(anon.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("GET /ui/ without credentials = %d %q, want 401 with a Basic challenge", anon.Status, anon.Header.Get("WWW-Authenticate"))
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c := *m.http
	c.HTTP = noFollow
	if res := c.Request("GET", "/", nil, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8"); res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / from a browser = %d to %q, want 303 to /ui/", res.Status, res.Header.Get("Location"))
	}
	if res := c.Request("GET", "/", nil, "Accept", "*/*"); res.Status != http.StatusOK {
		t.Errorf("GET / accepting */* = %d, want the API's 200", res.Status)
	}

	br := startBrowser(t, &credentials{user: "operator", password: "s3cret-pw"})
	br.do("open /ui/", chromedp.Navigate(m.url+"/ui/"))
	br.wait("the local member", `document.querySelector("#local-id")?.textContent === "member-x"`)
	br.wait("the event stream, authenticated", `document.querySelector("#conn").dataset.state === "live"`)
	if br.prompts.Load() == 0 {
		t.Error("the browser was never asked for credentials")
	}
	br.do("click Stop on l1", chromedp.Click(chromedp.CSS(`[data-action="stop_l1"]`)))
	br.wait("l1 shown stopped", `document.querySelector('#layers tr[data-layer="l1"] [data-state]').dataset.state === "stopped"`)
	if got := m.layerState("l1"); got != "stopped" {
		t.Errorf("after Stop, l1 is %q, want stopped", got)
	}
	br.show("#/events", `document.querySelector('#events-list li[data-location="/cmbs/member/member-x"]') !== null`)
	br.noConsoleErrors()
}
