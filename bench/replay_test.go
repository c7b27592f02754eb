//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/replay"
)

// replayAsserts is the default replay row's size: N asserts over 10·N
// series, so that promtool, which backfills rule by rule (for each rule a
// range query and a block written per 2h of the window: about 1 s of
// wall time per rule on a quiet 2-core VM, 3 s at load 12), runs on all of
// them within make bench's budget (the row takes about 2 minutes with its
// data and Prometheus). ASSERTD_BENCH_REPLAY_ASSERTS changes it.
const replayAsserts = 25

// replayRows: assertd replay of 24h at 30s against promtool tsdb
// create-blocks-from rules evaluating the same queries as recording rules
// over the same window, both as processes against the same Debian
// Prometheus. The default row (BENCH_ROWS=replay, and in make bench)
// measures both on replayAsserts asserts over 10× as many series; the
// opt-in row replay-full (BENCH_ROWS=replay-full) runs assertd on 1,000
// asserts over 10,000 series, and promtool on the first 20 and 40 rules,
// the line through them giving its time for all 1,000 (all of them would
// take it about 48 minutes); ASSERTD_BENCH_REPLAY_FULL=1 runs promtool on
// all of them instead.
func replayRows(ctx context.Context, t *testing.T, tab *Table, rows string) {
	picked := strings.Split(rows, ",")
	if rows == "" || slices.Contains(picked, "replay") {
		n := replayAsserts
		if s := os.Getenv("ASSERTD_BENCH_REPLAY_ASSERTS"); s != "" {
			if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
				t.Fatalf("ASSERTD_BENCH_REPLAY_ASSERTS=%s: write a number of asserts", s)
			}
		}
		replayRow(ctx, t, tab, "replay", n, false)
	}
	if slices.Contains(picked, "replay-full") {
		replayRow(ctx, t, tab, "replay-full", 1000, os.Getenv("ASSERTD_BENCH_REPLAY_FULL") == "")
	}
}

func replayRow(ctx context.Context, t *testing.T, tab *Table, row string, asserts int, extrapolate bool) {
	series := 10 * asserts
	start := time.Now()
	r, err := NewReplayRig(ctx, t.TempDir(), asserts, series, 24*time.Hour, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prom := testprom.Start(t, testprom.Options{StoragePath: r.TSDB})
	if err := r.SetURL(prom.URL); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s rig: %d series over %s – %s written and served in %s (load %s)", row, series, r.From, r.To, time.Since(start).Round(time.Millisecond), replayLoad())
	var base, baseCPU time.Duration
	var rss int64
	how := "on all of them"
	if !extrapolate {
		b, err := r.Backfill(ctx, prom.URL, 0)
		if err != nil {
			t.Fatal(err)
		}
		base, baseCPU, rss = b.Wall, b.CPU, b.MaxRSS
	} else {
		b20, err := r.Backfill(ctx, prom.URL, 20)
		if err != nil {
			t.Fatal(err)
		}
		b40, err := r.Backfill(ctx, prom.URL, 40)
		if err != nil {
			t.Fatal(err)
		}
		line := func(a, b time.Duration) time.Duration { return a + (b-a)/20*time.Duration(asserts-20) }
		base, baseCPU, rss = line(b20.Wall, b40.Wall), line(b20.CPU, b40.CPU), max(b20.MaxRSS, b40.MaxRSS)
		how = fmt.Sprintf("20 rules %s, 40 rules %s: extrapolated", b20.Wall.Round(time.Millisecond), b40.Wall.Round(time.Millisecond))
	}
	t.Logf("promtool backfill of %d rules: %s (CPU %s), peak RSS %s; %s (load %s)", asserts, base.Round(time.Millisecond), baseCPU.Round(time.Millisecond), mib(rss), how, replayLoad())
	p, err := r.Replay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Output, `"pages"`) {
		t.Fatalf("assertd replay printed no report:\n%.2000s", p.Output)
	}
	t.Logf("assertd replay of %d asserts: %s (CPU %s), peak RSS %s (load %s); the row took %s", asserts, p.Wall.Round(time.Millisecond), p.CPU.Round(time.Millisecond), mib(p.MaxRSS), replayLoad(), time.Since(start).Round(time.Second))
	ratio := p.Wall.Seconds() / base.Seconds()
	name := fmt.Sprintf("Replay/24h-%d", asserts)
	tab.Add(Row{Row: row, What: fmt.Sprintf("assertd replay 24h at 30s, %d asserts over %s series vs promtool tsdb create-blocks-from rules, same queries, same Prometheus (processes; promtool %s)", asserts, replaySeries(series), how),
		Value: secs(p.Wall), Baseline: secs(base), Ratio: ratio, Goal: "≤ 1.0×", Met: met(ratio <= 1), Bench: name + "/assertd", Nanos: float64(p.Wall)})
	tab.Add(hidden(Row{Bench: name + "/promtool", Nanos: float64(base)}))
	cpu := p.CPU.Seconds() / baseCPU.Seconds()
	tab.Add(Row{Row: row, What: "  CPU time (user+system) of the processes", Value: secs(p.CPU), Baseline: secs(baseCPU),
		Ratio: cpu, Goal: "≤ 1.0×", Met: met(cpu <= 1), Bench: name + "/assertd-cpu", Nanos: float64(p.CPU)})
	tab.Add(hidden(Row{Bench: name + "/promtool-cpu", Nanos: float64(baseCPU)}))
	tab.Add(Row{Row: row, What: "  peak RSS (range queries in chunks of 2h: one chunk per distinct query held)", Value: mib(p.MaxRSS), Baseline: mib(rss),
		Ratio: float64(p.MaxRSS) / float64(rss), Goal: "(report)", Met: "-", Bench: name + "/assertd-rss", Nanos: float64(p.MaxRSS), Unit: "B"})
}

// replaySeries writes a number of series: 250, 10k.
func replaySeries(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// replayLoad is the machine's load over the last minute.
func replayLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// TestProfileReplay writes a CPU profile of replay.Run (in process, the
// rig's data written and served first) to cpu-replay.out:
// ASSERTD_BENCH_REPLAY_ASSERTS=100 go test -tags bench ./bench -run TestProfileReplay -v,
// then go tool pprof -top bench.test cpu-replay.out.
func TestProfileReplay(t *testing.T) {
	ctx := context.Background()
	n := 100
	if s := os.Getenv("ASSERTD_BENCH_REPLAY_ASSERTS"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReplayRig(ctx, t.TempDir(), n, 10*n, 24*time.Hour, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prom := testprom.Start(t, testprom.Options{StoragePath: r.TSDB})
	if err := r.SetURL(prom.URL); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create("cpu-replay.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	s, c := time.Now(), cpuTime()
	rep, err := replay.Run(ctx, replay.Options{ConfigPath: r.Config, From: r.From, To: r.To, Step: r.Step})
	pprof.StopCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replay of %d asserts: %s, CPU %s (process, with the Prometheus it queries outside), %d evaluations, %d range queries, %d pages",
		n, time.Since(s).Round(time.Millisecond), (cpuTime() - c).Round(time.Millisecond), rep.Evaluations, rep.RangeQueries, rep.Total.PagesSent)
}
