package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd/config"
)

// Workload describes the synthetic evaluation workload of row 1.
type Workload struct {
	Asserts    int     // 10,000 in the table
	Series     int     // series (instances) per assert: 10
	Violating  float64 // share of series that violate: 0.1 or 0.5
	Annotate   bool    // one templated annotation per assert
	Seed       uint64  // the data generator's seed
	Resolution time.Duration
	Span       time.Duration
	// Severities > 0 makes the realistic workload (realistic.go): each
	// metric has this many asserts, differing in their threshold, all
	// guarded by up.
	Severities int
	// Thresholds makes every assert a threshold (m<j> > 50): with the stub
	// source of the memory rows every instance is then ok.
	Thresholds bool
}

// kind is the kind of assert j.
func (w Workload) kind(j int) Kind {
	if w.Thresholds {
		return Threshold
	}
	return KindOf(j)
}

// DefaultWorkload is the workload with 10 % of the series violating.
func DefaultWorkload() Workload {
	return Workload{Asserts: 10_000, Series: 10, Violating: 0.1, Seed: 9, Resolution: 15 * time.Second, Span: 10 * time.Minute}
}

// EvalTime is when every cycle is evaluated: the end of the synthetic data.
var EvalTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Kind is the kind of an assert of the workload.
type Kind int

// The three kinds of assert: 70 %, 20 % and 10 % of them.
const (
	Threshold Kind = iota // m<j> > 50
	Rate                  // rate(c<j>[5m]) > 1
	Quantile              // histogram_quantile(0.99, …) > 0.05
)

// KindOf spreads the kinds evenly: of each ten asserts, seven thresholds,
// two rates and one quantile.
func KindOf(j int) Kind {
	switch j % 10 {
	case 7, 8:
		return Rate
	case 9:
		return Quantile
	}
	return Threshold
}

// buckets are the upper bounds of every classic histogram (8 buckets).
var buckets = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "+Inf"}

// Per-step increments of the cumulative bucket counts: a healthy instance
// observes everything under 10 ms (p99 ≈ 9.9 ms), a violating one mostly
// between 50 and 100 ms (p99 ≈ 99 ms).
var (
	okBuckets  = []float64{50, 100, 100, 100, 100, 100, 100, 100}
	badBuckets = []float64{0, 10, 20, 30, 100, 100, 100, 100}
)

// Query is the PromQL an assert of kind k over metric j binds to its value,
// and Alert is the condition as a Prometheus alerting rule writes it.
func (w Workload) Query(j int) (query, alert string) {
	if w.Severities > 0 {
		return w.realisticQuery(j)
	}
	switch w.kind(j) {
	case Rate:
		q := fmt.Sprintf("rate(c%d[5m])", j)
		return q, q + " > 1"
	case Quantile:
		q := fmt.Sprintf("histogram_quantile(0.99, sum by (le, instance) (rate(lat%d_bucket[5m])))", j)
		return q, q + " > 0.05"
	}
	q := fmt.Sprintf("m%d", j)
	return q, q + " > 50"
}

// expect is the assert's expect: the negation of the alert condition.
func expect(k Kind) string {
	switch k {
	case Rate:
		return "v <= 1"
	case Quantile:
		return "v <= 0.05"
	}
	return "v <= 50"
}

// violates decides, deterministically from the seed, which series violate.
func (w Workload) violates() func() bool {
	r := rand.New(rand.NewPCG(w.Seed, uint64(w.Violating*1000)))
	return func() bool { return r.Float64() < w.Violating }
}

// fillSeries is one series Fill writes.
type fillSeries struct {
	ls    labels.Labels
	ref   storage.SeriesRef
	value func(step int) float64
}

// Fill writes the workload's samples into app: Span of data at Resolution,
// ending at EvalTime. It returns the number of series written.
func (w Workload) Fill(ctx context.Context, app storage.Appendable) (int, error) {
	type series = fillSeries
	var all []*series
	bad := w.violates()
	if w.Severities > 0 {
		r := rand.New(rand.NewPCG(w.Seed, 7))
		for _, s := range w.realisticSeries(bad, func() int { return r.IntN(len(severityThresholds)) }) {
			all = append(all, &s)
		}
	}
	for j := 0; j < w.Asserts && w.Severities == 0; j++ {
		for i := 0; i < w.Series; i++ {
			inst := fmt.Sprintf("host-%02d", i)
			v := bad()
			switch w.kind(j) {
			case Threshold:
				x := 20.0
				if v {
					x = 80
				}
				all = append(all, &series{ls: labels.FromStrings("__name__", fmt.Sprintf("m%d", j), "instance", inst, "job", "bench"),
					value: func(int) float64 { return x }})
			case Rate:
				inc := 7.5 // 0.5/s
				if v {
					inc = 30 // 2/s
				}
				all = append(all, &series{ls: labels.FromStrings("__name__", fmt.Sprintf("c%d", j), "instance", inst, "job", "bench"),
					value: func(step int) float64 { return inc * float64(step) }})
			case Quantile:
				inc := okBuckets
				if v {
					inc = badBuckets
				}
				for b, le := range buckets {
					d := inc[b]
					all = append(all, &series{ls: labels.FromStrings("__name__", fmt.Sprintf("lat%d_bucket", j), "instance", inst, "job", "bench", "le", le),
						value: func(step int) float64 { return d * float64(step) }})
				}
			}
		}
	}
	steps := int(w.Span/w.Resolution) + 1
	start := EvalTime.Add(-w.Span)
	for s := 0; s < steps; s++ {
		ts := start.Add(time.Duration(s) * w.Resolution).UnixMilli()
		a := app.Appender(ctx)
		for _, se := range all {
			ref, err := a.Append(se.ref, se.ls, ts, se.value(s))
			if err != nil {
				_ = a.Rollback()
				return 0, fmt.Errorf("appending %s: %w", se.ls, err)
			}
			se.ref = ref
		}
		if err := a.Commit(); err != nil {
			return 0, fmt.Errorf("committing step %d: %w", s, err)
		}
	}
	return len(all), nil
}

// AssertsYAML is the workload as an assert file.
func (w Workload) AssertsYAML() string { return w.assertsYAML(0, w.Asserts) }

// assertsYAML is asserts from … to-1 as an assert file.
func (w Workload) assertsYAML(from, to int) string {
	var b strings.Builder
	b.WriteString("asserts:\n")
	for j := from; j < to; j++ {
		q, _ := w.Query(j)
		exp := expect(w.kind(j))
		if w.Severities > 0 {
			exp = w.realisticExpect(j)
		}
		fmt.Fprintf(&b, "  - name: a%05d\n    every: 15s\n    query: {v: %q}\n    expect: %q\n", j, q, exp)
		if w.Annotate {
			b.WriteString("    annotations: {summary: \"{{ .Labels.instance }} is at {{ .Values.v }}\"}\n")
		}
	}
	return b.String()
}

// assertsPerFile bounds an assert file (assertd refuses files over 8 MiB).
const assertsPerFile = 10_000

// LoadSet writes the workload's config and assert files (asserts-NNN.yaml,
// 10,000 asserts each) under dir and loads them as assertd does.
func (w Workload) LoadSet(dir string) (*config.Set, error) { return w.writeSet(dir, false) }

// writeSet writes the files of LoadSet, and loads them unless noLoad.
func (w Workload) writeSet(dir string, noLoad bool) (*config.Set, error) {
	cfg := `files: [asserts-*.yaml]
data_dir: data
notifiers:
  - {name: pager, console: {}}
escalation_policies:
  - name: ops
    levels: [{after: 0s, notify: [pager]}]
defaults: {escalate: ops}
`
	if err := os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	for from := 0; from < w.Asserts; from += assertsPerFile {
		name := filepath.Join(dir, fmt.Sprintf("asserts-%03d.yaml", from/assertsPerFile))
		if err := os.WriteFile(name, []byte(w.assertsYAML(from, min(from+assertsPerFile, w.Asserts))), 0o644); err != nil {
			return nil, err
		}
	}
	if noLoad {
		return nil, nil
	}
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		return nil, fmt.Errorf("loading the workload: %w", errs)
	}
	return set, nil
}

func workloadKey(w Workload) string { return fmt.Sprintf("%+v", w) }
