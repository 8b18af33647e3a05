package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func attrs(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMessageFromAttributes(t *testing.T) {
	tests := []struct {
		name  string
		attrs string
		want  Message
		field string // the FieldError expected, if any
	}{
		{
			name: "original post_message_l2",
			attrs: `{"cmbs":{"message":{"cmbs_layer":"l2","executable":"True","sendable":"True","storable":"True",
				"path_history":[],"message_content":"message l2"}}}`,
			want: Message{Layer: L2, Executable: true, Sendable: true, Storable: true, Content: "message l2", Path: []string{}},
		},
		{
			name:  "defaults",
			attrs: `{}`,
			want:  Message{Executable: true, Sendable: true, Storable: true},
		},
		{
			name: "layer true names none, l3.1 is l31",
			attrs: `{"cmbs":{"message":{"cmbs_layer":"true","storable":false,"topics":"weather.paris","providers":["a",""," b "],
				"hop_limit":"3","expires":"10m","send_on_create":"true"}}}`,
			want: Message{Executable: true, Sendable: true, Topics: []string{"weather.paris"}, Providers: []string{"a", "b"},
				HopLimit: 3, Expires: "10m", SendOnCreate: true},
		},
		{name: "bad layer", attrs: `{"cmbs":{"message":{"cmbs_layer":"l9"}}}`, field: MessageLayer},
		{name: "bad flag", attrs: `{"cmbs":{"message":{"executable":"maybe"}}}`, field: MessageExecutable},
		{name: "bad expires", attrs: `{"cmbs":{"message":{"expires":"tomorrow"}}}`, field: MessageExpires},
		{name: "negative expires", attrs: `{"cmbs":{"message":{"expires":"-5m"}}}`, field: MessageExpires},
		{name: "bad hop limit", attrs: `{"cmbs":{"message":{"hop_limit":2.5}}}`, field: MessageHopLimit},
		{name: "bad topics", attrs: `{"cmbs":{"message":{"topics":[1]}}}`, field: MessageTopics + "[0]"},
		{name: "bad delivery", attrs: `{"cmbs":{"message":{"delivery":{"delivered":"x"}}}}`, field: MessageDelivery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MessageFromAttributes(attrs(t, tt.attrs))
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("error %v, want a FieldError on %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	d := &Delivery{Layer: L31, Started: "2026-01-01T00:00:00Z", Destinations: map[string]Destination{
		"b": {Member: "b", Status: StatusDelivered}, "c": {Member: "c", Status: StatusPending}}}
	d.Recount("2026-01-01T00:00:01Z")
	in := Message{Layer: L31, Executable: false, Sendable: true, Storable: true, Content: map[string]any{"k": "v"},
		Providers: []string{"p"}, HopLimit: 4, Expires: "2030-01-02T15:04:05Z", Path: []string{"a"}, Origin: "a", Delivery: d}
	out, err := MessageFromAttributes(in.Attributes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the message:\n in %+v\nout %+v", in, out)
	}
	if d.State != DeliveryPending || d.Pending != 1 || d.Delivered != 1 {
		t.Fatalf("recount: %+v", d)
	}
}

func TestMemberRoundTrip(t *testing.T) {
	in := Member{Local: true, State: "active", Sockets: map[Layer]string{L1: "tcp://127.0.0.1:5010", L2: "tcp://127.0.0.1:5020"},
		Neighbors: []string{"tcp://127.0.0.1:6010"}, Topics: []string{"weather.*"}, Providers: []string{"storage"},
		Layers: map[Layer]string{L1: LayerRunning}, NeighborsState: map[string]string{"tcp://127.0.0.1:6010": "reachable: b"},
		Via: "b", Distance: 2, LastSeen: "2026-01-01T00:00:00Z", PublicKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", MaxMessageBytes: 10 << 20}
	out, err := MemberFromAttributes(in.Attributes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the member:\n in %+v\nout %+v", in, out)
	}
}

func TestParseExpires(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  base.Add(10 * time.Minute),
		"24h":                  base.Add(24 * time.Hour),
		"2030-01-02T15:04:05Z": time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
	} {
		got, err := ParseExpires(in, base)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseExpires(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "0s", "-1h", "2030-13-01T00:00:00Z"} {
		if _, err := ParseExpires(bad, base); err == nil {
			t.Errorf("ParseExpires(%q) accepted", bad)
		}
	}
}

func TestParseLayer(t *testing.T) {
	for in, want := range map[string]Layer{"l1": L1, "l3.1": L31, "l32": L32, "l3.2": L32, "l4": L4} {
		if got, ok := ParseLayer(in); !ok || got != want {
			t.Errorf("ParseLayer(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "l5", "L2", "true"} {
		if _, ok := ParseLayer(bad); ok {
			t.Errorf("ParseLayer(%q) accepted", bad)
		}
	}
}

// TestDeliveryGeneric: the generic shape of a delivery is the one
// encoding/json gives, and reads back as the same delivery.
func TestDeliveryGeneric(t *testing.T) {
	d := Delivery{Layer: L1, State: DeliveryDone, Started: "s", Finished: "f", Expires: "e", Delivered: 1, Expired: 1,
		Destinations: map[string]Destination{
			"b":         {Member: "b", Status: StatusDelivered, Stored: true, Executed: true, Result: map[string]any{"k": "v"}, Path: []string{"a", "b"}, Attempts: 2, Updated: "u"},
			"tcp://x:1": {Member: "tcp://x:1", Status: StatusExpired, Reason: "r", Endpoint: "tcp://x:1"},
		}}
	var viaJSON map[string]any
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &viaJSON); err != nil {
		t.Fatal(err)
	}
	if g := d.Generic(); !reflect.DeepEqual(g, viaJSON) {
		t.Fatalf("Generic = %v\nencoding/json gives %v", g, viaJSON)
	}
	back, err := DeliveryFrom(viaJSON)
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("DeliveryFrom = %+v, %v\nwant %+v", back, err, d)
	}
	for _, bad := range []any{"x", map[string]any{"delivered": "x"}, map[string]any{"destinations": []any{}},
		map[string]any{"destinations": map[string]any{"b": map[string]any{"stored": "yes"}}}} {
		if _, err := DeliveryFrom(bad); err == nil {
			t.Errorf("DeliveryFrom(%v) accepted", bad)
		}
	}
}
