package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"

	"net/http/httptest"

	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/sources"
)

const evalRules = `asserts:
  - name: api-connections
    query:
      connections: sum by (pod) (api_active_connections)
    expect: connections > 10
    labels: {team: web}
`

func writeConfig(t *testing.T, sourcesYAML string) string {
	dir := t.TempDir()
	cfg := "files: [rules.yaml]\ndata_dir: data\n" + sourcesYAML +
		"notifiers: [{name: console, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [console]}]}]\ndefaults: {escalate: ops}\n"
	for name, body := range map[string]string{"assertd.yaml": cfg, "rules.yaml": evalRules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "assertd.yaml")
}

func TestEvalEmbedded(t *testing.T) {
	cfg := writeConfig(t, "")
	code, out, _ := runCLI("eval", "-c", cfg, "api-connections")
	if code != 0 || !strings.Contains(out, "uncertain (source unavailable: no embedded TSDB at") {
		t.Fatalf("before any data: %d\n%s", code, out)
	}
	e, err := sources.OpenEmbedded(sources.EmbeddedOptions{Dir: filepath.Join(filepath.Dir(cfg), "data", "tsdb")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	app := e.Appendable().Appender(context.Background())
	for inst, v := range map[string]float64{"api-1": 42, "api-2": 3} {
		if _, err := app.Append(0, labels.FromStrings("__name__", "api_active_connections", "pod", inst), now.UnixMilli(), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	code, out, _ = runCLI("eval", "-c", cfg, "--at", now.Add(time.Second).UTC().Format(time.RFC3339), "api-connections")
	for _, want := range []string{
		"api-connections (" + filepath.Join(filepath.Dir(cfg), "rules.yaml") + ":2:5)",
		"expect: connections > 10",
		`{pod="api-1", team="web"}  ok        connections=42  holds: connections > 10 with connections=42`,
		`{pod="api-2", team="web"}  violated  connections=3   violated: connections > 10 is false with connections=3`,
		"2 instances: 1 violated, 1 ok",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	code, out, _ = runCLI("eval", "-c", cfg, "-o", "json", "api-connection")
	if code != 2 {
		t.Errorf("unknown assert: %d %s", code, out)
	}
}

func TestEvalRealPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "api_active_connections"}, []string{"pod"})
	reg.MustRegister(g)
	g.WithLabelValues("api-1").Set(42)
	g.WithLabelValues("api-2").Set(3)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	prom := testprom.Start(t, testprom.Options{Targets: []string{u.Host}})
	cfg := writeConfig(t, fmt.Sprintf("sources:\n  default: prom\n  prometheus: [{name: prom, url: %q, timeout: 5s}]\n", prom.URL))
	// A real Prometheus scrapes on its own schedule: a bounded poll.
	testprom.Eventually(t, 30*time.Second, func() error {
		code, out, errs := runCLI("eval", "-c", cfg, "api-connections")
		if code != 0 || !strings.Contains(out, "2 instances: 1 violated, 1 ok") || !strings.Contains(out, "source prom") {
			return fmt.Errorf("exit %d\n%s%s", code, out, errs)
		}
		return nil
	})
	prom.Stop()
	code, out, _ := runCLI("eval", "-c", cfg, "api-connections")
	if code != 0 || !strings.Contains(out, "uncertain (source unavailable: query connections: source prom: Post") || strings.Contains(out, " ok ") {
		t.Fatalf("after stopping Prometheus: %d\n%s", code, out)
	}
}
