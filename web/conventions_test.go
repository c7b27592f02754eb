package web_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/assertd/assertd/store"
)

// The Prometheus paths answer what their older names answer.
func TestPrometheusHealthPaths(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ path, same string }{
		{"/-/healthy", "/healthz"},
		{"/-/ready", "/readyz"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := e.do("GET", tc.path, "", "")
			wantCode, wantBody := e.do("GET", tc.same, "", "")
			if code != http.StatusOK || code != wantCode || body != wantBody {
				t.Fatalf("%s: %d %s; %s: %d %s", tc.path, code, body, tc.same, wantCode, wantBody)
			}
			if code, _ := e.do("POST", tc.path, adminSecret, "{}"); code != http.StatusMethodNotAllowed {
				t.Errorf("POST %s: %d, want 405", tc.path, code)
			}
		})
	}
}

// POST /-/reload reloads the files with an admin token, and only then:
// 200 when the new configuration is in force, 500 with the reason when it
// is refused and the last good one keeps running. Each reload is audited.
func TestReloadRoute(t *testing.T) {
	e := newEnv(t)
	rules := strings.Replace(e.config, "assertd.yaml", "rules.yaml", 1)
	good, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	// The new assert goes under asserts:, before remediations:.
	added := strings.Replace(string(good), "remediations:\n", "  - {name: added-by-reload, every: 1m, query: {v: up}, expect: v == 1}\nremediations:\n", 1)
	if added == string(good) {
		t.Fatal("the harness's rules have no remediations: section")
	}
	write := func(text string) {
		if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inForce := func() bool { return e.eng.Config().Assert("added-by-reload") != nil }

	write(added)
	for _, tc := range []struct {
		name, method, tok string
		code              int
		want              string
	}{
		{"no token", "POST", "", http.StatusUnauthorized, ""},
		{"unknown token", "POST", "not-a-token-at-all", http.StatusUnauthorized, ""},
		{"read token", "POST", readSecret, http.StatusForbidden, ""},
		{"GET", "GET", adminSecret, http.StatusMethodNotAllowed, "use POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.do(tc.method, "/-/reload", tc.tok, "")
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if inForce() {
				t.Fatal("the refused request reloaded")
			}
		})
	}
	if log, _ := e.st.AuditLog(e.ctx, storeAuditAll); len(log) != 0 {
		t.Fatalf("refused requests audited: %+v", log)
	}

	if code, body := e.do("POST", "/-/reload", adminSecret, ""); code != http.StatusOK || !strings.Contains(body, "reloaded") {
		t.Fatalf("admin reload: %d %s", code, body)
	}
	if !inForce() {
		t.Fatal("200 but the new assert is not in force")
	}

	write(string(good) + "  - {name: broken\n")
	code, body := e.do("POST", "/-/reload", adminSecret, "")
	if code != http.StatusInternalServerError || !strings.Contains(body, "rules.yaml:") || !strings.Contains(body, "last good configuration keeps running") {
		t.Fatalf("reload of a broken file: %d %s", code, body)
	}
	if !inForce() {
		t.Fatal("the refused reload changed the configuration")
	}

	log, err := e.st.AuditLog(e.ctx, store.AuditFilter{Action: "config.reload"})
	if err != nil || len(log) != 2 {
		t.Fatalf("audit: %v %+v", err, log)
	}
	details := log[0].Detail + " | " + log[1].Detail
	if log[0].Actor != "alice" || log[1].Actor != "alice" || !strings.Contains(details, "ok") || !strings.Contains(details, "refused: ") {
		t.Fatalf("audit entries %+v", log)
	}
}
