package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// ReplayRig is the replay row's data and files: a TSDB directory holding
// Series series over Window at Step (for a Prometheus to start on), an
// assertd config with Asserts asserts over them, the same queries as
// Prometheus recording rules, and a built assertd.
type ReplayRig struct {
	Dir      string
	TSDB     string // the Prometheus data directory
	Config   string // assertd.yaml (its source's URL written by SetURL)
	Rules    string // the recording rules for promtool
	Assertd  string
	From, To time.Time
	Step     time.Duration
	Asserts  int
	Series   int
}

// NewReplayRig writes the files into dir. Each assert reads the
// series of its shard (series/asserts of them) with
// max by (instance) (bench_value{shard="sN"}); one shard in ten spikes over
// the threshold for 10 minutes every 6 hours, so the replay has incidents,
// remediations and pages to decide.
func NewReplayRig(ctx context.Context, dir string, asserts, series int, window, step time.Duration) (*ReplayRig, error) {
	const block = 2 * time.Hour
	to := time.Now().Add(-time.Hour).Truncate(block)
	r := &ReplayRig{Dir: dir, TSDB: filepath.Join(dir, "prometheus"), Config: filepath.Join(dir, "assertd.yaml"),
		Rules: filepath.Join(dir, "rules.yml"), Assertd: filepath.Join(dir, "assertd"),
		From: to.Add(-window), To: to, Step: step, Asserts: asserts, Series: series}
	if err := r.writeBlocks(ctx, block); err != nil {
		return nil, err
	}
	var as, rems, rules strings.Builder
	as.WriteString("asserts:\n")
	rems.WriteString("remediations:\n")
	rules.WriteString("groups:\n  - name: replay\n    interval: " + step.String() + "\n    rules:\n")
	for i := range asserts {
		q := fmt.Sprintf(`max by (instance) (bench_value{shard="s%d"})`, i)
		fmt.Fprintf(&as, "  - name: shard-%d\n    for: 1m\n    query: {v: '%s'}\n    expect: v < 90\n", i, q)
		if i%2 == 0 {
			fmt.Fprintf(&as, "    remediate: restart-%d\n", i)
			fmt.Fprintf(&rems, `  - name: restart-%[1]d
    lock: "{{ .Labels.instance }}"
    allow: {instance: '^i[0-9]+$'}
    cooldown: 30m
    steps:
      - {name: restart, run: [systemctl, restart, "svc@{{ .Labels.instance }}"], on_failure: page}
      - {name: settle, wait: 1m}
      - {name: verify, verify: shard-%[1]d, on_failure: page}
`, i)
		}
		fmt.Fprintf(&rules, "      - record: bench:shard_%d:max\n        expr: '%s'\n", i, q)
	}
	files := map[string]string{
		"asserts.yaml":      as.String(),
		"rules.yml":         rules.String(),
		"remediations.yaml": rems.String(),
	}
	// The first n rules alone, for promtool runs on a part of them.
	const sep = "      - record: "
	pieces := strings.Split(rules.String(), sep) // the header, then one rule each
	for _, n := range []int{20, 40} {
		if n < asserts {
			files[fmt.Sprintf("rules-%d.yml", n)] = strings.Join(pieces[:n+1], sep)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", r.Assertd, "github.com/assertd/assertd/cmd/assertd")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build assertd: %w\n%s", err, out)
	}
	return r, nil
}

// SetURL writes the config with the Prometheus the rig's data is served by.
func (r *ReplayRig) SetURL(url string) error {
	cfg := fmt.Sprintf(`files: [asserts.yaml, remediations.yaml]
defaults: {every: %s, uncertain_for: 5m, escalate: oncall}
sources:
  default: prom
  prometheus: [{name: prom, url: %q, timeout: 2m}]
notifiers:
  - {name: pager, webhook: {url: "https://pager.example.com/hook"}}
escalation_policies:
  - name: oncall
    levels: [{after: 0s, notify: [pager]}]
`, r.Step, url)
	return os.WriteFile(r.Config, []byte(cfg), 0o644)
}

// writeBlocks writes the series as TSDB blocks of 2h, one block at a time.
func (r *ReplayRig) writeBlocks(ctx context.Context, block time.Duration) error {
	perShard := max(1, r.Series/r.Asserts)
	rnd := rand.New(rand.NewPCG(1, 2))
	level := make([]float64, r.Series)
	for i := range level {
		level[i] = 40 + 20*rnd.Float64()
	}
	lsets := make([]labels.Labels, r.Series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "bench_value", "job", "bench", "shard", fmt.Sprintf("s%d", i/perShard), "instance", fmt.Sprintf("i%d", i))
	}
	log := slog.New(slog.DiscardHandler)
	for start := r.From; start.Before(r.To); start = start.Add(block) {
		w, err := tsdb.NewBlockWriter(log, r.TSDB, block.Milliseconds())
		if err != nil {
			return err
		}
		for t := start; t.Before(start.Add(block)); t = t.Add(r.Step) {
			app := w.Appender(ctx)
			spike := int(t.Sub(r.From)%(6*time.Hour)) < int(10*time.Minute)
			for i, ls := range lsets {
				level[i] += rnd.NormFloat64()
				level[i] = min(max(level[i], 20), 70)
				v := level[i]
				if spike && (i/perShard)%10 == 0 {
					v = 95
				}
				if _, err := app.Append(0, ls, t.UnixMilli(), v); err != nil {
					_ = app.Rollback() // the append error is the one to report
					w.Close()
					return err
				}
			}
			if err := app.Commit(); err != nil {
				w.Close()
				return err
			}
		}
		if _, err := w.Flush(ctx); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// ProcessRun is one timed process.
type ProcessRun struct {
	Wall   time.Duration
	CPU    time.Duration // user + system: what a loaded machine disturbs less
	MaxRSS int64         // bytes
	Output string
}

// run times a process and reads its peak resident memory. The peak is the
// process's own VmHWM, read every 20 ms while it runs: the rusage of a
// child reports at least the parent's peak (Go starts children with
// vfork, so the exec replaces the parent's memory map and inherits its
// high-water mark; after the million-instance row that is 4 GiB).
func runProcess(ctx context.Context, dir, name string, args ...string) (ProcessRun, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = &out, &errb, dir
	start := time.Now()
	err := cmd.Start()
	var hwm int64
	if err == nil {
		done := make(chan struct{})
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				hwm = max(hwm, vmHWM(cmd.Process.Pid))
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		<-polled
	}
	p := ProcessRun{Wall: time.Since(start), Output: out.String(), MaxRSS: hwm}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return p, nil
}

// Replay runs assertd replay over the rig's window.
func (r *ReplayRig) Replay(ctx context.Context) (ProcessRun, error) {
	return runProcess(ctx, r.Dir, r.Assertd, "replay", "-c", r.Config, "--from", r.From.Format(time.RFC3339),
		"--to", r.To.Format(time.RFC3339), "--step", r.Step.String(), "--format", "json")
}

// Backfill runs promtool tsdb create-blocks-from rules over the same window
// against the same Prometheus, into a fresh output directory, on the first
// n rules (0: all of them).
func (r *ReplayRig) Backfill(ctx context.Context, url string, n int) (ProcessRun, error) {
	rules := r.Rules
	if n > 0 && n < r.Asserts {
		rules = filepath.Join(r.Dir, fmt.Sprintf("rules-%d.yml", n))
	}
	out, err := os.MkdirTemp(r.Dir, "backfill-")
	if err != nil {
		return ProcessRun{}, err
	}
	defer os.RemoveAll(out)
	return runProcess(ctx, r.Dir, Promtool, "tsdb", "create-blocks-from", "rules", "--quiet", "--url", url,
		"--start", r.From.Format(time.RFC3339), "--end", r.To.Format(time.RFC3339),
		"--eval-interval", r.Step.String(), "--output-dir", out, rules)
}

// vmHWM is the peak resident memory of a running process, in bytes (0 when
// it cannot be read: the process ended).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
