package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/store"
)

// post sends a remote-write body with the header set.
func (l *listener) post(t *testing.T, client *http.Client, base string, body []byte, set func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	if set != nil {
		set(req)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (l *listener) count(t *testing.T, q string) int {
	t.Helper()
	v, err := l.app.Embedded().Query(context.Background(), q, l.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(v.Samples)
}

func bearer(s string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+s) }
}

// Remote-write through the listener: a token's write_matchers, invalid
// names and the budget of new series each refuse a request whole, and the
// refused new series are counted.
func TestRemoteWriteRefusesWhole(t *testing.T) {
	cfg := strings.Replace(listenerConfig, "web:\n", "web:\n  new_series_limit: {per_second: 1, burst: 3}\n", 1)
	l := startListener(t, cfg, "", nil)
	now := l.clock.Now()
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
		body []byte
		code int
		msg  string
	}{
		{"anonymous", nil, remoteWrite(t, now, []string{"__name__", "w", "job", "api"}), 401, "needs a token with the role write"},
		{"read token", bearer(readSecret), remoteWrite(t, now, []string{"__name__", "w", "job", "api"}), 403, "has the role read"},
		{"wrong token", bearer("nope-nope-nope-nope"), remoteWrite(t, now, []string{"__name__", "w", "job", "api"}), 401, "not valid"},
		{"outside write_matchers", bearer(writeSecret),
			remoteWrite(t, now, []string{"__name__", "w", "job", "api"}, []string{"__name__", "w", "job", "db"}), 403, "matches none of the token's write_matchers"},
		{"invalid metric name", bearer(writeSecret),
			remoteWrite(t, now, []string{"__name__", "w", "job", "api"}, []string{"__name__", "bad metric{}", "job", "api"}), 400, "is not valid"},
		{"invalid label name", bearer(writeSecret),
			remoteWrite(t, now, []string{"__name__", "w", "job", "api"}, []string{"__name__", "w", "job", "api", "a b", "x"}), 400, "is not valid"},
		{"past the new series", bearer(writeSecret),
			remoteWrite(t, now, []string{"__name__", "w", "job", "api", "i", "1"}, []string{"__name__", "w", "job", "api", "i", "2"},
				[]string{"__name__", "w", "job", "api", "i", "3"}, []string{"__name__", "w", "job", "api", "i", "4"}), 429, "4 new series"},
	} {
		if code, body := l.post(t, nil, l.base, tc.body, tc.set); code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	if n := l.count(t, `{__name__=~"w|bad.*"}`); n != 0 {
		t.Fatalf("refused requests wrote %d series", n)
	}
	if code, body := l.post(t, nil, l.base, remoteWrite(t, now, []string{"__name__", "w", "job", "api", "i", "1"}, []string{"__name__", "w", "job", "api", "i", "2"},
		[]string{"__name__", "w", "job", "api", "i", "3"}), bearer(writeSecret)); code != 204 {
		t.Fatalf("3 new series: %d %s", code, body)
	}
	// The budget is spent: one more new series waits a second on the clock.
	one := remoteWrite(t, now, []string{"__name__", "w", "job", "api", "i", "5"})
	if code, _ := l.post(t, nil, l.base, one, bearer(writeSecret)); code != 429 {
		t.Fatalf("a 4th new series: %d", code)
	}
	l.clock.Add(time.Second)
	if code, body := l.post(t, nil, l.base, one, bearer(writeSecret)); code != 204 {
		t.Fatalf("after a second: %d %s", code, body)
	}
	// Known series are not new: they are written whatever the budget.
	if code, body := l.post(t, nil, l.base, remoteWrite(t, now.Add(time.Second), []string{"__name__", "w", "job", "api", "i", "1"}), bearer(writeSecret)); code != 204 {
		t.Fatalf("a known series: %d %s", code, body)
	}
	if n := l.count(t, `w{job="api"}`); n != 4 {
		t.Errorf("%d series, want 4", n)
	}
	g := l.app.Gatherer()
	if n, err := testutil.GatherAndCount(g, "assertd_remote_write_new_series_refused_total"); err != nil || n != 1 {
		t.Errorf("refused counter series: %d %v", n, err)
	}
	body := metricsText(t, l.base)
	for _, want := range []string{`assertd_remote_write_new_series_refused_total{writer="prom-api"} 5`, `assertd_remote_write_new_series_total{writer="prom-api"} 4`,
		`assertd_http_requests_total{code="401",handler="remote_write"} 2`, `assertd_http_requests_total{code="429",handler="remote_write"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// web.public_write is the one way anonymous remote-write is accepted; the
// tokens' writes are still checked as usual.
func TestPublicWrite(t *testing.T) {
	cfg := strings.Replace(listenerConfig, "web:\n", "web:\n  public_write: true\n", 1)
	l := startListener(t, cfg, "", nil)
	now := l.clock.Now()
	if code, body := l.post(t, nil, l.base, remoteWrite(t, now, []string{"__name__", "open_w", "job", "db"}), nil); code != 204 {
		t.Fatalf("anonymous under public_write: %d %s", code, body)
	}
	if code, _ := l.post(t, nil, l.base, remoteWrite(t, now, []string{"__name__", "open_w", "job", "db"}), bearer(writeSecret)); code != 403 {
		t.Errorf("the restricted token still restricted: %d", code)
	}
	if code, _ := doGet(t, l.base+"/api/v1/status", nil); code != 401 {
		t.Errorf("public_write opened reads: %d", code)
	}
}

func doGet(t *testing.T, url string, set func(*http.Request)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Without a credential assertd listens on loopback only and says so once;
// another address is an error that says what to write, at start and on a
// reload that removes the last token.
func TestLoopbackOnlyWithoutCredentials(t *testing.T) {
	noTokens := listenerConfig[:strings.Index(listenerConfig, "web:\n")]
	l := startListener(t, noTokens, "", nil)
	if n := hasLine(l.logs.String(), "no tokens are configured: listening on loopback only"); n != 1 {
		t.Errorf("%d log lines about loopback:\n%s", n, l.logs.String())
	}
	if code, _ := l.post(t, nil, l.base, remoteWrite(t, l.clock.Now(), []string{"__name__", "w", "job", "api"}), nil); code != 401 {
		t.Errorf("anonymous remote-write without tokens: %d", code)
	}

	dir := t.TempDir()
	write := func(cfg string) {
		for name, text := range map[string]string{"assertd.yaml": cfg, "rules.yaml": harnessRules} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	secrets := map[string]string{"T_ADMIN": adminSecret, "T_READ": readSecret, "T_WRITE": writeSecret, "T_PING": pingKey}
	o := app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "0.0.0.0:0", Getenv: func(k string) string { return secrets[k] },
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard, ReloadEvery: -1}
	write(noTokens)
	_, err := app.New(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "listen address 0.0.0.0:0 is not a loopback address and no credential is configured") ||
		!strings.Contains(err.Error(), "add web.tokens") || !strings.Contains(err.Error(), "or listen on 127.0.0.1:0") {
		t.Fatalf("0.0.0.0 without tokens: %v", err)
	}
	write(listenerConfig)
	a, err := app.New(context.Background(), o)
	if err != nil {
		t.Fatalf("0.0.0.0 with tokens: %v", err)
	}
	defer a.Stop(context.Background())
	write(noTokens + "# tokens removed\n")
	if err := a.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("a reload that removes every token: %v", err)
	}
	if len(a.Set().Config.Web.Tokens) != 3 {
		t.Errorf("the refused reload changed the configuration: %+v", a.Set().Config.Web)
	}
}

// A basic-auth user of --web.config.file has the role write; the file is
// read again when it changes, and a broken file keeps the last good one.
func TestWebConfigUsersReload(t *testing.T) {
	l := startListener(t, listenerConfig, "basic_auth_users:\n  prom: "+bcryptHash(t, basicPass)+"\n", nil)
	now := l.clock.Now()
	body := remoteWrite(t, now, []string{"__name__", "basic_w", "job", "db"})
	as := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	if code, b := l.post(t, nil, l.base, body, as(basicUser, basicPass)); code != 204 {
		t.Fatalf("basic-auth user: %d %s", code, b)
	}
	if code, _ := doGet(t, l.base+"/api/v1/status", as(basicUser, basicPass)); code != 200 {
		t.Errorf("a basic-auth user reads: %d", code)
	}
	if code, _ := l.post(t, nil, l.base, []byte(`{}`), nil); code != 401 {
		t.Errorf("anonymous: %d", code)
	}
	req, _ := http.NewRequest("PUT", l.base+"/api/v1/settings/automation.kill_switch", strings.NewReader(`{"value":"on","reason":"x"}`))
	req.SetBasicAuth(basicUser, basicPass)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("a basic-auth user changes a setting: %v %v", resp, err)
	}
	file := filepath.Join(l.dir, "web.yml")
	if err := os.WriteFile(file, []byte("basic_auth_users:\n  prom2: "+bcryptHash(t, "another-password-123")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := l.post(t, nil, l.base, body, as(basicUser, basicPass)); code != 401 {
		t.Errorf("a removed user: %d", code)
	}
	if code, b := l.post(t, nil, l.base, body, as("prom2", "another-password-123")); code != 204 {
		t.Errorf("a new user: %d %s", code, b)
	}
	if err := os.WriteFile(file, []byte("basic_auth_users: [not a map\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, b := l.post(t, nil, l.base, body, as("prom2", "another-password-123")); code != 204 {
		t.Errorf("after the file broke: %d %s", code, b)
	}
	if n := hasLine(l.logs.String(), "keeping the last good one"); n != 1 {
		t.Errorf("%d log lines about the broken file", n)
	}
}

// TLS of --web.config.file: Go's client with the test CA; a new
// certificate in the file is served from the next connection.
func TestWebConfigTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "first")
	l := startListenerIn(t, dir, listenerConfig, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n", nil)
	base := "https://" + l.app.Addr()
	if code, b := l.post(t, ca.httpClient(false), base, remoteWrite(t, l.clock.Now(), []string{"__name__", "tls_w", "job", "api"}), bearer(writeSecret)); code != 204 {
		t.Fatalf("over TLS: %d %s", code, b)
	}
	if code, body := doGet(t, "http://"+l.app.Addr()+"/healthz", nil); code != 400 || !strings.Contains(body, "HTTPS server") {
		t.Errorf("plain HTTP on the TLS listener: %d %s", code, body)
	}
	old := &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS12}
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: old}}).Get(base + "/healthz"); err == nil {
		t.Errorf("TLS 1.2 accepted with min_version: TLS13")
	}
	second := newTestCA(t, t.TempDir(), "second")
	for _, f := range []string{"server.crt", "server.key"} {
		b, err := os.ReadFile(filepath.Join(second.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ca.httpClient(false).Get(base + "/healthz"); err == nil {
		t.Errorf("the first CA still verifies the listener after the certificate changed")
	}
	if resp, err := second.httpClient(false).Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("the new certificate: %v %v", resp, err)
	}
}

// Without credentials reads are open only to requests that came in on a
// loopback address: were the listener ever reachable otherwise (the last
// basic-auth user gone from --web.config.file), they close.
func TestOpenReadsOnlyOverLoopback(t *testing.T) {
	noTokens := harnessConfig[:strings.Index(harnessConfig, "web:\n")]
	e := newEnvWith(t, noTokens, harnessRules)
	h := e.app.Handler()
	for addr, want := range map[string]int{"127.0.0.1:8080": 200, "[::1]:8080": 200, "10.1.2.3:8080": 401, "192.0.2.7:8080": 401} {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		la, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("a read that came in on %s: %d, want %d", addr, w.Code, want)
		}
	}
}

// web.ingest_listen is a second listener for ingestion only, with the same
// TLS and credentials: remote-write and pings there, the UI and the API not.
func TestIngestListener(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ingest")
	cfg := strings.Replace(listenerConfig, "web:\n", "web:\n  ingest_listen: 127.0.0.1:0\n", 1)
	l := startListenerIn(t, dir, cfg, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", nil)
	ingest := "https://" + l.app.IngestAddr()
	if l.app.IngestAddr() == "" || l.app.IngestAddr() == l.app.Addr() {
		t.Fatalf("ingest listener %q, main %q", l.app.IngestAddr(), l.app.Addr())
	}
	client := ca.httpClient(false)
	body := remoteWrite(t, l.clock.Now(), []string{"__name__", "ingest_w", "job", "api"})
	if code, b := l.post(t, client, ingest, body, nil); code != 401 {
		t.Errorf("anonymous on the ingest listener: %d %s", code, b)
	}
	if code, b := l.post(t, client, ingest, body, bearer(writeSecret)); code != 204 {
		t.Errorf("write token on the ingest listener: %d %s", code, b)
	}
	get := func(base, path string, set func(*http.Request)) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{"/ping/nightly-backup?key=" + pingKey: 200, "/healthz": 200, "/api/v1/status": 404, "/": 404, "/login": 404, "/metrics": 404} {
		if code := get(ingest, path, bearer(adminSecret)); code != want {
			t.Errorf("ingest listener %s: %d, want %d", path, code, want)
		}
	}
	if code := get("https://"+l.app.Addr(), "/api/v1/status", bearer(readSecret)); code != 200 {
		t.Errorf("the main listener's API: %d", code)
	}
	if n := l.count(t, `ingest_w`); n != 1 {
		t.Errorf("%d series written", n)
	}
}

// As an attacker on loopback would try it: an anonymous remote-write of a
// violating series, with tokens configured and without, starts no run.
func TestAnonymousWriteStartsNoRun(t *testing.T) {
	noTokens := harnessConfig[:strings.Index(harnessConfig, "web:\n")]
	for name, cfg := range map[string]string{"tokens": harnessConfig, "no tokens": noTokens} {
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, cfg, harnessRules)
			body := remoteWrite(t, e.clock.Now(), []string{"__name__", "pg_free_connections", "instance", "db9", "cluster", "main"})
			req, _ := http.NewRequest("POST", e.base+"/api/v1/write", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("anonymous remote-write: %d", resp.StatusCode)
			}
			for range 3 {
				e.eval()
				e.clock.Add(30 * time.Second)
			}
			if runs, _ := e.st.Runs(e.ctx, store.RunFilter{}); len(runs) != 0 {
				t.Errorf("runs: %+v", runs)
			}
			for _, in := range e.eng.Instances() {
				if in.Labels["instance"] == "db9" {
					t.Errorf("an instance from the anonymous series: %+v", in)
				}
			}
		})
	}
}
