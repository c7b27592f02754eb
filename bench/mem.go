package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store/sqlite"
)

// Memory is what row 4 measured at one size.
type Memory struct {
	Instances int
	// HeapPer and RSSPer are the engine's live heap and the process's
	// resident memory added per instance; PromPer is the live heap a
	// Prometheus AlertingRule adds per active alert (the baseline).
	HeapPer, RSSPer, PromPer float64
	// CycleCPU is the process CPU time of one steady cycle (every assert
	// evaluated, nothing changing), the median of three.
	CycleCPU time.Duration
	Build    time.Duration // engine.New and the two cycles that store every instance
}

// Restart is what row 5 measured.
type Restart struct {
	Instances int
	Ready     time.Duration // config load + store open + engine.New
	Read      time.Duration // store.Instances alone (the baseline)
}

// tenSeries answers every query with the same ten ok series.
type tenSeries struct{}

func (tenSeries) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	v := assertd.Vector{Samples: make([]assertd.Sample, 10)}
	for i := range v.Samples {
		v.Samples[i] = assertd.Sample{Labels: assertd.Labels{"instance": fmt.Sprintf("host-%02d", i), "job": "bench"}, Value: 20}
	}
	return v, nil
}

// memWorkload is n/10 threshold asserts over tenSeries.
func memWorkload(n int) Workload {
	w := DefaultWorkload()
	w.Asserts = n / 10
	return w
}

// MeasureMemory builds an engine with n instances (n/10 asserts of ten
// series each, SQLite store under dir) and measures heap and RSS per
// instance; it leaves the store in dir for MeasureRestart.
func MeasureMemory(ctx context.Context, dir string, n int) (Memory, error) {
	w := memWorkload(n)
	set, err := w.LoadSet(dir)
	if err != nil {
		return Memory{}, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "assertd.db"))
	if err != nil {
		return Memory{}, err
	}
	defer st.Close()
	eng, err := engine.New(ctx, engine.Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: tenSeries{}},
		Concurrency: runtime.GOMAXPROCS(0)})
	if err != nil {
		return Memory{}, err
	}
	heap0, rss0 := heapNow(), rssNow()
	t0 := time.Now()
	eng.Tick(ctx, EvalTime)
	eng.Tick(ctx, EvalTime.Add(15*time.Second))
	build := time.Since(t0)
	heap1, rss1 := heapNow(), rssNow()
	got := len(eng.Instances())
	if got != n {
		return Memory{}, fmt.Errorf("memory: %d instances, want %d", got, n)
	}
	var cycles []time.Duration
	for i := range 3 {
		c := cpuTime()
		eng.Tick(ctx, EvalTime.Add(time.Duration(30+15*i)*time.Second))
		cycles = append(cycles, cpuTime()-c)
	}
	runtime.KeepAlive(eng)
	m := Memory{Instances: n, HeapPer: float64(heap1-heap0) / float64(n), RSSPer: float64(rss1-rss0) / float64(n),
		CycleCPU: median(cycles), Build: build}
	m.PromPer, err = promAlertHeap(ctx, n)
	return m, err
}

// promAlertHeap is the live heap per active alert of n/10 AlertingRules
// holding ten firing alerts each.
func promAlertHeap(ctx context.Context, n int) (float64, error) {
	vec := make(promql.Vector, 10)
	for i := range vec {
		vec[i] = promql.Sample{Metric: labels.FromStrings("__name__", "m", "instance", fmt.Sprintf("host-%02d", i), "job", "bench"), F: 80}
	}
	qf := func(context.Context, string, time.Time) (promql.Vector, error) { return vec, nil }
	logger := slog.New(slog.DiscardHandler)
	var rs []*rules.AlertingRule
	for j := range n / 10 {
		e, err := promParser.ParseExpr(fmt.Sprintf("m%d > 50", j))
		if err != nil {
			return 0, err
		}
		rs = append(rs, rules.NewAlertingRule(fmt.Sprintf("a%05d", j), e, 0, 0, labels.EmptyLabels(), labels.EmptyLabels(), labels.EmptyLabels(), "", true, logger))
	}
	heap0 := heapNow()
	for _, r := range rs {
		if _, err := r.Eval(ctx, 0, EvalTime, qf, nil, 0); err != nil {
			return 0, err
		}
	}
	heap1 := heapNow()
	runtime.KeepAlive(rs)
	return float64(heap1-heap0) / float64(n), nil
}

// MeasureRestart times what a restart does before assertd is ready with
// the n instances MeasureMemory left in dir: load the config, open the
// store, engine.New (which loads every instance).
func MeasureRestart(ctx context.Context, dir string, n int) (Restart, error) {
	t0 := time.Now()
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		return Restart{}, errs
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "assertd.db"))
	if err != nil {
		return Restart{}, err
	}
	defer st.Close()
	eng, err := engine.New(ctx, engine.Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: tenSeries{}}})
	if err != nil {
		return Restart{}, err
	}
	r := Restart{Instances: len(eng.Instances()), Ready: time.Since(t0)}
	if r.Instances != n {
		return r, fmt.Errorf("restart: %d instances loaded, want %d", r.Instances, n)
	}
	t1 := time.Now()
	if _, err := st.Instances(ctx, ""); err != nil {
		return r, err
	}
	r.Read = time.Since(t1)
	return r, nil
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rssNow is the resident set size from /proc/self/status (0 elsewhere).
func rssNow() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
