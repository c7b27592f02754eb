//go:build bench

package bench

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store/postgres"
	"github.com/assertd/assertd/store/sqlite"
)

// TestTable runs every measurement once and prints the table. It takes a
// few minutes and gigabytes, so it is built only with -tags bench (make
// bench); ASSERTD_BENCH_ROWS=1,2 picks rows.
func TestTable(t *testing.T) {
	rows := os.Getenv("ASSERTD_BENCH_ROWS")
	want := func(r string) bool { return rows == "" || strings.Contains(rows, r) }
	ctx := context.Background()
	tab := &Table{Machine: machine()}
	if want("1") {
		evalRows(ctx, t, tab, "viol10", "viol50", "viol50-annotated")
	}
	if want("2") {
		pingRows(ctx, t, tab)
	}
	if want("3") {
		reactRows(ctx, t, tab)
	}
	if want("4") || want("5") {
		memRows(ctx, t, tab, 10_000, 100_000)
	}
	if want("9") {
		millionRows(ctx, t, tab)
	}
	if want("6") {
		scrapeRows(ctx, t, tab)
	}
	if want("7") {
		sseRows(ctx, t, tab)
	}
	if want("8") {
		clusterRows(ctx, t, tab)
	}
	if want("realistic") {
		evalRows(ctx, t, tab, "realistic")
	}
	if want("promtool") {
		promtoolRows(ctx, t, tab)
	}
	if want("replay") { // replay-full only when asked for: it takes many minutes
		replayRows(ctx, t, tab, rows)
	}
	tab.Print(os.Stdout)
}

func machine() string {
	host, _ := os.Hostname()
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s/%s, host %s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, host)
}

// evalRounds: each round measures every variant once, interleaved, so that
// a noisy neighbour slows all of them alike; the table shows medians.
const evalRounds = 5

func evalRows(ctx context.Context, t *testing.T, tab *Table, names ...string) {
	workers := runtime.GOMAXPROCS(0)
	for _, name := range names {
		w := scenarios()[name]
		start := time.Now()
		r := rigFor(t, w)
		total, bad := r.Instances()
		t.Logf("%s: %d series, %d instances (%d not ok), built in %s", name, r.Series, total, bad, time.Since(start).Round(time.Millisecond))
		var ad, grp, ar, seq, par []time.Duration
		var adCPU, parCPU []time.Duration // process CPU of the same cycles
		var cores []float64
		var sent []int
		timed := func(into *[]time.Duration, f func() error) {
			s := time.Now()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			*into = append(*into, time.Since(s))
		}
		for range evalRounds {
			c0, w0 := cpuTime(), time.Now()
			timed(&ad, func() error { sent = append(sent, r.AssertdCycle(ctx)); return nil })
			adCPU = append(adCPU, cpuTime()-c0)
			cores = append(cores, float64(cpuTime()-c0)/float64(time.Since(w0)))
			timed(&grp, func() error { r.GroupCycle(ctx); return nil })
			timed(&ar, func() error { return r.AlertingRuleCycle(ctx) })
			timed(&seq, func() error { return r.PromQLCycle(ctx, 1) })
			c1 := cpuTime()
			timed(&par, func() error { return r.PromQLCycle(ctx, workers) })
			parCPU = append(parCPU, cpuTime()-c1)
		}
		a := median(ad)
		label := fmt.Sprintf("1 eval %s", name)
		what := fmt.Sprintf("cycle, %dk asserts, %d%% violating", w.Asserts/1000, int(w.Violating*100))
		if w.Severities > 0 {
			label = "realistic"
			what = fmt.Sprintf("cycle, %dk asserts (%d severities per metric, up guard), %d%% violating", w.Asserts/1000, w.Severities, int(w.Violating*100))
		}
		if w.Annotate {
			what += ", annotated"
		}
		tab.Add(Row{Row: label, What: what + " vs rules.Group.Eval", Value: secs(a), Baseline: secs(median(grp)),
			Ratio: a.Seconds() / median(grp).Seconds(), Goal: "≤ 1.0×", Met: met(a <= median(grp)),
			Bench: "EvalCycle/" + name + "/assertd", Nanos: float64(a)})
		tab.Add(Row{Row: label, What: "  vs AlertingRule.Eval loop", Value: secs(a), Baseline: secs(median(ar)),
			Ratio: a.Seconds() / median(ar).Seconds(), Goal: "-", Met: "-", Bench: "EvalCycle/" + name + "/alerting-rule", Nanos: float64(median(ar))})
		tab.Add(Row{Row: label, What: "  vs raw PromQL, sequential", Value: secs(a), Baseline: secs(median(seq)),
			Ratio: a.Seconds() / median(seq).Seconds(), Goal: "-", Met: "-", Bench: "EvalCycle/" + name + "/promql-seq", Nanos: float64(median(seq))})
		tab.Add(Row{Row: label, What: fmt.Sprintf("  vs raw PromQL, %d workers (assertd: %d)", workers, workers), Value: secs(a), Baseline: secs(median(par)),
			Ratio: a.Seconds() / median(par).Seconds(), Goal: "≤ 1.05×", Met: met(a.Seconds() <= 1.05*median(par).Seconds()),
			Bench: "EvalCycle/" + name + "/promql-par", Nanos: float64(median(par))})
		tab.Add(Row{Row: label, What: fmt.Sprintf("  process CPU per cycle vs raw PromQL's, %d workers", workers), Value: secs(median(adCPU)), Baseline: secs(median(parCPU)),
			Ratio: median(adCPU).Seconds() / median(parCPU).Seconds(), Goal: "(report)", Met: "-"})
		tab.Add(Row{Row: label, What: "  cores busy during assertd's cycle", Value: fmt.Sprintf("%.2f", medianF(cores)), Baseline: fmt.Sprintf("%d cores", runtime.NumCPU()),
			Ratio: medianF(cores) / float64(runtime.NumCPU()), Goal: "both used", Met: met(medianF(cores) >= 1.5)})
		tab.Add(hidden(Row{Bench: "EvalCycle/" + name + "/rules-group", Nanos: float64(median(grp))}))
		distinct, nrules := r.Queries()
		if w.Severities > 0 {
			tab.Add(Row{Row: label, What: "  queries sent per cycle (distinct queries beside; the rule manager evaluates one per rule: " + fmt.Sprint(nrules) + ")",
				Value: fmt.Sprint(slices.Max(sent)), Baseline: fmt.Sprint(distinct), Ratio: float64(slices.Max(sent)) / float64(distinct),
				Goal: "once each", Met: met(slices.Max(sent) == distinct)})
		}
	}
	rigs.Lock()
	if rigs.rig != nil {
		rigs.rig.Close()
		rigs.rig = nil
	}
	rigs.Unlock()
	runtime.GC()
}

// hidden marks a row that only feeds the benchmark lines.
func hidden(r Row) Row { r.Row = ""; return r }

// pingRounds: wrk runs against each server once per round, interleaved, so
// that a noisy neighbour slows all of them alike; the table shows medians.
const pingRounds = 3

func pingRows(ctx context.Context, t *testing.T, tab *Table) {
	hbs, paths := Heartbeats(1000)
	dir := t.TempDir()
	lite, err := sqlite.Open(ctx, filepath.Join(dir, "pings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	// Commits wait for their WAL to be written to the OS, not fsync'd: the
	// durability of SQLite's WAL with synchronous=NORMAL.
	pg := testpg.Start(t, testpg.Options{Conf: []string{"synchronous_commit = on"}})
	pgs, err := postgres.Open(ctx, fmt.Sprintf("postgres://%s@%s:%d/postgres?sslmode=disable", pg.User, pg.Host, pg.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer pgs.Close()
	addrs := map[string]string{}
	for name, h := range map[string]func() (http.Handler, error){
		"bare":     func() (http.Handler, error) { return Bare(), nil },
		"sqlite":   func() (http.Handler, error) { return PingHandler(ctx, lite, hbs) },
		"postgres": func() (http.Handler, error) { return PingHandler(ctx, pgs, hbs) },
	} {
		hh, err := h()
		if err != nil {
			t.Fatal(err)
		}
		addr, stop, err := Serve(hh)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		addrs[name] = addr
	}
	order := []string{"bare", "sqlite", "postgres"}
	// wrk, an external load generator: 2 threads, 128 keep-alive connections.
	wrk := Wrk{Threads: 2, Conns: 128, Duration: time.Second, Paths: paths, Dir: dir}
	for _, name := range order { // warm-up, not counted
		if _, err := wrk.Run(ctx, addrs[name]); err != nil {
			t.Fatal(err)
		}
	}
	wrk.Duration = 5 * time.Second
	byWrk := map[string][]LoadResult{}
	for round := range pingRounds {
		for i := range order {
			name := order[(i+round)%len(order)]
			r, err := wrk.Run(ctx, addrs[name])
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors > 0 {
				t.Fatalf("%s: %d errors under wrk", name, r.Errors)
			}
			byWrk[name] = append(byWrk[name], r)
		}
	}
	// The harness's own client, lighter than wrk, once each.
	load := Load{Conns: 128, Max: 1_000_000, Duration: 5 * time.Second, Warmup: time.Second, Paths: paths}
	own := map[string]LoadResult{}
	for _, name := range order {
		r, err := load.Run(ctx, addrs[name])
		if err != nil {
			t.Fatal(err)
		}
		own[name] = r
	}
	t.Logf("wrk: %v; harness client: %v", byWrk, own)
	bare, sq, pq := medianLoad(byWrk["bare"]), medianLoad(byWrk["sqlite"]), medianLoad(byWrk["postgres"])
	rate := func(r LoadResult) string { return fmt.Sprintf("%.0f req/s", r.PerSecond()) }
	tab.Add(Row{Row: "2 pings", What: "wrk, SQLite (WAL, synchronous=NORMAL: survives a crash of assertd, not of the OS), 128 conns, committed before 200, vs bare net/http", Value: rate(sq), Baseline: rate(bare),
		Ratio: sq.PerSecond() / bare.PerSecond(), Goal: "≥ 0.6×", Met: met(sq.PerSecond() >= 0.6*bare.PerSecond()),
		Bench: "Pings/wrk/sqlite", Nanos: 1e9 / sq.PerSecond()})
	tab.Add(Row{Row: "2 pings", What: "  wrk, SQLite p99 latency (bare p99 beside)", Value: ms(sq.P99), Baseline: ms(bare.P99),
		Ratio: float64(sq.P99) / float64(bare.P99), Goal: "≤ 10 ms", Met: met(sq.P99 <= 10*time.Millisecond)})
	tab.Add(Row{Row: "2 pings", What: "wrk, PostgreSQL (synchronous_commit=on, fsync=off: the same), 128 conns, committed before 200, vs bare", Value: rate(pq), Baseline: rate(bare),
		Ratio: pq.PerSecond() / bare.PerSecond(), Goal: "(report)", Met: "-", Bench: "Pings/wrk/postgres", Nanos: 1e9 / pq.PerSecond()})
	tab.Add(Row{Row: "2 pings", What: "  wrk, PostgreSQL p99 latency", Value: ms(pq.P99), Baseline: ms(bare.P99),
		Ratio: float64(pq.P99) / float64(bare.P99), Goal: "(report)", Met: "-"})
	tab.Add(hidden(Row{Bench: "Pings/wrk/bare", Nanos: 1e9 / bare.PerSecond()}))
	ob, os, op := own["bare"], own["sqlite"], own["postgres"]
	tab.Add(Row{Row: "2 pings", What: "  harness client, SQLite vs bare (p99 " + ms(os.P99) + ")", Value: rate(os), Baseline: rate(ob),
		Ratio: os.PerSecond() / ob.PerSecond(), Goal: "(report)", Met: "-", Bench: "Pings/sqlite", Nanos: 1e9 / os.PerSecond()})
	tab.Add(Row{Row: "2 pings", What: "  harness client, PostgreSQL vs bare (p99 " + ms(op.P99) + ")", Value: rate(op), Baseline: rate(ob),
		Ratio: op.PerSecond() / ob.PerSecond(), Goal: "(report)", Met: "-", Bench: "Pings/postgres", Nanos: 1e9 / op.PerSecond()})
	tab.Add(hidden(Row{Bench: "Pings/bare", Nanos: 1e9 / ob.PerSecond()}))
}

// medianLoad is the result with the median throughput.
func medianLoad(rs []LoadResult) LoadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b LoadResult) int { return cmp.Compare(a.PerSecond(), b.PerSecond()) })
	return s[len(s)/2]
}

func reactRows(ctx context.Context, t *testing.T, tab *Table) {
	// As assertd runs the deliverer (its default poll, 1s), then with a
	// 10ms poll to show what the poll contributes.
	r, err := MeasureReaction(ctx, t, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := MeasureReaction(ctx, t, 200, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tab.Add(Row{Row: "3 reaction", What: "confirming eval → first remediation step (real Runner, http step) reaches its target, p99, vs the eval alone", Value: ms(r.Confirm), Baseline: ms(r.EvalOnly),
		Ratio: float64(r.Confirm) / float64(r.EvalOnly), Goal: "≤ 100 ms", Met: met(r.Confirm <= 100*time.Millisecond),
		Bench: "Reaction/confirm-to-step-p99", Nanos: float64(r.Confirm)})
	tab.Add(Row{Row: "3 reaction", What: "failing verify step → page at fake PagerDuty, p99 (real deliverer, poll 1s as assertd runs it), vs one POST", Value: ms(r.Page), Baseline: ms(r.Post),
		Ratio: float64(r.Page) / float64(r.Post), Goal: "≤ 1 s", Met: met(r.Page <= time.Second),
		Bench: "Reaction/failed-to-page-p99", Nanos: float64(r.Page)})
	tab.Add(Row{Row: "3 reaction", What: fmt.Sprintf("  same, deliverer poll %s (app.Options.DeliveryPoll)", fast.Poll), Value: ms(fast.Page), Baseline: ms(fast.Post),
		Ratio: float64(fast.Page) / float64(fast.Post), Goal: "(report)", Met: "-",
		Bench: "Reaction/failed-to-page-poll10ms-p99", Nanos: float64(fast.Page)})
}

func memRows(ctx context.Context, t *testing.T, tab *Table, sizes ...int) {
	kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
	perInstance := map[int]float64{} // steady cycle CPU per instance, by size
	for _, n := range sizes {
		dir := t.TempDir()
		m, err := MeasureMemory(ctx, dir, n)
		if err != nil {
			t.Fatal(err)
		}
		perInstance[n] = float64(m.CycleCPU) / float64(n)
		t.Logf("%d instances: built in %s, steady cycle CPU %s", n, m.Build.Round(time.Millisecond), m.CycleCPU.Round(time.Millisecond))
		size := fmt.Sprintf("%dk", n/1000)
		row, heapGoal, heapMax, restartMax := "4 memory", "≤ 2 KiB", 2048.0, 3*time.Second
		if n >= 1_000_000 {
			size, row, heapGoal, heapMax, restartMax = fmt.Sprintf("%dM", n/1_000_000), "9 million", "≤ 1.2 KiB", 1.2*1024, 5*time.Second
		}
		tab.Add(Row{Row: row, What: fmt.Sprintf("heap per instance at %s vs per Prometheus alert", size), Value: kib(m.HeapPer), Baseline: kib(m.PromPer),
			Ratio: m.HeapPer / m.PromPer, Goal: heapGoal, Met: met(m.HeapPer <= heapMax), Bench: fmt.Sprintf("Memory/heap-per-instance-%s", size), Nanos: m.HeapPer, Unit: "B/instance"})
		tab.Add(Row{Row: row, What: fmt.Sprintf("  RSS per instance at %s", size), Value: kib(m.RSSPer), Baseline: kib(m.PromPer),
			Ratio: m.RSSPer / m.PromPer, Goal: "≤ 2 KiB", Met: met(m.RSSPer <= 2048), Bench: fmt.Sprintf("Memory/rss-per-instance-%s", size), Nanos: m.RSSPer, Unit: "B/instance"})
		if base, ok := perInstance[100_000]; ok && n > 100_000 {
			tab.Add(Row{Row: row, What: fmt.Sprintf("  steady cycle CPU per instance at %s vs at 100k", size), Value: fmt.Sprintf("%.2f µs", perInstance[n]/1e3),
				Baseline: fmt.Sprintf("%.2f µs", base/1e3), Ratio: perInstance[n] / base, Goal: "≤ 1.0×", Met: met(perInstance[n] <= base),
				Bench: fmt.Sprintf("Memory/cycle-cpu-per-instance-%s", size), Nanos: perInstance[n]})
		} else {
			tab.Add(hidden(Row{Bench: fmt.Sprintf("Memory/cycle-cpu-per-instance-%s", size), Nanos: perInstance[n]}))
		}
		if n >= 100_000 {
			r, err := MeasureRestart(ctx, dir, n)
			if err != nil {
				t.Fatal(err)
			}
			rrow := "5 restart"
			if n >= 1_000_000 {
				rrow = row
			}
			tab.Add(Row{Row: rrow, What: fmt.Sprintf("config + store + engine.New with %s instances vs reading them", size), Value: secs(r.Ready), Baseline: secs(r.Read),
				Ratio: r.Ready.Seconds() / r.Read.Seconds(), Goal: "≤ " + restartMax.String(), Met: met(r.Ready <= restartMax),
				Bench: "Restart/ready-" + size, Nanos: float64(r.Ready)})
		}
		runtime.GC()
	}
}

// millionRows: row 9, a million instances as a restart finds them, and the
// same at 100k for the cycle's CPU per instance.
func millionRows(ctx context.Context, t *testing.T, tab *Table) {
	var base Million
	for _, n := range []int{100_000, 1_000_000} {
		m, err := MeasureMillion(ctx, t.TempDir(), n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d instances: seeded in %s, ready in %s (CPU %s; reading them %s), heap %.0f B and RSS %.0f B per instance, steady cycle CPU %s", n, m.Seed.Round(time.Millisecond),
			m.Ready.Round(time.Millisecond), m.ReadyCPU.Round(time.Millisecond), m.Read.Round(time.Millisecond), m.HeapPer, m.RSSPer, m.CycleCPU.Round(time.Millisecond))
		if n < 1_000_000 {
			base = m
			continue
		}
		kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
		per := func(m Million) float64 { return float64(m.CycleCPU) / float64(m.Memory.Instances) }
		tab.Add(Row{Row: "9 million", What: "heap per instance at 1M (100k asserts × 10 series, stub source) vs per Prometheus alert", Value: kib(m.HeapPer), Baseline: kib(m.PromPer),
			Ratio: m.HeapPer / m.PromPer, Goal: "≤ 1.2 KiB", Met: met(m.HeapPer <= 1.2*1024), Bench: "Million/heap-per-instance", Nanos: m.HeapPer, Unit: "B/instance"})
		tab.Add(Row{Row: "9 million", What: "  RSS per instance at 1M", Value: kib(m.RSSPer), Baseline: kib(m.PromPer),
			Ratio: m.RSSPer / m.PromPer, Goal: "≤ 2 KiB", Met: met(m.RSSPer <= 2048), Bench: "Million/rss-per-instance", Nanos: m.RSSPer, Unit: "B/instance"})
		tab.Add(Row{Row: "9 million", What: "  restart to ready (sqlite.Open + app.New: config, instances) vs reading the instances", Value: secs(m.Ready), Baseline: secs(m.Read),
			Ratio: m.Ready.Seconds() / m.Read.Seconds(), Goal: "≤ 5 s", Met: met(m.Ready <= 5*time.Second), Bench: "Million/ready", Nanos: float64(m.Ready)})
		tab.Add(Row{Row: "9 million", What: "  steady cycle CPU per instance at 1M vs at 100k (same workload)", Value: fmt.Sprintf("%.2f µs", per(m)/1e3),
			Baseline: fmt.Sprintf("%.2f µs", per(base)/1e3), Ratio: per(m) / per(base), Goal: "≤ 1.0×", Met: met(per(m) <= per(base)),
			Bench: "Million/cycle-cpu-per-instance", Nanos: per(m)})
		tab.Add(hidden(Row{Bench: "Million/cycle-cpu-per-instance-100k", Nanos: per(base)}))
	}
}

func scrapeRows(ctx context.Context, t *testing.T, tab *Table) {
	full, err := NewScrapeRig(ctx, BigHistory)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	empty, err := NewScrapeRig(ctx, History{})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	c, err := MeasureScrape(full, empty, 101)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scrape: history %+v written in %s; median scrape %s with it, %s empty", c.History, c.Fill.Round(time.Millisecond), c.Full, c.Empty)
	ratio := c.Full.Seconds() / c.Empty.Seconds()
	tab.Add(Row{Row: "6 scrape", What: "GET /metrics, store with 1M decisions, 100k runs, 100k messages, vs an empty store (median of 101)", Value: ms(c.Full), Baseline: ms(c.Empty),
		Ratio: ratio, Goal: "≤ 1.2×, ≤ 10 ms", Met: met(ratio <= 1.2 && c.Full <= 10*time.Millisecond),
		Bench: "Scrape/history", Nanos: float64(c.Full)})
	tab.Add(hidden(Row{Bench: "Scrape/empty", Nanos: float64(c.Empty)}))
}

func sseRows(ctx context.Context, t *testing.T, tab *Table) {
	r, err := NewSSERig(ctx, 100_000, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := MeasureSSE(ctx, r, 50, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events: %s; cycles without %v, with %v", s, s.NoneAll, s.WithAll)
	ratio := s.With.Seconds() / s.None.Seconds()
	tab.Add(Row{Row: "7 events", What: fmt.Sprintf("engine cycle, 100k instances (10 change per cycle), %d event streams open vs none", s.Clients),
		Value: secs(s.With), Baseline: secs(s.None), Ratio: ratio, Goal: "≤ 1.05×", Met: met(ratio <= 1.05),
		Bench: "SSE/100k/clients=50", Nanos: float64(s.With)})
	cpu := s.WithCPU.Seconds() / s.NoneCPU.Seconds()
	tab.Add(Row{Row: "7 events", What: "  process CPU per cycle (the streams' work included; other processes' not)",
		Value: secs(s.WithCPU), Baseline: secs(s.NoneCPU), Ratio: cpu, Goal: "≤ 1.05×", Met: met(cpu <= 1.05),
		Bench: "SSE/100k/clients=50-cpu", Nanos: float64(s.WithCPU)})
	tab.Add(hidden(Row{Bench: "SSE/100k/clients=0", Nanos: float64(s.None)}))
	tab.Add(hidden(Row{Bench: "SSE/100k/clients=0-cpu", Nanos: float64(s.NoneCPU)}))
}

// promtoolRows: assertd test and assertd check as processes against
// Debian's promtool on the same files (ASSERTD_BENCH_ROWS=promtool).
func promtoolRows(ctx context.Context, t *testing.T, tab *Table) {
	r, err := NewPromtoolRig(ctx, t.TempDir(), 1441, 1000)
	if err != nil {
		t.Fatal(err)
	}
	p, err := MeasurePromtool(ctx, r, 5)
	if err != nil {
		t.Fatal(err)
	}
	ratio := p.AssertdTest.Seconds() / p.PromtoolTest.Seconds()
	tab.Add(Row{Row: "promtool test", What: fmt.Sprintf("assertd test vs promtool test rules: unittest.yml's groups, 3 series, %d evaluations (processes, median of 5)", r.Evals),
		Value: secs(p.AssertdTest), Baseline: secs(p.PromtoolTest), Ratio: ratio, Goal: "≤ 1.0×", Met: met(ratio <= 1),
		Bench: "Promtool/test/assertd", Nanos: float64(p.AssertdTest)})
	tab.Add(hidden(Row{Bench: "Promtool/test/promtool", Nanos: float64(p.PromtoolTest)}))
	cpu := p.AssertdTestCPU.Seconds() / p.PromtoolTestCPU.Seconds()
	tab.Add(Row{Row: "promtool test", What: "  process CPU (user+system)", Value: secs(p.AssertdTestCPU), Baseline: secs(p.PromtoolTestCPU),
		Ratio: cpu, Goal: "≤ 1.0×", Met: met(cpu <= 1), Bench: "Promtool/test/assertd-cpu", Nanos: float64(p.AssertdTestCPU)})
	tab.Add(hidden(Row{Bench: "Promtool/test/promtool-cpu", Nanos: float64(p.PromtoolTestCPU)}))
	ratio = p.AssertdCheck.Seconds() / p.PromtoolCheck.Seconds()
	what := fmt.Sprintf("assertd check vs promtool check rules: %d alerting rules in %d groups", r.NRules, r.NRules/10)
	row := Row{Row: "promtool check", What: what, Value: secs(p.AssertdCheck), Baseline: secs(p.PromtoolCheck), Ratio: ratio,
		Goal: "≤ 1.0×", Met: met(ratio <= 1 && p.CheckErr == ""), Bench: "Promtool/check/assertd", Nanos: float64(p.AssertdCheck)}
	if p.CheckErr != "" {
		t.Logf("assertd check refused the rule file: %s", p.CheckErr)
		row.What += " (assertd check refused the file)"
	}
	tab.Add(row)
	tab.Add(hidden(Row{Bench: "Promtool/check/promtool", Nanos: float64(p.PromtoolCheck)}))
	cpu = p.AssertdCheckCPU.Seconds() / p.PromtoolCheckCPU.Seconds()
	tab.Add(Row{Row: "promtool check", What: "  process CPU (user+system)", Value: secs(p.AssertdCheckCPU), Baseline: secs(p.PromtoolCheckCPU),
		Ratio: cpu, Goal: "≤ 1.0×", Met: met(cpu <= 1 && p.CheckErr == ""), Bench: "Promtool/check/assertd-cpu", Nanos: float64(p.AssertdCheckCPU)})
	tab.Add(hidden(Row{Bench: "Promtool/check/promtool-cpu", Nanos: float64(p.PromtoolCheckCPU)}))
}
