package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/config/cmbstest"
)

// quickHash hashes at bcrypt's minimum cost so tests stay fast; the prefix
// replaces the $2a$ that x/crypto writes, the same algorithm under the names
// other tools use.
func quickHash(t testing.TB, pw, prefix string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(h[4:])
}

func writeUsers(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	t.Parallel()
	a := quickHash(t, "pa", "$2a$")
	b := quickHash(t, "pb", "$2b$")
	y := quickHash(t, "py", "$2y$")
	tests := []struct {
		name      string
		content   string
		wantUsers map[string]string // user → password that must verify
		wantErr   string
	}{
		{
			name:      "every bcrypt prefix, comments, blank lines and CRLF",
			content:   "# cmbs users\n\nalice:" + a + "\r\n  bob:" + b + "  \n#carol:" + y + "\ncarol:" + y,
			wantUsers: map[string]string{"alice": "pa", "bob": "pb", "carol": "py"},
		},
		{name: "no colon", content: "# c\nalice " + a + "\n", wantErr: "line 2: want user:bcrypt-hash"},
		{name: "apr1 md5", content: "alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", wantErr: "line 1: user \"alice\": hash is not bcrypt"},
		{name: "sha1", content: "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", wantErr: "line 1: user \"alice\": hash is not bcrypt"},
		{name: "plain text", content: "alice:" + a + "\nbob:secret\n", wantErr: "line 2: user \"bob\": hash is not bcrypt"},
		{name: "truncated bcrypt", content: "alice:" + a[:50] + "\n", wantErr: "line 1: user \"alice\": malformed bcrypt hash"},
		{name: "bcrypt with a foreign character", content: "alice:" + a[:59] + "!\n", wantErr: "malformed bcrypt hash"},
		{name: "bad cost", content: "alice:$2a$99" + a[6:] + "\n", wantErr: "line 1: user \"alice\""},
		{name: "empty user", content: ":" + a + "\n", wantErr: "line 1: empty user name"},
		{name: "user with space", content: "al ice:" + a + "\n", wantErr: "line 1: user name \"al ice\""},
		{name: "duplicate user", content: "alice:" + a + "\nbob:" + b + "\nalice:" + y + "\n", wantErr: "line 3: user \"alice\" appears twice"},
		{name: "no users", content: "# nobody yet\n", wantErr: "no users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeUsers(t, tt.content)
			u, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Load error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(u.hashes) != len(tt.wantUsers) {
				t.Errorf("loaded %d users, want %d", len(u.hashes), len(tt.wantUsers))
			}
			for user, pw := range tt.wantUsers {
				if !u.Verify(user, pw) {
					t.Errorf("Verify(%q, %q) = false", user, pw)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "absent")); err == nil || !strings.Contains(err.Error(), "users file") {
		t.Fatalf("Load error = %v", err)
	}
}

func loadUsers(t testing.TB, pairs ...string) *Users {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(pairs); i += 2 {
		fmt.Fprintf(&b, "%s:%s\n", pairs[i], quickHash(t, pairs[i+1], "$2y$"))
	}
	u, err := Load(writeUsers(t, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestVerify(t *testing.T) {
	t.Parallel()
	u := loadUsers(t, "alice", "wonderland", "bob", "builder")
	tests := []struct {
		user, pw string
		want     bool
	}{
		{"alice", "wonderland", true},
		{"bob", "builder", true},
		{"alice", "builder", false},
		{"alice", "", false},
		{"alice", "wonderland ", false},
		{"Alice", "wonderland", false},
		{"mallory", "wonderland", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := u.Verify(tt.user, tt.pw); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.user, tt.pw, got, tt.want)
		}
	}
	// Only the two successes were remembered.
	if n := len(u.verified); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
}

// TestVerifyCache shows a remembered verification skips bcrypt: once alice's
// hash is replaced by garbage, only the cache can still accept her.
func TestVerifyCache(t *testing.T) {
	t.Parallel()
	u := loadUsers(t, "alice", "wonderland")
	if !u.Verify("alice", "wonderland") {
		t.Fatal("first Verify failed")
	}
	u.hashes["alice"] = []byte("not a hash")
	if !u.Verify("alice", "wonderland") {
		t.Error("second Verify did not use the cache")
	}
	if u.Verify("alice", "other") {
		t.Error("Verify with another password succeeded against a garbage hash")
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	t.Parallel()
	u := loadUsers(t, "a", "1", "b", "2", "c", "3", "d", "4")
	u.cacheLimit = 2
	for _, p := range [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"a", "1"}} {
		if !u.Verify(p[0], p[1]) {
			t.Fatalf("Verify(%q) failed", p[0])
		}
		if n := len(u.verified); n > 2 {
			t.Fatalf("cache holds %d entries, limit 2", n)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	u := loadUsers(t, "alice", "wonderland")
	u.cacheLimit = 1
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				user, pw, want := "alice", "wonderland", true
				if (i+j)%2 == 1 {
					pw, want = "wrong", false
				}
				if got := u.Verify(user, pw); got != want {
					t.Errorf("Verify(%q, %q) = %v", user, pw, got)
				}
			}
		})
	}
	wg.Wait()
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	u := loadUsers(t, "user_1", "pass")
	h := u.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := User(r.Context())
		if !ok {
			t.Error("handler reached without a user in the context")
		}
		_, _ = io.WriteString(w, "hello "+name)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	tests := []struct {
		name       string
		user, pw   string
		noAuth     bool
		wantStatus int
		wantDetail string
	}{
		{name: "valid", user: "user_1", pw: "pass", wantStatus: http.StatusOK},
		{name: "valid again, cached", user: "user_1", pw: "pass", wantStatus: http.StatusOK},
		{name: "missing", noAuth: true, wantStatus: http.StatusUnauthorized, wantDetail: "requires HTTP Basic"},
		{name: "wrong password", user: "user_1", pw: "nope", wantStatus: http.StatusUnauthorized, wantDetail: "wrong user name or password"},
		{name: "unknown user", user: "user_2", pw: "pass", wantStatus: http.StatusUnauthorized, wantDetail: "wrong user name or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/-/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.noAuth {
				req.SetBasicAuth(tt.user, tt.pw)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer cmbstest.NoError(t, resp.Body.Close)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				if string(body) != "hello "+tt.user {
					t.Errorf("body = %q", body)
				}
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="cmbs"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q", got)
			}
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("decode problem: %v", err)
			}
			if p["type"] != "about:blank" || p["title"] != "Unauthorized" || p["status"] != float64(401) {
				t.Errorf("problem = %v", p)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tt.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", d, tt.wantDetail)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	for _, cost := range []int{0, bcrypt.MinCost} {
		h, err := HashPassword("s3cret", cost)
		if err != nil {
			t.Fatal(err)
		}
		want := cost
		if cost == 0 {
			want = bcrypt.DefaultCost
		} else if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")); err != nil {
			// Checked at the lowest cost only: under the race detector a
			// check at the default cost takes seconds.
			t.Errorf("hash does not verify: %v", err)
		}
		if got, err := bcrypt.Cost([]byte(h)); err != nil || got != want {
			t.Errorf("HashPassword at cost %d hashed at %d, %v; want %d", cost, got, err, want)
		}
	}
	for _, pw := range []string{"", strings.Repeat("x", 73)} {
		if _, err := HashPassword(pw, bcrypt.MinCost); err == nil {
			t.Errorf("HashPassword(%d bytes) succeeded", len(pw))
		}
	}
	for _, cost := range []int{-1, bcrypt.MinCost - 1, bcrypt.MaxCost + 1} {
		if _, err := HashPassword("s3cret", cost); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("HashPassword at cost %d = %v, want it refused", cost, err)
		}
	}
}

// TestEntryRoundTrip checks a line from Entry is one Load accepts.
func TestEntryRoundTrip(t *testing.T) {
	t.Parallel()
	line, err := Entry("user_1", "pass", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Load(writeUsers(t, line+"\n"))
	if err != nil {
		t.Fatalf("Load(%q): %v", line, err)
	}
	if !u.Verify("user_1", "pass") {
		t.Error("entry does not verify")
	}
	for _, bad := range []string{"", "a:b", "a b", "a\nb"} {
		if _, err := Entry(bad, "pw", bcrypt.MinCost); err == nil {
			t.Errorf("Entry(%q) succeeded", bad)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	u := loadUsers(b, "alice", "wonderland")
	u.Verify("alice", "wonderland")
	for b.Loop() {
		u.Verify("alice", "wonderland")
	}
}

func BenchmarkVerifyUnknownUser(b *testing.B) {
	u := loadUsers(b, "alice", "wonderland")
	for b.Loop() {
		u.Verify("mallory", "wonderland")
	}
}
