package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Go's CrossOriginProtection guards every change a browser can send: the
// login form, a signed-in form with its CSRF token, the API with the
// session cookie and remote-write. web.external_url is the trusted origin
// (a proxy in front), and when it is https the cookie is Secure.
func TestCrossOriginAndSecureCookie(t *testing.T) {
	cfg := strings.Replace(harnessConfig, "web:\n", "web:\n  external_url: https://assertd.example.com/\n", 1)
	e := newEnvWith(t, cfg, harnessRules)
	e.seed()
	send := func(method, path string, jar http.CookieJar, form url.Values, hdr ...string) (int, string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest(method, e.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n]), resp
	}
	login := url.Values{"token": {adminSecret}}
	// Login CSRF: a cross-site form must not sign the browser in.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		if code, body, resp := send("POST", "/login", nil, login, h...); code != http.StatusForbidden || len(resp.Cookies()) != 0 ||
			!strings.Contains(body, "cross-origin request refused") {
			t.Errorf("login with %s: %d %s", h, code, body)
		}
	}
	// The trusted origin, with a Host that differs (the proxy), signs in; the
	// cookie is Secure though this hop is plain HTTP.
	code, _, resp := send("POST", "/login", nil, login, "Origin", "https://assertd.example.com")
	if code != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("login from external_url: %d %+v", code, resp.Cookies())
	}
	// The same site: Sec-Fetch-Site same-origin.
	jar := signIn(t, e, adminSecret)
	csrf := csrfOf(t, e, jar)
	form := url.Values{"csrf": {csrf}, "key": {"automation.kill_switch"}, "value": {"on"}, "reason": {"r"}}
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "http://evil.example"}} {
		if code, body, _ := send("POST", "/settings", jar, form, h...); code != http.StatusForbidden {
			t.Errorf("form with %s: %d %s", h, code, body)
		}
		if code, body, _ := send("PUT", "/api/v1/settings/automation.kill_switch", jar, nil, append(h, "X-CSRF-Token", csrf)...); code != http.StatusForbidden {
			t.Errorf("API with the cookie and %s: %d %s", h, code, body)
		}
		if code, body, _ := send("POST", "/api/v1/write", nil, nil, append(h, "Authorization", "Bearer "+adminSecret)...); code != http.StatusForbidden {
			t.Errorf("remote-write from a browser with %s: %d %s", h, code, body)
		}
	}
	if sts, _ := e.st.Settings(e.ctx); len(sts) != 0 {
		t.Fatalf("a cross-origin change went through: %+v", sts)
	}
	if code, body, _ := send("POST", "/settings", jar, form, "Sec-Fetch-Site", "same-origin"); code != http.StatusSeeOther {
		t.Fatalf("same-origin form: %d %s", code, body)
	}
	if sts, _ := e.st.Settings(e.ctx); len(sts) != 1 {
		t.Fatalf("the same-origin change: %+v", sts)
	}
	// Safe methods are not refused: links from elsewhere work.
	if code, _, _ := send("GET", "/login", nil, nil, "Sec-Fetch-Site", "cross-site"); code != http.StatusOK {
		t.Errorf("GET /login from another site: %d", code)
	}
}

// Without https in external_url the cookie is Secure only over TLS.
func TestCookieNotSecureOverPlainHTTP(t *testing.T) {
	e := newEnv(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(e.base+"/login", url.Values{"token": {adminSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 1 || resp.Cookies()[0].Secure {
		t.Errorf("cookies %+v", resp.Cookies())
	}
}

// Failed sign-ins are limited per client address: five, then one per 12s
// on the clock; while limited even the right token waits (429).
func TestLoginFailuresLimited(t *testing.T) {
	e := newEnv(t)
	try := func(tok string) (int, string) {
		t.Helper()
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.PostForm(e.base+"/login", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 5 {
		if code, _ := try("wrong-token-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	code, retry := try("wrong-token-0123456789")
	if code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("6th failure: %d Retry-After %q", code, retry)
	}
	if code, _ := try(adminSecret); code != http.StatusTooManyRequests {
		t.Fatalf("the right token while limited: %d", code)
	}
	e.clock.Add(12 * time.Second)
	if code, _ := try(adminSecret); code != http.StatusSeeOther {
		t.Fatalf("the right token 12s later: %d", code)
	}
	if code, _ := try("wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Fatalf("one failure allowed again: %d", code)
	}
	if code, _ := try("wrong-token-0123456789"); code != http.StatusTooManyRequests {
		t.Fatalf("and only one: %d", code)
	}
	// The API's bearer tokens are not limited by the form's failures.
	if code, _ := e.do("GET", "/api/v1/status", readSecret, ""); code != http.StatusOK {
		t.Errorf("API while the form is limited: %d", code)
	}
}
