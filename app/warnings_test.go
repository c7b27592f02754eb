package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// What assertd check warns about is logged at start and on a reload that
// takes effect: a label inserted into argv without an allow: pattern.
func TestCheckWarningsLogged(t *testing.T) {
	dir := t.TempDir()
	cfg := "files: [rules.yaml]\nnotifiers: [{name: console, console: {}}]\n" +
		"escalation_policies: [{name: ops, levels: [{notify: [console]}]}]\ndefaults: {escalate: ops}\n"
	rules := `asserts:
  - name: up
    query: {up: 'up'}
    expect: up == 1
    remediate: restart
remediations:
  - name: restart
    steps:
      - {name: restart, run: ["systemctl", "restart", "{{ .Labels.instance }}"], on_failure: page}
      - {name: verify, verify: up, on_failure: page}
`
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	var logs bytes.Buffer
	a, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), DataDir: dir,
		NoListener: true, NoScrape: true, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	if n := strings.Count(logs.String(), "check: "); n != 1 || !strings.Contains(logs.String(), "rules.yaml:9:") || !strings.Contains(logs.String(), "instance") {
		t.Fatalf("want one warning naming rules.yaml:9 and the label, got %d:\n%s", n, logs.String())
	}
	// With an allow: pattern, a reload takes it and warns no more.
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(strings.Replace(rules, "    steps:", "    allow: {instance: '^[a-z0-9-]+$'}\n    steps:", 1)), 0o644)
	logs.Reset()
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "check: ") {
		t.Fatalf("a warning after the allow: pattern:\n%s", logs.String())
	}
}
