//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/replay"
)

// replayRows: assertd replay of 24h at 30s, 1,000 asserts over 10,000
// series, against promtool tsdb create-blocks-from rules evaluating the same
// queries as recording rules over the same window, both as processes
// against the same Debian Prometheus (ASSERTD_BENCH_ROWS=replay).
//
// promtool backfills rule by rule (for each rule, a range query and a block
// written per 2h of the window), so its time is linear in the rules: it
// runs on the first 20 and 40 rules and the line through them gives its
// time for all 1,000, which would take it far past make bench's budget.
// ASSERTD_BENCH_REPLAY_FULL=1 runs it on all of them instead.
func replayRows(ctx context.Context, t *testing.T, tab *Table) {
	const asserts, series = 1000, 10_000
	start := time.Now()
	r, err := NewReplayRig(ctx, t.TempDir(), asserts, series, 24*time.Hour, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prom := testprom.Start(t, testprom.Options{StoragePath: r.TSDB})
	if err := r.SetURL(prom.URL); err != nil {
		t.Fatal(err)
	}
	t.Logf("replay rig: %d series over %s – %s written and served in %s", series, r.From, r.To, time.Since(start).Round(time.Millisecond))
	var base, baseCPU time.Duration
	var rss int64
	how := "measured"
	if os.Getenv("ASSERTD_BENCH_REPLAY_FULL") != "" {
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
		t.Logf("promtool backfill: %s to %s for %d", how, base.Round(time.Millisecond), asserts)
	}
	p, err := r.Replay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Output, `"pages"`) {
		t.Fatalf("assertd replay printed no report:\n%.2000s", p.Output)
	}
	t.Logf("assertd replay: %s (CPU %s), peak RSS %s", p.Wall.Round(time.Millisecond), p.CPU.Round(time.Millisecond), mib(p.MaxRSS))
	ratio := p.Wall.Seconds() / base.Seconds()
	tab.Add(Row{Row: "replay", What: fmt.Sprintf("assertd replay 24h at 30s, %d asserts over %dk series vs promtool tsdb create-blocks-from rules on the same queries against the same Prometheus (processes; promtool %s)", asserts, series/1000, how),
		Value: secs(p.Wall), Baseline: secs(base), Ratio: ratio, Goal: "≤ 1.0×", Met: met(ratio <= 1), Bench: "Replay/24h/assertd", Nanos: float64(p.Wall)})
	tab.Add(hidden(Row{Bench: "Replay/24h/promtool", Nanos: float64(base)}))
	cpu := p.CPU.Seconds() / baseCPU.Seconds()
	tab.Add(Row{Row: "replay", What: "  CPU time (user+system) of the processes", Value: secs(p.CPU), Baseline: secs(baseCPU),
		Ratio: cpu, Goal: "≤ 1.0×", Met: met(cpu <= 1), Bench: "Replay/24h/assertd-cpu", Nanos: float64(p.CPU)})
	tab.Add(hidden(Row{Bench: "Replay/24h/promtool-cpu", Nanos: float64(baseCPU)}))
	tab.Add(Row{Row: "replay", What: "  peak RSS (range queries in chunks of 2h: one chunk per distinct query held)", Value: mib(p.MaxRSS), Baseline: mib(rss),
		Ratio: float64(p.MaxRSS) / float64(rss), Goal: "(report)", Met: "-", Bench: "Replay/24h/assertd-rss", Nanos: float64(p.MaxRSS), Unit: "B"})
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
