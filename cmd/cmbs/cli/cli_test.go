package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/houssem/cmbs/broker/api"
)

func TestPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8090/cmbs/member/a", "/cmbs/member/a"},
		{"https://cmbs.example.org/cmbs/message/m?action=send_l1", "/cmbs/message/m?action=send_l1"},
		{"/cmbs/member/a", "/cmbs/member/a"},
		{"member-a", "member-a"},
	}
	for _, tt := range tests {
		if got := Path(tt.in); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		server, user string
		wantErr      string
	}{
		{server: "http://127.0.0.1:8090/"},
		{server: "https://cmbs.example.org", user: "u:p:with:colons"},
		{server: "127.0.0.1:8090", wantErr: "want http://host:port"},
		{server: "ftp://host", wantErr: "want http://host:port"},
		{server: "http://h", user: "nopassword", wantErr: "name:password"},
		{server: "http://h", user: ":pw", wantErr: "name:password"},
	}
	for _, tt := range tests {
		c, err := New(tt.server, tt.user, nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%q, %q) = %v, want %q", tt.server, tt.user, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q, %q) = %v", tt.server, tt.user, err)
			continue
		}
		if strings.HasSuffix(c.Server(), "/") {
			t.Errorf("Server() = %q keeps the trailing slash", c.Server())
		}
	}
}

// TestProblems checks that every refusal reads as status, title, detail
// and field, whether the server sent a problem document or not.
func TestProblems(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		status      int
		body        string
		want        string
	}{
		{name: "problem", contentType: "application/problem+json", status: 409,
			body: `{"type":"about:blank","title":"Conflict","status":409,"detail":"layer l1 is already running","field":"action"}`,
			want: "409 Conflict: layer l1 is already running (field action)"},
		{name: "problem without field", contentType: "application/problem+json", status: 404,
			body: `{"type":"about:blank","title":"Not Found","status":404,"detail":"no entity at /x"}`,
			want: "404 Not Found: no entity at /x"},
		{name: "plain text", contentType: "text/plain", status: 502, body: "bad gateway\n",
			want: "502 Bad Gateway: bad gateway"},
		{name: "broken problem", contentType: "application/problem+json", status: 500, body: "{",
			want: "500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer hs.Close()
			c, err := New(hs.URL, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Do(context.Background(), http.MethodGet, "/-/", nil)
			var p *Problem
			if !errors.As(err, &p) || p.Status != tt.status {
				t.Fatalf("Do = %v, want a problem with status %d", err, tt.status)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err.Error(), tt.want)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	got := make(chan *http.Request, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.Header().Set("Content-Type", MediaType)
		_, _ = w.Write([]byte(`{"X-OCCI-Location":["http://elsewhere:1/cmbs/member/b","/cmbs/member/a"]}`))
	}))
	defer hs.Close()
	c, err := New(hs.URL, "user_1:pa:ss", nil)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := c.List(context.Background(), api.MemberLocation)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(paths, " ") != "/cmbs/member/b /cmbs/member/a" {
		t.Errorf("List = %q", paths)
	}
	r := <-got
	if user, pw, ok := r.BasicAuth(); !ok || user != "user_1" || pw != "pa:ss" {
		t.Errorf("basic auth = %q %q %v", user, pw, ok)
	}
	if !strings.Contains(r.Header.Get("Accept"), MediaType) {
		t.Errorf("Accept = %q", r.Header.Get("Accept"))
	}
}

func TestText(t *testing.T) {
	e := &Entity{Attributes: map[string]any{"cmbs": map[string]any{"member": map[string]any{
		"state": "active", "distance": float64(2), "topics": []any{"a", "b"}, "mixed": []any{"a", float64(1)},
		"layers": map[string]any{"l1": "running"}, "none": nil,
	}}}}
	tests := []struct{ name, want string }{
		{"cmbs.member.state", "active"},
		{"cmbs.member.distance", "2"},
		{"cmbs.member.topics", "a,b"},
		{"cmbs.member.mixed", `["a",1]`},
		{"cmbs.member.layers", `{"l1":"running"}`},
		{"cmbs.member.none", ""},
		{"cmbs.member.absent", ""},
		{"cmbs.member.state.deeper", ""},
	}
	for _, tt := range tests {
		if got := e.Text(tt.name); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	tb := NewTable(&buf, "ID", "NOTE")
	tb.Row("a", "")
	tb.Row("bbb", "two\tlines\nhere")
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "ID   NOTE\na    -\nbbb  two lines here\n"
	if buf.String() != want {
		t.Errorf("table =\n%s\nwant\n%s", buf.String(), want)
	}
}
