package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/assertd/assertd/config"
)

// token is one configured API token: its name, role and the SHA-256 of its
// secret (the secret itself is not kept).
type token struct {
	name string
	role role
	hash [sha256.Size]byte
}

// loadTokens reads the tokens' secrets from their variables or files.
// Errors name the token and where its secret should be, never the secret.
func loadTokens(w config.Web, dir string, getenv func(string) string) ([]token, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var out []token
	for _, t := range w.Tokens {
		var secret string
		switch {
		case t.TokenEnv != "":
			secret = getenv(t.TokenEnv)
			if secret == "" {
				return nil, fmt.Errorf("web token %s: $%s is empty or unset", t.Name, t.TokenEnv)
			}
		case t.TokenFile != "":
			p := t.TokenFile
			if !filepath.IsAbs(p) && dir != "" {
				p = filepath.Join(dir, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("web token %s: token_file: %w", t.Name, err)
			}
			secret = strings.TrimSpace(string(b))
			if secret == "" {
				return nil, fmt.Errorf("web token %s: %s is empty", t.Name, p)
			}
		default:
			return nil, fmt.Errorf("web token %s: give token_env or token_file", t.Name)
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("web token %s: the secret is shorter than 16 characters", t.Name)
		}
		ro := roleRead
		switch t.Role {
		case "admin":
			ro = roleAdmin
		case "write":
			ro = roleWrite
		case "read":
		default:
			return nil, fmt.Errorf("web token %s: role %q is not read, write or admin", t.Name, t.Role)
		}
		out = append(out, token{name: t.Name, role: ro, hash: sha256.Sum256([]byte(secret))})
	}
	return out, nil
}

// lookup finds the token with this secret. It compares the hashes in
// constant time and always looks at every token.
func (s *server) lookup(secret string) (token, bool) {
	h := sha256.Sum256([]byte(secret))
	var found token
	ok := 0
	toks, _ := s.access.snapshot()
	for _, t := range toks {
		if subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1 {
			found, ok = t, 1
		}
	}
	return found, ok == 1
}

// principal is who makes a request.
type principal struct {
	Name    string // the token's or basic-auth user's name; "anonymous" without credentials
	Role    role
	kind    string   // "token", "user" (basic auth) or "" (anonymous)
	session *session // set when signed in through the UI
}

// SignedIn reports whether the caller signed in through the UI.
func (p principal) SignedIn() bool { return p.session != nil }

type principalKey struct{}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// The cookie of a UI session and the form field of its CSRF token.
const (
	sessionCookie = "assertd_session"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// credentials reports whether any credential is configured: a token or a
// basic-auth user. Without one, reads are open (and the listener stays on
// loopback).
func (s *server) credentials(pol policy) bool {
	return len(pol.tokens) > 0 || s.d.Listener.hasUsers()
}

// onLoopback reports whether the request came in on a loopback address of
// the listener (or in-process, without a connection). Reads are open
// without credentials only there: should the last basic-auth user leave
// --web.config.file while assertd listens elsewhere, reads close instead.
func onLoopback(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	return Loopback(la.String())
}

// authorize decides whether the request may use the route. It returns the
// caller, or the status and reason of a refusal.
func (s *server) authorize(rt route, r *http.Request) (principal, int, string) {
	pol := s.access.policy()
	anon := principal{Name: "anonymous"}
	if pol.publicRead || (!s.credentials(pol) && onLoopback(r)) {
		anon.Role = roleRead
	}
	p := anon
	if h := r.Header.Get("Authorization"); h != "" {
		if user, pass, ok := r.BasicAuth(); ok {
			if !s.d.Listener.checkUser(user, pass) {
				return p, http.StatusUnauthorized, "the basic-auth user or password is not valid"
			}
			p = principal{Name: user, Role: roleWrite, kind: "user"}
		} else {
			secret, ok := strings.CutPrefix(h, "Bearer ")
			t, found := s.lookup(strings.TrimSpace(secret))
			if !ok || !found {
				return p, http.StatusUnauthorized, "the token is not valid"
			}
			p = principal{Name: t.name, Role: t.role, kind: "token"}
		}
	} else if c, err := r.Cookie(sessionCookie); err == nil {
		if ss := s.sessions.get(c.Value, s.now()); ss != nil && s.access.holds(ss.token) {
			p = principal{Name: ss.name, Role: ss.role, kind: "token", session: ss}
		}
	}
	if rt.role == rolePublic {
		return p, 0, ""
	}
	if rt.ingest && p.kind == "" && pol.publicWrite {
		return p, 0, ""
	}
	if p.Role < rt.role {
		if p.kind == "" {
			if rt.ingest {
				return p, http.StatusUnauthorized, fmt.Sprintf("%s %s needs a token with the role write or admin, or a basic-auth user of --web.config.file "+
					"(or web.public_write: true to accept it without credentials)", rt.method, rt.path)
			}
			if p.Role == rolePublic || rt.role > roleRead {
				return p, http.StatusUnauthorized, fmt.Sprintf("%s %s needs a token with the role %s", rt.method, rt.path, rt.role)
			}
		}
		return p, http.StatusForbidden, fmt.Sprintf("%s %s has the role %s; %s %s needs %s", p.kind, p.Name, p.Role, rt.method, rt.path, rt.role)
	}
	if rt.mutating() && p.session != nil {
		// A browser sends the cookie on its own: a change made with it must
		// carry the session's CSRF token (cross-origin requests are refused
		// before they reach a route: see crossOrigin).
		if status, err := checkCSRF(r, p.session); status != 0 {
			return p, status, err
		}
	}
	return p, 0, ""
}

// checkCSRF checks the token of a cookie-authenticated change: the form field
// csrf or the header X-CSRF-Token.
func checkCSRF(r *http.Request, ss *session) (int, string) {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		if err := r.ParseForm(); err != nil { // bounded by limitBody
			return bodyErrorStatus(err), "form: " + err.Error()
		}
		got = r.PostForm.Get(csrfField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) != 1 {
		return http.StatusForbidden, "the form's CSRF token is missing or stale: reload the page and try again"
	}
	return 0, ""
}

// crossOrigin refuses, with Go's http.CrossOriginProtection, a change a
// browser sends from another origin than this one or web.external_url's:
// forms, the API with a session cookie, the login form and anything that
// feeds the engine. Clients that are not browsers send neither
// Sec-Fetch-Site nor Origin and pass.
func (s *server) crossOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.access.policy().origins.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "", "cross-origin request refused: "+err.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}

// session is a UI sign-in: kept in memory, named by a random ID in an
// HttpOnly cookie; assertd restarting signs everyone out.
type session struct {
	id, csrf string
	name     string
	role     role
	token    token // signed in with; the session ends when it is no longer in force
	expires  time.Time
}

type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

func randomID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func (ss *sessions) create(t token, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, id)
		}
	}
	s := &session{id: randomID(), csrf: randomID(), name: t.name, role: t.role, token: t, expires: now.Add(ss.ttl)}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil || !now.Before(s.expires) {
		return nil
	}
	return s
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
