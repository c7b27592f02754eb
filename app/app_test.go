package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/internal/testprom"
)

// start runs the whole of assertd in-process on 127.0.0.1:0.
func start(t *testing.T, cfg, rules string) (base string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Ready: ready,
			Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1})
	}()
	select {
	case addr := <-ready:
		return "http://" + addr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	return "", nil
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type instancesResp struct {
	Instances []struct {
		Assert string            `json:"assert"`
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
		Reason string            `json:"reason"`
	} `json:"instances"`
}

func instances(t *testing.T, base string) instancesResp {
	_, body := get(t, base+"/api/v1/instances")
	var r instancesResp
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return r
}

func TestRunEndToEnd(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "api_active_connections"})
	reg.MustRegister(g)
	g.Set(3)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	cfg := fmt.Sprintf(`files: [rules.yaml]
data_dir: data
sources:
  embedded:
    scrape_interval: 200ms
    targets: [{url: %q, labels: {job: api}}]
heartbeats: [{name: backup, period: 1h, public: true}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
`, target.URL+"/metrics")
	rules := `asserts:
  - name: connections
    every: 1s
    query: {c: 'sum by (job) (api_active_connections)'}
    expect: c > 10
  - name: backup
    every: 1s
    expect: heartbeat("backup").age < duration("1h")
`
	base, stop := start(t, cfg, rules)
	defer stop()
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %s", code, body)
	}
	// The scraped value violates; no remediation: escalated.
	testprom.Eventually(t, 20*time.Second, func() error {
		for _, in := range instances(t, base).Instances {
			if in.Assert == "connections" && in.State == "escalated" && in.Labels["job"] == "api" {
				return nil
			}
		}
		return fmt.Errorf("%+v", instances(t, base))
	})
	// The heartbeat was never pinged: uncertain; a ping makes it ok.
	if code, _ := get(t, base+"/ping/backup"); code != 200 {
		t.Fatalf("ping %d", code)
	}
	if code, body := get(t, base+"/ping/nope"); code != 404 || !strings.Contains(body, "unknown heartbeat") {
		t.Fatalf("unknown ping %d %s", code, body)
	}
	testprom.Eventually(t, 10*time.Second, func() error {
		for _, in := range instances(t, base).Instances {
			if in.Assert == "backup" && in.State == "ok" {
				return nil
			}
		}
		return fmt.Errorf("%+v", instances(t, base))
	})
	// Without tokens, remote-write is refused, however good the request.
	resp, err := http.Post(base+"/api/v1/write", "application/x-protobuf", bytes.NewReader([]byte("junk")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 401 || !strings.Contains(string(b), "web.public_write") {
		t.Fatalf("anonymous remote write: %v %s", resp.StatusCode, b)
	}
	resp.Body.Close()
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, `assertd_instances{state="escalated"} 1`) || !strings.Contains(body, "assertd_heartbeat_up") {
		t.Fatalf("metrics %d", code)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("unknown route %d", code)
	}
}

func TestRunRefusesBrokenConfigAndUnreachableStore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte("files: [rules.yaml]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("asserts: [{name: a, expect: 'x <'}]"), 0o644)
	err := Run(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:1:") {
		t.Fatalf("broken config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte("files: [rules.yaml]\nstore: {driver: postgres, dsn_env: PG_DSN}\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\ndefaults: {escalate: ops}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("asserts: [{name: a, query: {x: up}, expect: x == 1}]"), 0o644)
	err = Run(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Getenv: func(string) string { return "postgres://assertd:secret-pw@127.0.0.1:1/assertd?connect_timeout=2" }})
	if err == nil || !strings.Contains(err.Error(), "store") || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("unreachable store: %v", err)
	}
}

// The same loop with state in a real PostgreSQL.
func TestRunOnPostgres(t *testing.T) {
	pg := testpg.Start(t)
	dsn, err := pg.CreateDB(context.Background(), "assertd")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ASSERTD_TEST_PG_DSN", dsn)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue_depth"})
	reg.MustRegister(g)
	g.Set(500)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	cfg := fmt.Sprintf(`files: [rules.yaml]
data_dir: data
store: {driver: postgres, dsn_env: ASSERTD_TEST_PG_DSN}
sources:
  embedded:
    scrape_interval: 200ms
    targets: [{url: %q, labels: {job: worker}}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
`, target.URL+"/metrics")
	base, stop := start(t, cfg, "asserts: [{name: queue, every: 1s, query: {d: 'max by (job) (queue_depth)'}, expect: d < 100}]\n")
	defer stop()
	testprom.Eventually(t, 20*time.Second, func() error {
		for _, in := range instances(t, base).Instances {
			if in.Assert == "queue" && in.State == "escalated" {
				return nil
			}
		}
		return fmt.Errorf("%+v", instances(t, base))
	})
}
