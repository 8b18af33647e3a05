package brokertest

import (
	"net/http"
	"strings"

	"github.com/houssem/cmbs/broker"
	"github.com/houssem/cmbs/config/cmbstest"
)

// Attrs returns the cmbs.<kind> attributes of the entity at path, e.g.
// Attrs("/cmbs/member/a", "member").
func (s *Server) Attrs(path, kind string) map[string]any {
	s.T.Helper()
	out := s.Must(http.StatusOK, "GET", path, nil)
	res := out["resources"].([]any)[0].(map[string]any)
	return res["attributes"].(map[string]any)["cmbs"].(map[string]any)[kind].(map[string]any)
}

// Has reports whether the server stores message id.
func (s *Server) Has(id string) bool {
	s.T.Helper()
	status, _ := s.Do("GET", broker.MessageLocation+id, nil)
	return status == http.StatusOK
}

// Message creates message id on layer, with the attributes of MessageBody.
func (s *Server) Message(id, layer string, extra map[string]any) {
	s.T.Helper()
	s.Must(http.StatusCreated, "POST", broker.MessageLocation, MessageBody(id, layer, extra))
}

// Send triggers send_<layer> on message id, checks the answer points at
// the message, and waits until the delivery's outcome is recorded done;
// it returns the message's delivery attribute.
func (s *Server) Send(id, layer string) map[string]any {
	s.T.Helper()
	loc := broker.MessageLocation + id
	out := s.Must(http.StatusAccepted, "POST", loc+"?action=send_"+layer, map[string]any{})
	if got, _ := out["Location"].([]any); len(got) == 0 || !strings.HasSuffix(got[0].(string), loc) {
		s.T.Fatalf("send of %s on %s answered location %v", id, layer, out["Location"])
	}
	return s.WaitDelivery(id)
}

// WaitDelivery waits until the delivery of message id is done, and
// returns its delivery attribute.
func (s *Server) WaitDelivery(id string) map[string]any {
	s.T.Helper()
	var delivery map[string]any
	cmbstest.Eventually(s.T, "the outcome of "+id, func() bool {
		delivery, _ = s.Attrs(broker.MessageLocation+id, "message")["delivery"].(map[string]any)
		return delivery["state"] == "done"
	})
	return delivery
}

// MessageBody is the document Message posts: a storable, sendable,
// executable message on layer whose content is {"hello": id}, with extra
// attributes added or replacing those.
func MessageBody(id, layer string, extra map[string]any) map[string]any {
	attrs := map[string]any{"cmbs_layer": layer, "executable": "True", "sendable": "True", "storable": "True",
		"path_history": []any{}, "message_content": map[string]any{"hello": id}}
	for k, v := range extra {
		attrs[k] = v
	}
	return map[string]any{"resources": []any{map[string]any{
		"kind": broker.MessageKind, "mixins": []any{"http://houssem.org/cmbs#" + layer}, "id": id,
		"attributes": map[string]any{"cmbs": map[string]any{"message": attrs}},
	}}}
}

// Outcome lists destination member -> status of a delivery attribute.
func Outcome(delivery map[string]any) map[string]string {
	out := map[string]string{}
	dests, _ := delivery["destinations"].(map[string]any)
	for id, r := range dests {
		out[id] = r.(map[string]any)["status"].(string)
	}
	return out
}
