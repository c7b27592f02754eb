package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// buildBinary builds the real assertd binary for process-level tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "assertd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd *exec.Cmd
	log *os.File
}

func startBinary(t *testing.T, bin, cfg string) *proc {
	t.Helper()
	log, err := os.CreateTemp(t.TempDir(), "assertd-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", cfg, "--listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: log}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

// The crash test: kill -9 while an instance is pending; after a restart it
// reaches violated at the original deadline, not a fresh one. A run left
// running by a crash is interrupted and its instance is paged exactly once,
// however many times assertd restarts.
func TestKill9KeepsClocksAndEscalatesInterruptedRunsOnce(t *testing.T) {
	bin := buildBinary(t)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "latency_ms"})
	reg.MustRegister(g)
	g.Set(100)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "assertd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`files: [rules.yaml]
data_dir: data
sources:
  embedded:
    scrape_interval: 250ms
    targets: [{url: %q, labels: {job: api}}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
`, target.URL+"/metrics")), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`asserts:
  - name: latency
    every: 500ms
    for: 6s
    query: {ms: 'max by (job) (latency_ms)'}
    expect: ms < 50
  - name: restarted
    every: 500ms
    query: {ms: 'max by (job) (latency_ms)'}
    expect: ms > 0
`), 0o644)

	// A crash in an earlier life left a run of "restarted" running.
	ctx := context.Background()
	dbPath := filepath.Join(dir, "data", sqlite.File)
	os.MkdirAll(filepath.Dir(dbPath), 0o755)
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ls := assertd.Labels{"job": "api"}
	past := time.Now().Add(-time.Minute)
	st.PutInstance(ctx, assertd.Instance{Assert: "restarted", Fingerprint: ls.Fingerprint(), Labels: ls, State: assertd.Remediating, Since: past})
	if _, err := st.CreateRun(ctx, assertd.Run{ID: "run-before-crash", Remediation: "restart", Assert: "restarted",
		Fingerprint: ls.Fingerprint(), Labels: ls, Status: assertd.RunRunning, Started: past}); err != nil {
		t.Fatal(err)
	}

	transitionAt := func(assert string, from, to assertd.State) (time.Time, bool) {
		trs, err := st.Transitions(ctx, store.TransitionFilter{Assert: assert})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			if tr.From == from && tr.To == to {
				return tr.At, true
			}
		}
		return time.Time{}, false
	}

	p1 := startBinary(t, bin, cfg)
	var pendingAt time.Time
	// The real binary records the transition: a bounded poll of its store.
	testprom.Eventually(t, 30*time.Second, func() error {
		at, ok := transitionAt("latency", assertd.OK, assertd.Pending)
		if !ok {
			return fmt.Errorf("not pending yet\n%s", p1.output())
		}
		pendingAt = at
		return nil
	})
	// The scenario: a second of real time pending in the first life.
	time.Sleep(time.Second)
	p1.kill() // kill -9
	if _, ok := transitionAt("latency", assertd.Pending, assertd.Violated); ok {
		t.Fatal("violated before the crash; the test proves nothing")
	}
	// The scenario: three seconds of real time down.
	time.Sleep(3 * time.Second)

	p2 := startBinary(t, bin, cfg)
	var violatedAt time.Time
	// The real binary records the transition: a bounded poll of its store.
	testprom.Eventually(t, 30*time.Second, func() error {
		at, ok := transitionAt("latency", assertd.Pending, assertd.Violated)
		if !ok {
			return fmt.Errorf("not violated yet\n%s", p2.output())
		}
		violatedAt = at
		return nil
	})
	if d := violatedAt.Sub(pendingAt); d < 6*time.Second || d > 8*time.Second {
		t.Fatalf("violated %s after pending; want the original 6s deadline (a fresh clock would give 10s or more)", d)
	}

	// The interrupted run: paged once, and not again after more crashes.
	p2.kill()
	p3 := startBinary(t, bin, cfg)
	// The real binary records the transition: a bounded poll of its store.
	testprom.Eventually(t, 20*time.Second, func() error {
		if _, ok := transitionAt("restarted", assertd.Escalated, assertd.OK); !ok {
			return fmt.Errorf("the third life has not evaluated yet\n%s", p3.output())
		}
		return nil
	})
	p3.kill()
	r, err := st.Run(ctx, "run-before-crash")
	if err != nil || r.Status != assertd.RunInterrupted {
		t.Fatalf("run: %+v %v", r, err)
	}
	ds, _ := st.Decisions(ctx, store.DecisionFilter{Assert: "restarted", Action: assertd.ActEscalate})
	msgs, _ := st.Messages(ctx, store.MessageFilter{DedupKey: "restarted/" + ls.Fingerprint()})
	triggers := 0
	for _, m := range msgs {
		if m.Kind == "trigger" {
			triggers++
		}
	}
	if len(ds) != 1 || triggers != 1 || !strings.Contains(ds[0].Reason, "interrupted") {
		t.Fatalf("want exactly one escalation for the interrupted run: %d decisions, %d pages: %+v", len(ds), triggers, ds)
	}
}
