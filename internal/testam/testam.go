// Package testam starts, for tests, a real Alertmanager (Debian's
// prometheus-alertmanager package) and a real Prometheus that evaluates
// alerting rules and sends its alerts to it, each on 127.0.0.1 in a
// temporary directory, and stops them when the test ends.
package testam

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/internal/testproc"
)

// Process is a running Alertmanager or Prometheus.
type Process struct {
	URL  string // http://127.0.0.1:port
	name string
	args []string
	bin  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Receiver is the webhook receiver of the test's Alertmanager.
type Receiver struct {
	URL         string
	BearerToken string // optional
}

// AlertmanagerOptions configure the Alertmanager.
type AlertmanagerOptions struct {
	Webhook Receiver
	// GroupInterval and RepeatInterval of the route (defaults 1s and 1h);
	// group_wait is 0s.
	GroupInterval, RepeatInterval time.Duration
}

// StartAlertmanager runs an Alertmanager whose one route sends every alert
// to a webhook, with send_resolved, in a temporary directory with
// clustering off. Its external URL is its own address.
func StartAlertmanager(t testing.TB, o AlertmanagerOptions) *Process {
	t.Helper()
	bin := lookPath(t, "prometheus-alertmanager", "alertmanager")
	dir := tempDir(t, "testam-")
	if o.GroupInterval == 0 {
		o.GroupInterval = time.Second
	}
	if o.RepeatInterval == 0 {
		o.RepeatInterval = time.Hour
	}
	hook := map[string]any{"url": o.Webhook.URL, "send_resolved": true, "max_alerts": 0}
	if o.Webhook.BearerToken != "" {
		hook["http_config"] = map[string]any{"authorization": map[string]any{"credentials": o.Webhook.BearerToken}}
	}
	cfg := map[string]any{
		"route": map[string]any{"receiver": "assertd", "group_by": []string{"alertname", "instance"}, "group_wait": "0s",
			"group_interval": model(o.GroupInterval), "repeat_interval": model(o.RepeatInterval)},
		"receivers": []any{map[string]any{"name": "assertd", "webhook_configs": []any{hook}}},
	}
	cfgFile := writeYAML(t, dir, "alertmanager.yml", cfg)
	addr := freeAddr(t)
	p := &Process{URL: "http://" + addr, name: "alertmanager", bin: bin, log: filepath.Join(dir, "alertmanager.log"),
		args: []string{"--config.file=" + cfgFile, "--storage.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
			"--web.external-url=http://" + addr, "--cluster.listen-address="}}
	p.start(t)
	return p
}

// PrometheusOptions configure the Prometheus.
type PrometheusOptions struct {
	Targets        []string // host:port of /metrics endpoints, job "test"
	Rules          string   // a rule file (groups:)
	Alertmanager   string   // http://host:port
	ScrapeInterval time.Duration
	// EvaluationInterval of the rules (default 1s).
	EvaluationInterval time.Duration
}

// StartPrometheus runs a Prometheus that scrapes the targets, evaluates
// the rules and sends their alerts to the Alertmanager.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Process {
	t.Helper()
	bin := lookPath(t, "prometheus")
	dir := tempDir(t, "testam-prom-")
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = 500 * time.Millisecond
	}
	if o.EvaluationInterval == 0 {
		o.EvaluationInterval = time.Second
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(o.Rules), 0o644); err != nil {
		t.Fatal(err)
	}
	u := strings.TrimPrefix(o.Alertmanager, "http://")
	cfg := map[string]any{
		"global": map[string]any{"scrape_interval": model(o.ScrapeInterval), "evaluation_interval": model(o.EvaluationInterval)},
		"scrape_configs": []any{map[string]any{"job_name": "test", "honor_labels": true, "scrape_interval": model(o.ScrapeInterval), "scrape_timeout": model(o.ScrapeInterval),
			"static_configs": []any{map[string]any{"targets": o.Targets}}}},
		"rule_files": []string{filepath.Join(dir, "rules.yml")},
		"alerting":   map[string]any{"alertmanagers": []any{map[string]any{"static_configs": []any{map[string]any{"targets": []string{u}}}}}},
	}
	cfgFile := writeYAML(t, dir, "prometheus.yml", cfg)
	addr := freeAddr(t)
	p := &Process{URL: "http://" + addr, name: "prometheus", bin: bin, log: filepath.Join(dir, "prometheus.log"),
		args: []string{"--config.file=" + cfgFile, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
			"--web.external-url=http://" + addr}}
	p.start(t)
	return p
}

func (p *Process) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	done := p.done
	cmd := p.cmd
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }() // Stop kills it: the exit status says nothing
	t.Cleanup(p.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("%s exited at start:\n%s", p.name, p.Log())
		case <-ctx.Done():
			t.Fatalf("%s not ready after 30s:\n%s", p.name, p.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Restart stops the process and starts it again on the same address and
// data directory.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	p.start(t)
}

// Stop terminates the process and waits for it (killing it after 10s).
func (p *Process) Stop() { testproc.Stop(p.cmd, p.done) }

// Log returns the tail of the process's output, for failure messages.
func (p *Process) Log() string { return testproc.Tail(p.log) }

func lookPath(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed: run make deps (apt-get install prometheus prometheus-alertmanager)", names[0])
	return ""
}

func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func writeYAML(t testing.TB, dir, name string, v any) string {
	t.Helper()
	text, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// model writes a duration as Prometheus reads it (1s, 500ms, 1h).
func model(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
