package broker_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
)

// TestLayers runs a chain A→B→C of members: discovery through the chain,
// then each layer reaching exactly the members it should.
func TestLayers(t *testing.T) {
	c := brokertest.Start(t, brokertest.Options{ID: "member-c", Topics: []string{"weather.paris", "news"}, Providers: []string{"storage"}})
	b := brokertest.Start(t, brokertest.Options{ID: "member-b", Neighbors: []*brokertest.Member{c}, Topics: []string{"weather.*"}, Providers: []string{"compute"}})
	a := brokertest.Start(t, brokertest.Options{ID: "member-a", Neighbors: []*brokertest.Member{b}})

	b.Discover()
	res := a.Discover()
	if got := res["discovered"]; !reflect.DeepEqual(got, []any{"member-b", "member-c"}) {
		t.Fatalf("discovered %v", res)
	}
	for _, id := range []string{"member-b", "member-c"} {
		if !strings.HasSuffix(a.Attrs("/cmbs/member/"+id, "member")["l1_socket"].(string), strings.TrimPrefix(map[string]*brokertest.Member{"member-b": b, "member-c": c}[id].Sockets["l1"], "tcp://127.0.0.1")) {
			t.Errorf("A's record of %s lacks its socket", id)
		}
	}
	// B learned of A when A asked it.
	if b.Attrs("/cmbs/member/member-a", "member")["local"] != "false" {
		t.Errorf("B did not record A as a remote member")
	}

	for _, tc := range []struct {
		id, layer string
		attrs     map[string]any
		want      map[string]string
	}{
		{"m-l2", "l2", nil, map[string]string{"member-b": "delivered", "member-c": "delivered"}},
		{"m-l31", "l31", map[string]any{"providers": []any{"storage"}}, map[string]string{"member-c": "delivered"}},
		{"m-l32", "l32", map[string]any{"topics": []any{"weather.lyon"}}, map[string]string{"member-b": "delivered"}},
		{"m-l32-both", "l32", map[string]any{"topics": []any{"weather.paris"}}, map[string]string{"member-b": "delivered", "member-c": "delivered"}},
		{"m-l4", "l4", map[string]any{"providers": []any{"compute", "storage"}, "topics": []any{"news"}}, map[string]string{"member-c": "delivered"}},
		{"m-l4-none", "l4", map[string]any{"providers": []any{"compute"}, "topics": []any{"news"}}, map[string]string{}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			a.Message(tc.id, tc.layer, tc.attrs)
			d := a.Send(tc.id, tc.layer)
			if got := brokertest.Outcome(d); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("outcome %v, want %v (%v)", got, tc.want, d)
			}
			for id, m := range map[string]*brokertest.Member{"member-b": b, "member-c": c} {
				_, want := tc.want[id]
				if m.Has(tc.id) != want {
					t.Errorf("%s stores %s: %v, want %v", id, tc.id, !want, want)
				}
			}
			if tc.id == "m-l2" {
				got := c.Attrs("/cmbs/message/m-l2", "message")
				if !reflect.DeepEqual(got["path_history"], []any{"member-a", "member-c"}) {
					t.Errorf("path_history at C: %v", got["path_history"])
				}
				if got["result"].(map[string]any)["status"] != "executed" {
					t.Errorf("executable message not executed at C: %v", got["result"])
				}
			}
		})
	}

	t.Run("l1 request and reply", func(t *testing.T) {
		a.Message("m-l1", "l1", map[string]any{"l1_socket_receiver_member": c.Sockets["l1"], "message_content": "ping"})
		d := a.Send("m-l1", "l1")
		if brokertest.Outcome(d)["member-c"] != "delivered" {
			t.Fatalf("outcome %v", d)
		}
		result := a.Attrs("/cmbs/message/m-l1", "message")["result"].(map[string]any)
		if result["member"] != "member-c" || result["content"] != "ping" {
			t.Errorf("reply not written into result: %v", result)
		}
	})

	t.Run("duplicate stored once", func(t *testing.T) {
		d := a.Send("m-l2", "l2")
		dests := d["destinations"].(map[string]any)
		if dests["member-b"].(map[string]any)["duplicate"] != true {
			t.Errorf("second delivery not reported duplicate: %v", d)
		}
		status, list := b.Do("GET", "/cmbs/message/", nil)
		if status != 200 || len(list["X-OCCI-Location"].([]any)) != 3 {
			t.Errorf("B's messages: %v", list)
		}
	})

	t.Run("not storable", func(t *testing.T) {
		a.Message("m-volatile", "l2", map[string]any{"storable": "False"})
		d := a.Send("m-volatile", "l2")
		if len(brokertest.Outcome(d)) != 2 || d["delivered"] != 2.0 {
			t.Fatalf("outcome %v", d)
		}
		if b.Has("m-volatile") || c.Has("m-volatile") {
			t.Error("non-storable message stored")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		a.Message("m-closed", "l2", map[string]any{"sendable": "False"})
		a.Must(http.StatusBadRequest, "POST", "/cmbs/message/m-closed?action=send_l2", map[string]any{})
		a.Must(http.StatusBadRequest, "POST", "/cmbs/message/m-closed?action=send_l32", map[string]any{})
		a.Must(http.StatusConflict, "POST", "/cmbs/member/member-a?action=start_l2", map[string]any{})
		a.Must(http.StatusBadRequest, "POST", "/cmbs/member/member-b?action=start_l2", map[string]any{})
		a.Must(http.StatusConflict, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
			"id": "second", "attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "true"}}}}}})
		a.Must(http.StatusBadRequest, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
			"id": "bad", "attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "false", "l2_socket": "udp://x"}}}}}})
	})

	t.Run("stop and start a layer", func(t *testing.T) {
		b.Must(http.StatusOK, "POST", "/cmbs/member/member-b?action=stop_l2", map[string]any{})
		b.Must(http.StatusConflict, "POST", "/cmbs/member/member-b?action=stop_l2", map[string]any{})
		if got := b.Attrs("/cmbs/member/member-b", "member")["layers"].(map[string]any)["l2"]; got != "stopped" {
			t.Errorf("layers state %v", got)
		}
		// Store and forward: B gets what was sent while its l2 was down
		// once it is up again.
		a.Message("m-stopped", "l2", nil)
		a.Must(http.StatusAccepted, "POST", "/cmbs/message/m-stopped?action=send_l2", map[string]any{})
		cmbstest.Eventually(t, "C to take m-stopped", func() bool { return c.Has("m-stopped") })
		d := a.Attrs("/cmbs/message/m-stopped", "message")["delivery"].(map[string]any)
		if got := brokertest.Outcome(d); got["member-b"] != "pending" || d["state"] != "pending" {
			t.Fatalf("outcome with B's l2 stopped: %v", d)
		}
		// A reader of the message sees why B's copy waits.
		cmbstest.Eventually(t, "the reason m-stopped waits for B", func() bool {
			d = a.Attrs("/cmbs/message/m-stopped", "message")["delivery"].(map[string]any)
			reason, _ := d["destinations"].(map[string]any)["member-b"].(map[string]any)["reason"].(string)
			return strings.Contains(reason, "retrying since") && strings.Contains(reason, "unreachable")
		})
		b.Must(http.StatusOK, "POST", "/cmbs/member/member-b?action=start_l2", map[string]any{})
		d = a.WaitDelivery("m-stopped")
		if got := brokertest.Outcome(d); got["member-b"] != "delivered" || got["member-c"] != "delivered" {
			t.Fatalf("after B's l2 started again: %v", d)
		}
		if !b.Has("m-stopped") {
			t.Error("B does not hold the message sent while its l2 was down")
		}
	})

	t.Run("forwarding through a next hop", func(t *testing.T) {
		// Make A reach C only through B, as when C sits on a network only B
		// can reach.
		a.Must(http.StatusOK, "POST", "/cmbs/member/member-c", map[string]any{"resources": []any{map[string]any{
			"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "member-b", "distance": 2}}}}}})
		a.Message("m-hop", "l31", map[string]any{"providers": []any{"storage"}})
		d := a.Send("m-hop", "l31")
		r := d["destinations"].(map[string]any)["member-c"].(map[string]any)
		if r["status"] != "delivered" || r["via"] != "member-b" {
			t.Fatalf("forwarded outcome %v", d)
		}
		if got := c.Attrs("/cmbs/message/m-hop", "message")["path_history"]; !reflect.DeepEqual(got, []any{"member-a", "member-b", "member-c"}) {
			t.Errorf("path through B: %v", got)
		}
		if b.Has("m-hop") {
			t.Error("B stored a message only forwarded through it")
		}
		// B is both a destination and C's next hop: it keeps its copy and
		// forwards the other.
		a.Message("m-both", "l2", nil)
		dests := a.Send("m-both", "l2")["destinations"].(map[string]any)
		rb, rc := dests["member-b"].(map[string]any), dests["member-c"].(map[string]any)
		if rb["status"] != "delivered" || rb["via"] != nil || rc["status"] != "delivered" || rc["via"] != "member-b" {
			t.Fatalf("delivery to a next hop and through it: %v", dests)
		}
		if got := c.Attrs("/cmbs/message/m-both", "message")["path_history"]; !reflect.DeepEqual(got, []any{"member-a", "member-b", "member-c"}) {
			t.Errorf("path at C: %v", got)
		}
		if got := b.Attrs("/cmbs/message/m-both", "message")["path_history"]; !reflect.DeepEqual(got, []any{"member-a", "member-b"}) {
			t.Errorf("path at B: %v", got)
		}
		a.Message("m-short", "l31", map[string]any{"providers": []any{"storage"}, "hop_limit": 1})
		r = a.Send("m-short", "l31")["destinations"].(map[string]any)["member-c"].(map[string]any)
		if r["status"] != "failed" || !strings.Contains(r["reason"].(string), "hop limit") {
			t.Errorf("hop limit: %v", r)
		}
	})

	t.Run("member down", func(t *testing.T) {
		cmbstest.NoError(t, c.Close)
		a.Must(http.StatusOK, "POST", "/cmbs/member/member-c", map[string]any{"resources": []any{map[string]any{
			"attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"via": "", "distance": 1}}}}}})
		// Retried until it expires; the outcome says why it never got
		// there.
		a.Message("m-down", "l2", map[string]any{"expires": "1500ms"})
		d := a.Send("m-down", "l2")
		r := d["destinations"].(map[string]any)["member-c"].(map[string]any)
		if r["status"] != "expired" || !strings.Contains(r["reason"].(string), "last attempt") || brokertest.Outcome(d)["member-b"] != "delivered" {
			t.Fatalf("outcome with C down: %v", d)
		}
		b.Discover()
		res := a.Discover()
		if _, ok := res["unreachable"].(map[string]any)[c.Sockets["l1"]]; !ok {
			t.Errorf("C not reported unreachable: %v", res)
		}
	})
}

// TestOriginalSpellings posts the pyCMBS README's member kind (start_l3.1,
// l3.1_socket, no stop actions) over the built-in one: one kind remains,
// with every action, and both spellings work.
func TestOriginalSpellings(t *testing.T) {
	a := brokertest.Start(t, brokertest.Options{ID: "solo"})
	readme := `{"actions":[{"term":"start_l3.1","scheme":"http://houssem.org/cmbs/member/action#","title":"start L3.1"},
		{"term":"start_l3.2","scheme":"http://houssem.org/cmbs/member/action#","title":"start L3.2"}],
	"kinds":[{"term":"member","scheme":"http://houssem.org/cmbs#","title":"CMBS member","location":"/cmbs/member/",
		"attributes":{"cmbs":{"member":{"l3.1_socket":{"type":"String","mutable":true,"required":false,"default":"tcp://127.0.0.1:5031"}}}},
		"actions":["http://houssem.org/cmbs/member/action#start_l3.1","http://houssem.org/cmbs/member/action#start_l3.2"]}],"mixins":[]}`
	var body map[string]any
	if err := jsonUnmarshal(readme, &body); err != nil {
		t.Fatal(err)
	}
	a.Must(http.StatusCreated, "POST", "/-/", body)
	cats := a.Must(http.StatusOK, "GET", "/-/", map[string]any{"kinds": []any{map[string]any{"term": "member"}}})
	kinds := cats["kinds"].([]any)
	if len(kinds) != 1 {
		t.Fatalf("member kinds: %d", len(kinds))
	}
	actions := kinds[0].(map[string]any)["actions"].([]any)
	if len(actions) != 11 {
		t.Errorf("member kind actions: %v", actions)
	}
	all := a.Must(http.StatusOK, "GET", "/-/", map[string]any{"actions": []any{map[string]any{"term": "start_l3.1"}}})
	if len(all["actions"].([]any)) != 0 {
		t.Errorf("an l3.1 action was registered beside l31: %v", all["actions"])
	}
	a.Must(http.StatusOK, "POST", "/cmbs/member/solo?action=stop_l31", map[string]any{})
	a.Must(http.StatusOK, "POST", "/cmbs/member/solo?action=start_l3.1", map[string]any{})
	a.Must(http.StatusCreated, "POST", "/cmbs/member/", map[string]any{"resources": []any{map[string]any{
		"id": "other", "attributes": map[string]any{"cmbs": map[string]any{"member": map[string]any{"local": "false", "l3.1_socket": "tcp://10.0.0.1:5031"}}}}}})
	if got := a.Attrs("/cmbs/member/other", "member")["l31_socket"]; got != "tcp://10.0.0.1:5031" {
		t.Errorf("l3.1_socket not stored as l31_socket: %v", got)
	}
}

// TestCategoriesMatchOriginal checks the built-in categories hold the
// original files' terms, schemes, locations, actions and attributes, with
// the same mutability and requirement; their types and patterns are the
// built-in kinds' own, which accept the values the original sends.
func TestCategoriesMatchOriginal(t *testing.T) {
	cats, err := broker.Categories()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*occi.Category{}
	for _, c := range cats {
		byID[c.ID()] = c
	}
	for _, file := range []string{"post_category_cmbs_member.json", "post_category_cmbs_message.json"} {
		orig, err := occi.ParseCategories(readExample(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orig {
			c, ok := byID[o.ID()]
			if !ok {
				t.Errorf("%s: %s missing", file, o.ID())
				continue
			}
			if c.Class != o.Class || c.Location != o.Location || !reflect.DeepEqual(c.Actions, o.Actions) {
				t.Errorf("%s differs from %s", o.ID(), file)
			}
			defs := map[string]occi.AttrDef{}
			for _, d := range occi.Definitions(c.Attributes) {
				defs[d.Name] = d
			}
			for _, d := range occi.Definitions(o.Attributes) {
				cd, ok := defs[d.Name]
				if !ok || cd.Mutable != d.Mutable || cd.Required != d.Required {
					t.Errorf("%s: attribute %s is %+v, the original's %+v", o.ID(), d.Name, cd, d)
				}
			}
		}
	}
}

// TestOriginalFilesValidate sends the original's request files, categories
// included, to a strict server and to a lenient one: the built-in kinds'
// types and patterns accept every value the files hold (sockets, lists,
// "True" and booleans), so the strict server answers as the lenient one
// does and the lenient one logs no warning. Re-posting the original's
// category files, whose patterns reject sockets, keeps the built-in
// definitions.
func TestOriginalFilesValidate(t *testing.T) {
	steps := []struct {
		method, path, file string
		status             int
	}{
		{"POST", "/-/", "post_category_cmbs_member.json", http.StatusCreated},
		{"PUT", "/-/", "put_provider_cmbs_member.json", http.StatusOK},
		{"POST", "/-/", "post_category_cmbs_message.json", http.StatusCreated},
		{"PUT", "/-/", "put_provider_cmbs_message.json", http.StatusOK},
		{"POST", "/cmbs/member/", "post_member.json", http.StatusCreated},
		{"POST", "/cmbs/message/", "post_message_l1.json", http.StatusCreated},
		{"POST", "/cmbs/message/", "post_message_l2.json", http.StatusCreated},
		{"POST", "/cmbs/message/", "post_message_l31.json", http.StatusCreated},
		{"POST", "/cmbs/message/", "post_message_l32.json", http.StatusCreated},
		{"POST", "/cmbs/message/", "post_message_l4.json", http.StatusCreated},
	}
	for _, strict := range []bool{true, false} {
		t.Run(map[bool]string{true: "strict", false: "lenient"}[strict], func(t *testing.T) {
			t.Parallel()
			logger, hook := logtest.NewNullLogger()
			logger.SetLevel(logrus.WarnLevel)
			m := brokertest.Start(t, brokertest.Options{ID: "walk", NoMember: true, Strict: strict, Logger: logger})
			for _, s := range steps {
				m.MustRequest(s.status, s.method, s.path, string(readExample(t, s.file)))
			}
			// The second member's file, as a member of another host.
			second := strings.Replace(string(readExample(t, "post_member_second.json")), `"local": "true"`, `"local": false`, 1)
			m.MustRequest(http.StatusCreated, "POST", "/cmbs/member/", second)
			for _, e := range hook.AllEntries() {
				if w, ok := e.Data["warning"]; ok {
					t.Errorf("lenient validation warned: %v", w)
				}
			}
		})
	}
}
