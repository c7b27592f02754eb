package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/app"
)

// startAssertd runs the whole of assertd in-process on 127.0.0.1:0 with two
// API tokens and returns its URL.
func startAssertd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `files: [rules.yaml]
data_dir: data
heartbeats: [{name: backup, period: 1h, public: true}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
web:
  tokens:
    - {name: alice, role: admin, token_env: ADMIN_TOKEN}
    - {name: rob, role: read, token_env: READ_TOKEN}
`
	rules := `asserts:
  - name: backup
    every: 1s
    expect: heartbeat("backup").age < duration("1h")
    remediate: rerun-backup
remediations:
  - name: rerun-backup
    steps:
      - {name: start, run: [systemctl, start, backup.service], on_failure: page}
      - {name: verify, verify: backup, on_failure: page}
`
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	secrets := map[string]string{"ADMIN_TOKEN": "admin-token-for-the-cli-test", "READ_TOKEN": "read-token-for-the-cli-test"}
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Ready: ready,
			Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1, Getenv: func(k string) string { return secrets[k] }})
	}()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if stopped {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		stopped = true
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	return ""
}

func TestOperatorCommandsOverTheAPI(t *testing.T) {
	base := startAssertd(t)
	t.Setenv("ASSERTD_URL", base)
	t.Setenv("ASSERTD_TOKEN", "admin-token-for-the-cli-test")

	code, out, errs := runCLI("silence", "add", "--match", `{instance="db1"}`, "--for", "1h", "--comment", "maintenance CHG-1")
	id := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(id, "s-") {
		t.Fatalf("silence add: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI("silence", "list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, `{instance="db1"}`) || !strings.Contains(out, "alice") {
		t.Fatalf("silence list: %d %s", code, out)
	}
	if code, _, errs := runCLI("silence", "expire", id); code != 0 {
		t.Fatalf("silence expire: %d %s", code, errs)
	}
	if code, out, _ := runCLI("silence", "list"); code != 0 || strings.Contains(out, id) {
		t.Fatalf("expired silence still listed: %s", out)
	}
	if code, _, errs := runCLI("silence", "add", "--match", `{instance~"x"}`, "--comment", "x"); code != 1 || !strings.Contains(errs, "--match") {
		t.Errorf("bad matchers: %d %s", code, errs)
	}
	if code, out, _ := runCLI("pause", "--reason", "AZ outage"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %d %s", code, out)
	}
	if code, out, _ := runCLI("resume", "--reason", "over"); code != 0 || !strings.Contains(out, "kill switch off") || !strings.Contains(out, "does not close a blast-radius breaker") {
		t.Fatalf("resume: %d %s", code, out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, out, _ := runCLI("status", "-a")
		if code == 0 && strings.Contains(out, "backup") && strings.Contains(out, "uncertain") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --url: %d %s", code, out)
		}
	}
	// The operator actions reach the engine: a dry-run break glass records
	// a shadow run (and makes no external call).
	code, out, errs = runCLI("remediate", "rerun-backup", "--instance", "{}", "--reason", "backup missed", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "run bg-") {
		t.Errorf("remediate --dry-run: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI("remediate", "rerun-backup", "--instance", "{}", "--reason", " "); code != 1 || !strings.Contains(errs, "reason") {
		t.Errorf("remediate without a reason: %d %s", code, errs)
	}
	if code, _, errs := runCLI("approve", "run-x"); code != 1 || !strings.Contains(errs, "HTTP 404") {
		t.Errorf("approve: %d %s", code, errs)
	}
	if code, _, errs := runCLI("ack", "backup"); code != 1 || !strings.Contains(errs, "nobody is paged") || !strings.Contains(errs, "HTTP 409") {
		t.Errorf("ack: %d %s", code, errs)
	}
	// A lifecycle state set for a target is listed, and removed.
	if code, out, errs := runCLI("lifecycle", "set", "--target", `{instance="db3"}`, "--state", "upgrading", "--reason", "pg 17, CHG-12"); code != 0 || !strings.Contains(out, `lifecycle of {instance="db3"}: upgrading`) {
		t.Errorf("lifecycle set: %d %s %s", code, out, errs)
	}
	if code, out, _ := runCLI("lifecycle", "list"); code != 0 || !strings.Contains(out, `{instance="db3"}  upgrading`) || !strings.Contains(out, "alice") {
		t.Errorf("lifecycle list: %d %s", code, out)
	}
	if code, _, errs := runCLI("lifecycle", "set", "--target", `{instance="db3"}`, "--state", "exploded", "--reason", "x"); code != 1 || !strings.Contains(errs, "unknown lifecycle state") {
		t.Errorf("lifecycle set exploded: %d %s", code, errs)
	}
	if code, out, errs := runCLI("lifecycle", "set", "--target", `{instance="db3"}`, "--state", "", "--reason", "done"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("lifecycle removed: %d %s %s", code, out, errs)
	}
	if code, out, _ := runCLI("lifecycle", "list"); code != 0 || strings.Contains(out, "db3") {
		t.Errorf("lifecycle list after the removal: %d %s", code, out)
	}
	// A read token may look, not change.
	t.Setenv("ASSERTD_TOKEN", "read-token-for-the-cli-test")
	if code, _, errs := runCLI("pause", "--reason", "x"); code != 1 || !strings.Contains(errs, "HTTP 403") {
		t.Errorf("pause with a read token: %d %s", code, errs)
	}
	t.Setenv("ASSERTD_TOKEN", "")
	if code, _, errs := runCLI("silence", "list"); code != 1 || !strings.Contains(errs, "HTTP 401") {
		t.Errorf("no token: %d %s", code, errs)
	}
}
