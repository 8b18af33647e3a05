// Package auth guards the OCCI interface with HTTP Basic authentication
// against a users file of bcrypt hashes.
//
// The users file holds one `user:hash` line per user, as htpasswd -B writes
// them: blank lines and lines starting with # are ignored, and only bcrypt
// hashes ($2a$, $2b$, $2y$) are accepted. `cmbs passwd USER` prints such a
// line.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// Realm is the realm announced in WWW-Authenticate.
const Realm = "cmbs"

// maxCached bounds the verification cache. It is sized for the handful of
// clients a broker has, not for every password ever tried: only successful
// verifications are kept.
const maxCached = 1024

// Users is a loaded users file. It is safe for concurrent use.
type Users struct {
	hashes map[string][]byte
	// dummy is verified against when the user is unknown, so an unknown
	// user costs one bcrypt like a known one and response times do not tell
	// which user names exist.
	dummy []byte

	// cacheKey keys the MAC that identifies a verified password in the
	// cache, so the cache never holds a plain, unsalted digest of one.
	cacheKey   []byte
	cacheLimit int
	mu         sync.Mutex
	verified   map[cacheEntry]struct{}
}

type cacheEntry struct {
	user string
	mac  [sha256.Size]byte
}

// Load reads the users file at path. A line that is not `user:bcrypt-hash`,
// or repeats a user, is an error naming the line; so is a file with no
// users, which would refuse every request.
func Load(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	hashes := map[string][]byte{}
	// The dummy hash takes the highest cost in the file, so an unknown
	// user is never cheaper to reject than a known one.
	maxCost := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, cost, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("users file %s line %d: %w", path, n, err)
		}
		if _, dup := hashes[user]; dup {
			return nil, fmt.Errorf("users file %s line %d: user %q appears twice", path, n, user)
		}
		hashes[user] = hash
		maxCost = max(maxCost, cost)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("users file %s: no users", path)
	}
	// The dummy password is random so that no request can match it.
	dummyPassword := make([]byte, 32)
	cacheKey := make([]byte, 32)
	rand.Read(dummyPassword)
	rand.Read(cacheKey)
	dummy, err := bcrypt.GenerateFromPassword(dummyPassword, maxCost)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return &Users{
		hashes:     hashes,
		dummy:      dummy,
		cacheKey:   cacheKey,
		cacheLimit: maxCached,
		verified:   map[cacheEntry]struct{}{},
	}, nil
}

// bcryptHashLen is the length of every bcrypt hash in modular crypt format:
// "$2y$10$" then 22 characters of salt and 31 of hash.
const bcryptHashLen = 60

func parseLine(line string) (user string, hash []byte, cost int, err error) {
	user, h, ok := strings.Cut(line, ":")
	if !ok {
		return "", nil, 0, errors.New("want user:bcrypt-hash")
	}
	if err := checkUser(user); err != nil {
		return "", nil, 0, err
	}
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return "", nil, 0, fmt.Errorf("user %q: hash is not bcrypt ($2a$, $2b$ or $2y$); create it with `cmbs passwd` or `htpasswd -nB`", user)
	}
	if len(h) != bcryptHashLen || strings.ContainsFunc(h[7:], notBcryptBase64) {
		return "", nil, 0, fmt.Errorf("user %q: malformed bcrypt hash", user)
	}
	cost, err = bcrypt.Cost([]byte(h))
	if err != nil {
		return "", nil, 0, fmt.Errorf("user %q: %w", user, err)
	}
	return user, []byte(h), cost, nil
}

// notBcryptBase64 reports a character outside bcrypt's base64 alphabet.
func notBcryptBase64(r rune) bool {
	return !(r == '.' || r == '/' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
}

// checkUser accepts the user names a users-file line can hold unambiguously.
func checkUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case strings.ContainsRune(user, ':'):
		return fmt.Errorf("user name %q contains ':'", user)
	case strings.ContainsFunc(user, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("user name %q contains white space or control characters", user)
	}
	return nil
}

// HashPassword returns the bcrypt hash of pw at cost, from bcrypt.MinCost
// to bcrypt.MaxCost; 0 means bcrypt.DefaultCost. Each step of the cost
// doubles the time a hash, and so each password check, takes.
func HashPassword(pw string, cost int) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	// bcrypt itself would quietly use its default for a cost below its
	// minimum; a cost asked for is either used or refused.
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("bcrypt cost %d is outside %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Entry returns the users-file line for user with password pw hashed at
// cost, as HashPassword.
func Entry(user, pw string, cost int) (string, error) {
	if err := checkUser(user); err != nil {
		return "", err
	}
	h, err := HashPassword(pw, cost)
	if err != nil {
		return "", err
	}
	return user + ":" + h, nil
}

// Verify reports whether pw is user's password. Unknown users take as long
// as known ones with a wrong password. Successful checks are remembered, so
// a client repeating the same credentials pays for bcrypt once.
func (u *Users) Verify(user, pw string) bool {
	entry := cacheEntry{user: user, mac: u.mac(user, pw)}
	u.mu.Lock()
	_, hit := u.verified[entry]
	u.mu.Unlock()
	if hit {
		return true
	}
	hash, known := u.hashes[user]
	if !known {
		hash = u.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil || !known {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.verified) >= u.cacheLimit {
		// Drop an arbitrary entry; its owner pays one bcrypt next time.
		for e := range u.verified {
			delete(u.verified, e)
			break
		}
	}
	u.verified[entry] = struct{}{}
	return true
}

func (u *Users) mac(user, pw string) [sha256.Size]byte {
	m := hmac.New(sha256.New, u.cacheKey)
	// The user name cannot hold ':', so the pair is encoded unambiguously.
	m.Write([]byte(user + ":" + pw))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

type userKey struct{}

// User returns the authenticated user name Middleware stored in ctx.
func User(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(userKey{}).(string)
	return name, ok
}

// Middleware lets through requests carrying valid Basic credentials, with
// the user name available from User(r.Context()), and answers the others
// 401 with an application/problem+json body.
func (u *Users) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok {
			unauthorized(w, "this server requires HTTP Basic authentication")
			return
		}
		if !u.Verify(user, pw) {
			unauthorized(w, "wrong user name or password")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func unauthorized(w http.ResponseWriter, detail string) {
	h := w.Header()
	h.Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusUnauthorized)
	// An error here is the client going away; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "about:blank",
		Title:  http.StatusText(http.StatusUnauthorized),
		Status: http.StatusUnauthorized,
		Detail: detail,
	})
}
