package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// concrete fills a route pattern's wildcards with plausible values.
func concrete(path string) string {
	r := strings.NewReplacer("{key...}", "automation.kill_switch", "{id}", "s-nope", "{run}", "run-nope", "{assert}", "pg-connections",
		"{fingerprint}", "0", "{name}", "pg-connections", "{file}", "style.css", "{$}", "")
	return r.Replace(path)
}

// TestEveryMutatingRouteRefusesNoTokenAndReadToken is the one table over
// every route that changes something: without a token it answers 401, with
// a read token 403 (as a bearer token, and for the UI's forms also as a
// signed-in read session with a valid CSRF token). Nothing is changed.
func TestEveryMutatingRouteRefusesNoTokenAndReadToken(t *testing.T) {
	e := newEnv(t)
	e.seed()
	readJar := signIn(t, e, readSecret)
	csrf := csrfOf(t, e, readJar)
	runsBefore, err := e.st.Runs(e.ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rt := range web.Routes() {
		if !rt.Mutating {
			continue
		}
		if rt.Role == "signed" {
			continue // authenticated by the sender's signature: TestSlackInteractions, TestPagerDutyWebhook
		}
		if rt.Role != "admin" && (!rt.Ingest || rt.Role != "write") {
			// Signing in and out are the only changes without a role.
			if rt.Path != "/login" && rt.Path != "/logout" {
				t.Errorf("%s %s changes something but needs only %s", rt.Method, rt.Path, rt.Role)
			}
			continue
		}
		n++
		path := concrete(rt.Path)
		body := `{}`
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if code, b := e.do(rt.Method, path, "", body); code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s", code, b)
			}
			if code, b := e.do(rt.Method, path, readSecret, body); code != http.StatusForbidden {
				t.Errorf("read token: %d %s", code, b)
			}
			if code, b := e.do(rt.Method, path, "not-a-token-at-all", body); code != http.StatusUnauthorized {
				t.Errorf("unknown token: %d %s", code, b)
			}
			if !rt.API {
				form := url.Values{"csrf": {csrf}, "key": {"automation.kill_switch"}, "value": {"on"}}
				code, b := postForm(t, readJar, e.base+path, form, "")
				if code != http.StatusForbidden || !strings.Contains(b, "has the role read") {
					t.Errorf("read session: %d %s", code, b)
				}
			}
		})
	}
	if n < 13 {
		t.Fatalf("only %d admin routes: the table lost some", n)
	}
	// Nothing was changed by the refused requests.
	// (The engine's break glass, ack and approve write to the audit trail
	// and break glass starts a run: none may have been called.)
	e.settle()
	if runs, _ := e.st.Runs(e.ctx, store.RunFilter{}); len(runs) != len(runsBefore) {
		t.Errorf("runs started: %+v", runs)
	}
	if sts, _ := e.st.Settings(e.ctx); len(sts) != 0 {
		t.Errorf("settings changed: %+v", sts)
	}
	if log, _ := e.st.AuditLog(e.ctx, storeAuditAll); len(log) != 0 {
		t.Errorf("audited: %+v", log)
	}
}

// TestReadRoutesNeedAToken: without public_read, reads need a token; the
// UI's pages send the browser to sign in.
func TestReadRoutesNeedAToken(t *testing.T) {
	e := newEnv(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, rt := range web.Routes() {
		if rt.Mutating || rt.Role != "read" {
			continue
		}
		path := concrete(rt.Path)
		if rt.Path == "/api/v1/events" {
			continue // a stream: covered by TestEvents
		}
		resp, err := noRedirect.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case rt.API && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("GET %s without a token: %d", path, resp.StatusCode)
		case !rt.API && (resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=")):
			t.Errorf("page %s without a token: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if code, _ := e.do("GET", "/api/v1/events", "", ""); code != http.StatusUnauthorized {
		t.Errorf("events without a token: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/login", "/static/style.css"} {
		if code, _ := e.do("GET", p, "", ""); code != 200 {
			t.Errorf("public %s: %d", p, code)
		}
	}
}

// signIn signs in through the login form and returns the browser's jar.
func signIn(t *testing.T, e *env, secret string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(e.base+"/login", url.Values{"token": {secret}, "next": {"/settings"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/settings" {
		t.Fatalf("sign in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return jar
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrfOf reads the CSRF token from a page with a form.
func csrfOf(t *testing.T, e *env, jar http.CookieJar) string {
	t.Helper()
	c := &http.Client{Jar: jar}
	resp, err := c.Get(e.base + "/break-glass?assert=pg-connections&fingerprint=" + e.instance("pg-connections", "db3").Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := csrfRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no csrf token in %s", b)
	}
	return string(m[1])
}

func postForm(t *testing.T, jar http.CookieJar, u string, form url.Values, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestUISessionAndCSRF: the token is typed once; the cookie is HttpOnly and
// holds no token; a form needs the session's CSRF token and this origin.
func TestUISessionAndCSRF(t *testing.T) {
	e := newEnv(t)
	e.seed()
	jar := signIn(t, e, adminSecret)
	u, _ := url.Parse(e.base)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != web.SessionCookie || strings.Contains(cookies[0].Value, adminSecret) {
		t.Fatalf("cookies %+v", cookies)
	}
	// The Set-Cookie header's flags.
	code, _ := postForm(t, nil, e.base+"/login", url.Values{"token": {adminSecret}}, "")
	if code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(e.base+"/login", url.Values{"token": {adminSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := strings.Join(resp.Header.Values("Set-Cookie"), ";")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("Set-Cookie %q", sc)
	}
	form := url.Values{"key": {"automation.kill_switch"}, "value": {"on"}, "reason": {"AZ outage"}}
	if code, _ := postForm(t, jar, e.base+"/settings", form, ""); code != http.StatusForbidden {
		t.Errorf("no csrf: %d", code)
	}
	form.Set("csrf", "0000")
	if code, _ := postForm(t, jar, e.base+"/settings", form, ""); code != http.StatusForbidden {
		t.Errorf("wrong csrf: %d", code)
	}
	form.Set("csrf", csrfOf(t, e, jar))
	if code, _ := postForm(t, jar, e.base+"/settings", form, "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin: %d", code)
	}
	if code, b := postForm(t, jar, e.base+"/settings", form, e.base); code != http.StatusSeeOther {
		t.Fatalf("with csrf: %d %s", code, b)
	}
	sts, _ := e.st.Settings(e.ctx)
	if len(sts) != 1 || sts[0].Value != "on" || sts[0].By != "alice" || sts[0].Reason != "AZ outage" {
		t.Fatalf("settings %+v", sts)
	}
	// A wrong token on the form: 401 and no cookie.
	resp, err = http.PostForm(e.base+"/login", url.Values{"token": {"wrong-token-1234567890"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("bad sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}
	// Signing out ends the session.
	if code, _ := postForm(t, jar, e.base+"/logout", url.Values{}, ""); code != http.StatusSeeOther {
		t.Errorf("logout %d", code)
	}
	if code, _ := postForm(t, jar, e.base+"/settings", form, ""); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/login", "/api/v1/status", "/nope"} {
		req, _ := http.NewRequest("GET", e.base+p, nil)
		req.Header.Set("Authorization", "Bearer "+readSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", p, h)
		}
	}
}
