package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/assertd/assertd/config"
)

// Swapping the access puts the new tokens and public_read in force at once,
// and ends the UI sessions of a token that is gone or changed.
func TestAccessSwap(t *testing.T) {
	env := map[string]string{"OLD": "old-secret-0123456789", "NEW": "new-secret-0123456789", "KEPT": "kept-secret-0123456789"}
	getenv := func(k string) string { return env[k] }
	acc, err := LoadAccess(config.Web{Tokens: []config.Token{{Name: "old", Role: "admin", TokenEnv: "OLD"}, {Name: "kept", Role: "read", TokenEnv: "KEPT"}}}, "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := &server{access: acc, sessions: newSessions(time.Hour), now: func() time.Time { return now }}
	read := route{method: "GET", path: "/api/v1/status", role: roleRead}
	call := func(bearer, cookie string) int {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		}
		_, code, _ := s.authorize(read, r)
		return code
	}
	oldTok, _ := s.lookup(env["OLD"])
	keptTok, _ := s.lookup(env["KEPT"])
	oldSession, keptSession := s.sessions.create(oldTok, now), s.sessions.create(keptTok, now)
	if call(env["OLD"], "") != 0 || call("", oldSession.id) != 0 || call(env["NEW"], "") != http.StatusUnauthorized || call("", "") != http.StatusUnauthorized {
		t.Fatal("the first tokens are not in force")
	}

	if _, err := LoadAccess(config.Web{Tokens: []config.Token{{Name: "new", Role: "admin", TokenEnv: "UNSET"}}}, "", getenv); err == nil {
		t.Fatal("LoadAccess took a token whose secret is unset")
	}
	next, err := LoadAccess(config.Web{PublicRead: true, Tokens: []config.Token{{Name: "new", Role: "admin", TokenEnv: "NEW"}, {Name: "kept", Role: "read", TokenEnv: "KEPT"}}}, "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	acc.Swap(next)
	if code := call(env["OLD"], ""); code != http.StatusUnauthorized {
		t.Errorf("the removed token: %d, want 401", code)
	}
	if code := call(env["NEW"], ""); code != 0 {
		t.Errorf("the added token: %d", code)
	}
	if p, code, _ := s.authorize(read, func() *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: oldSession.id})
		return r
	}()); code != 0 || p.Name != "anonymous" {
		t.Errorf("the session of the removed token is %q (%d), want anonymous: public_read is on now", p.Name, code)
	}
	if p, _, _ := s.authorize(read, func() *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: keptSession.id})
		return r
	}()); p.Name != "kept" {
		t.Errorf("the session of the unchanged token is %q", p.Name)
	}
}
