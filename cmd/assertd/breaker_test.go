package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/internal/testprom"
)

// fleetMetrics serves api_up for ten nodes, n0..n9, as a scrape target.
type fleetMetrics struct {
	mu   sync.Mutex
	down map[int]bool
}

func (f *fleetMetrics) set(down ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = map[int]bool{}
	for _, d := range down {
		f.down[d] = true
	}
}

func (f *fleetMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# TYPE api_up gauge")
	for i := range 10 {
		v := 1
		if f.down[i] {
			v = 0
		}
		fmt.Fprintf(w, "api_up{node=\"n%d\"} %d\n", i, v)
	}
}

// startFleet runs the whole of assertd in-process on 127.0.0.1:0 over dir
// (its data survives a stop and a start) and returns its URL and a stop.
func startFleet(t *testing.T, dir string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	secrets := map[string]string{"ADMIN_TOKEN": "admin-token-for-the-cli-test", "READ_TOKEN": "read-token-for-the-cli-test"}
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Ready: ready,
			Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1, Getenv: func(k string) string { return secrets[k] }})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case err := <-done:
		stopped = true
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	return "", stop
}

// eventually polls the running assertd (it scrapes on real time and real
// sockets) until cond holds.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testprom.Eventually(t, 30*time.Second, func() error {
		if ok, got := cond(); !ok {
			return fmt.Errorf("%s; last: %s", what, got)
		}
		return nil
	})
}

func apiGet(t *testing.T, base, path string, v any) error {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer read-token-for-the-cli-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// The breaker opens at 5 of 10 (share 40%), is still open after a restart,
// `assertd resume` says it does not close it, `assertd breaker close`
// does (audited under the token's name) and the next violation runs.
func TestBreakerCommands(t *testing.T) {
	metrics := &fleetMetrics{}
	target := httptest.NewServer(metrics)
	t.Cleanup(target.Close)
	dir := t.TempDir()
	cfg := `files: [rules.yaml]
data_dir: data
sources:
  embedded:
    scrape_interval: 1s
    scrape_timeout: 1s
    targets: [{url: ` + target.URL + `/metrics, labels: {job: api}}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
safety: {blast_radius: {share: 0.4, window: 5m}}
web:
  tokens:
    - {name: alice, role: admin, token_env: ADMIN_TOKEN}
    - {name: rob, role: read, token_env: READ_TOKEN}
`
	rules := `asserts:
  - name: api-up
    every: 1s
    query: {up: 'api_up'}
    expect: up == 1
    remediate: restart-api
remediations:
  - name: restart-api
    lock: "api/{{ .Labels.node }}"
    steps:
      - {name: restart, run: ["true"], on_failure: page}
      - {name: verify, verify: api-up, on_failure: page}
`
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	metrics.set()
	base, stop := startFleet(t, dir)
	t.Setenv("ASSERTD_URL", base)
	t.Setenv("ASSERTD_TOKEN", "admin-token-for-the-cli-test")
	eventually(t, "ten instances, ok", func() (bool, string) {
		var r struct{ Counts map[assertd.State]int }
		err := apiGet(t, base, "/api/v1/instances?assert=api-up", &r)
		return err == nil && r.Counts[assertd.OK] == 10, fmt.Sprint(r.Counts, err)
	})
	if code, out, _ := runCLI("breaker", "list"); code != 0 || !strings.Contains(out, "no blast-radius breaker has tripped") {
		t.Fatalf("breaker list before: %d %s", code, out)
	}

	metrics.set(0, 1, 2, 3, 4)
	eventually(t, "the breaker opens", func() (bool, string) {
		code, out, errs := runCLI("breaker", "list")
		return code == 0 && strings.Contains(out, "api-up  open") && strings.Contains(out, "5 of 10"), out + errs
	})
	var runs struct{ Runs []assertd.Run }
	if err := apiGet(t, base, "/api/v1/runs?assert=api-up", &runs); err != nil || len(runs.Runs) != 0 {
		t.Fatalf("runs while the breaker is open: %+v %v", runs.Runs, err)
	}
	// Stop once the five escalations are in the store (an evaluation may
	// still be committing them).
	eventually(t, "the five escalations stored", func() (bool, string) {
		var r struct{ Instances []assertd.Instance }
		if err := apiGet(t, base, "/api/v1/instances?assert=api-up&state=escalated", &r); err != nil {
			return false, err.Error()
		}
		stored := 0
		for _, in := range r.Instances {
			var d struct{ Transitions []assertd.Transition }
			if apiGet(t, base, "/api/v1/instances/api-up/"+in.Fingerprint, &d) == nil && len(d.Transitions) > 0 && d.Transitions[0].To == assertd.Escalated {
				stored++
			}
		}
		return stored == 5, fmt.Sprintf("%d of %d stored", stored, len(r.Instances))
	})

	// A restart: the breaker is still open.
	stop()
	base, _ = startFleet(t, dir)
	t.Setenv("ASSERTD_URL", base)
	if code, out, errs := runCLI("breaker", "list"); code != 0 || !strings.Contains(out, "api-up  open") || !strings.Contains(out, "5 of 10") {
		t.Fatalf("breaker list after a restart: %d %s %s", code, out, errs)
	}
	code, out, errs := runCLI("resume", "--reason", "the zone is back")
	if code != 0 || !strings.Contains(out, "does not close a blast-radius breaker") ||
		!strings.Contains(out, "blast-radius breaker still open for api-up (5 of 10 violating): assertd breaker close api-up --reason") {
		t.Fatalf("resume: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI("breaker", "close", "api-up", "--reason", " "); code != 1 || !strings.Contains(errs, "reason") || !strings.Contains(errs, "HTTP 400") {
		t.Fatalf("close without a reason: %d %s", code, errs)
	}
	t.Setenv("ASSERTD_TOKEN", "read-token-for-the-cli-test")
	if code, _, errs := runCLI("breaker", "close", "api-up", "--reason", "x"); code != 1 || !strings.Contains(errs, "HTTP 403") {
		t.Fatalf("close with a read token: %d %s", code, errs)
	}
	t.Setenv("ASSERTD_TOKEN", "admin-token-for-the-cli-test")
	code, out, errs = runCLI("breaker", "close", "api-up", "--reason", "load balancer fixed, CHG-7")
	if code != 0 || !strings.Contains(out, "blast-radius breaker of api-up closed by alice") {
		t.Fatalf("breaker close: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI("breaker", "close", "api-up", "--reason", "again"); code != 1 || !strings.Contains(errs, "HTTP 409") {
		t.Fatalf("closing it twice: %d %s", code, errs)
	}
	if code, out, _ := runCLI("breaker", "list"); code != 0 || !strings.Contains(out, "api-up  closed") || !strings.Contains(out, "alice") {
		t.Fatalf("breaker list after the close: %d %s", code, out)
	}
	var audit struct{ Audit []assertd.AuditEntry }
	if err := apiGet(t, base, "/api/v1/audit?action=breaker.close", &audit); err != nil || len(audit.Audit) != 1 ||
		audit.Audit[0].Actor != "alice" || audit.Audit[0].Reason != "load balancer fixed, CHG-7" {
		t.Fatalf("audit %+v %v", audit.Audit, err)
	}

	// The next violation runs its remediation; the five before do not.
	metrics.set(0, 1, 2, 3, 4, 5)
	eventually(t, "a run for the next violation", func() (bool, string) {
		var r struct{ Runs []assertd.Run }
		err := apiGet(t, base, "/api/v1/runs?assert=api-up", &r)
		return err == nil && len(r.Runs) == 1 && r.Runs[0].Labels["node"] == "n5", fmt.Sprint(r.Runs, err)
	})
}
