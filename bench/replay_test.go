//go:build bench

package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testprom"
)

// replayRows: assertd replay of 24h at 30s, 1,000 asserts over 10,000
// series, against promtool tsdb create-blocks-from rules evaluating the same
// queries as recording rules over the same window, both as processes
// against the same Debian Prometheus, alternating (ASSERTD_BENCH_ROWS=replay).
func replayRows(ctx context.Context, t *testing.T, tab *Table) {
	const asserts, series, rounds = 1000, 10_000, 2
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
	var rep, back []ProcessRun
	for range rounds {
		b, err := r.Backfill(ctx, prom.URL)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, b)
		p, err := r.Replay(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Output, `"pages"`) {
			t.Fatalf("assertd replay printed no report:\n%.2000s", p.Output)
		}
		rep = append(rep, p)
	}
	t.Logf("replay %v, backfill %v", walls(rep), walls(back))
	a, b := medianWall(rep), medianWall(back)
	ratio := a.Seconds() / b.Seconds()
	tab.Add(Row{Row: "replay", What: fmt.Sprintf("assertd replay 24h at 30s, %d asserts over %dk series vs promtool tsdb create-blocks-from rules (same queries, same Prometheus; processes, median of %d)", asserts, series/1000, rounds),
		Value: secs(a), Baseline: secs(b), Ratio: ratio, Goal: "≤ 1.0×", Met: met(ratio <= 1), Bench: "Replay/24h/assertd", Nanos: float64(a)})
	tab.Add(hidden(Row{Bench: "Replay/24h/promtool", Nanos: float64(b)}))
	ma, mb := maxRSS(rep), maxRSS(back)
	tab.Add(Row{Row: "replay", What: "  peak RSS (chunks of 2h: one per distinct query at a time)", Value: mib(ma), Baseline: mib(mb),
		Ratio: float64(ma) / float64(mb), Goal: "(report)", Met: "-", Bench: "Replay/24h/assertd-rss", Nanos: float64(ma), Unit: "B"})
}

func walls(ps []ProcessRun) []time.Duration {
	var ds []time.Duration
	for _, p := range ps {
		ds = append(ds, p.Wall.Round(time.Millisecond))
	}
	return ds
}

func medianWall(ps []ProcessRun) time.Duration { return median(walls(ps)) }

func maxRSS(ps []ProcessRun) int64 {
	var m int64
	for _, p := range ps {
		m = max(m, p.MaxRSS)
	}
	return m
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
