package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/replay"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// tlsWebConfig is a --web.config.file that requires a client certificate
// of the test CA and has one basic-auth user.
func tlsWebConfig(t *testing.T) string {
	return fmt.Sprintf(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  %s: %s
`, basicUser, bcryptHash(t, basicPass))
}

// row is one route of the table, as a request.
type row struct {
	method, path string
	role         string // public, read, write, admin, signed (by Slack or PagerDuty), or "ping" (its own key)
	api, change  bool   // JSON answers; changes something or feeds the engine
	body         func() []byte
}

// TestEveryRouteEveryCaller is the one table over every route the listener
// serves (web.Routes, so that a new route cannot escape it, and the
// heartbeat pings) × every kind of caller, over TLS with a required client
// certificate: anonymous, read, write, admin tokens, a basic-auth user of
// --web.config.file, a wrong basic-auth password, and a client without a
// certificate. It checks each status, and that nothing that changes state
// or feeds the engine answers 2xx to a caller without the role.
func TestEveryRouteEveryCaller(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "table")
	// Replays wired as assertd run wires them (an empty form runs none).
	l := startListenerIn(t, dir, listenerConfig, tlsWebConfig(t), nil, func(o *app.Options) { o.Replay = replay.InForce })
	base := "https://" + l.app.Addr()
	now := l.clock.Now()
	var rows []row
	for _, rt := range web.Routes() {
		r := row{method: rt.Method, path: concrete(rt.Path), role: rt.Role, api: rt.API, change: rt.Mutating || rt.Ingest}
		switch {
		case rt.Ingest:
			// A good request: only the role decides.
			r.body = func() []byte { return remoteWrite(t, now, []string{"__name__", "table_probe", "job", "api"}) }
		case rt.Mutating:
			r.body = func() []byte { return []byte(`{}`) }
		}
		rows = append(rows, r)
	}
	for _, p := range []string{"/ping/nightly-backup", "/ping/nightly-backup/start", "/ping/nightly-backup/fail", "/ping/nightly-backup/3"} {
		rows = append(rows, row{method: "GET", path: p, role: "ping", api: true, change: true})
	}
	if len(rows) < 50 {
		t.Fatalf("only %d routes", len(rows))
	}
	rank := map[string]int{"public": 0, "read": 1, "write": 2, "admin": 3}
	callerRank := map[string]int{"anonymous": -1, "read": 1, "write": 2, "admin": 3, "basic-auth user": 2}
	for _, c := range callers() {
		client := ca.httpClient(c.cert)
		for _, r := range rows {
			if r.path == "/api/v1/events" && c.name != "TLS client cert missing" {
				continue // a stream: below
			}
			code, body, err := call(client, r, base, c)
			name := c.name + " " + r.method + " " + r.path
			switch {
			case c.name == "TLS client cert missing":
				if err == nil {
					t.Errorf("%s: answered %d without a client certificate", name, code)
				}
				continue
			case err != nil:
				t.Errorf("%s: %v", name, err)
				continue
			case r.role == "signed":
				// Slack and PagerDuty sign their requests: no token opens
				// them (404: no secret is configured here).
				if code != http.StatusUnauthorized && code != http.StatusNotFound {
					t.Errorf("%s: %d %s, want 401 or 404", name, code, body)
				}
			case c.name == "wrong basic-auth" && r.role != "ping":
				// Pages send the browser to sign in instead.
				if code != http.StatusUnauthorized && (r.api || r.change || code != http.StatusSeeOther) {
					t.Errorf("%s: %d, want 401", name, code)
				}
			case r.method == "POST" && r.path == "/login":
				// Anyone may try to sign in; this form carries no token.
				if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
					t.Errorf("%s: %d, want 401 for the missing token", name, code)
				}
			case r.role == "ping":
				// Pings take their heartbeat's key, no token.
				if code != http.StatusUnauthorized || !strings.Contains(body, "ping key") {
					t.Errorf("%s: %d %s, want 401 for the missing key", name, code, body)
				}
			case r.role == "public" || callerRank[c.name] >= rank[r.role]:
				if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
					t.Errorf("%s: %d %s, want it served", name, code, body)
				}
			case c.name == "anonymous" && !r.api && !r.change:
				if code != http.StatusSeeOther {
					t.Errorf("%s: %d, want the redirect to /login", name, code)
				}
			case c.name == "anonymous":
				if code != http.StatusUnauthorized {
					t.Errorf("%s: %d %s, want 401", name, code, body)
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s: %d %s, want 403", name, code, body)
				}
			}
			if r.change && code/100 == 2 && (r.role == "signed" || c.name != "anonymous" && callerRank[c.name] < rank[r.role]) {
				t.Errorf("%s: %d: a change without the role", name, code)
			}
			if r.change && code/100 == 2 && (c.name == "anonymous" || c.name == "wrong basic-auth") {
				t.Errorf("%s: %d: a change without credentials", name, code)
			}
		}
	}
	// The event stream: served with a token, refused without.
	for _, c := range callers()[:4] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events", nil)
		c.set(req)
		resp, err := ca.httpClient(true).Do(req)
		if err != nil {
			t.Fatalf("%s events: %v", c.name, err)
		}
		resp.Body.Close()
		cancel()
		want := http.StatusOK
		if c.name == "anonymous" {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Errorf("%s events: %d, want %d", c.name, resp.StatusCode, want)
		}
	}
	// The ping key is what a ping needs.
	code, body, err := call(ca.httpClient(true), row{method: "GET", path: "/ping/nightly-backup?key=" + pingKey}, base, callers()[0])
	if err != nil || code != http.StatusOK {
		t.Errorf("ping with its key: %d %s %v", code, body, err)
	}
	// What the callers with the role wrote is there; nothing else changed.
	v, err := l.app.Embedded().Query(context.Background(), `table_probe`, now)
	if err != nil || len(v.Samples) != 1 {
		t.Errorf("table_probe: %+v %v", v, err)
	}
	if sts, _ := l.app.Store().Settings(context.Background()); len(sts) != 0 {
		t.Errorf("settings changed: %+v", sts)
	}
	if runs, _ := l.app.Store().Runs(context.Background(), store.RunFilter{}); len(runs) != 0 {
		t.Errorf("runs started: %+v", runs)
	}
}

func call(client *http.Client, r row, base string, c caller) (int, string, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body())
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		return 0, "", err
	}
	if r.body != nil && r.path != "/api/v1/write" {
		req.Header.Set("Content-Type", "application/json")
	}
	c.set(req)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return resp.StatusCode, string(b), err
}
