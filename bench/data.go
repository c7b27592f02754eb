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
	switch KindOf(j) {
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

// Fill writes the workload's samples into app: Span of data at Resolution,
// ending at EvalTime. It returns the number of series written.
func (w Workload) Fill(ctx context.Context, app storage.Appendable) (int, error) {
	type series struct {
		ls    labels.Labels
		ref   storage.SeriesRef
		value func(step int) float64
	}
	var all []*series
	bad := w.violates()
	for j := 0; j < w.Asserts; j++ {
		for i := 0; i < w.Series; i++ {
			inst := fmt.Sprintf("host-%02d", i)
			v := bad()
			switch KindOf(j) {
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
func (w Workload) AssertsYAML() string {
	var b strings.Builder
	b.WriteString("asserts:\n")
	for j := 0; j < w.Asserts; j++ {
		q, _ := w.Query(j)
		fmt.Fprintf(&b, "  - name: a%05d\n    every: 15s\n    query: {v: %q}\n    expect: %q\n", j, q, expect(KindOf(j)))
		if w.Annotate {
			b.WriteString("    annotations: {summary: \"{{ .Labels.instance }} is at {{ .Values.v }}\"}\n")
		}
	}
	return b.String()
}

// LoadSet writes the workload's config and assert file under dir and loads
// them as assertd does.
func (w Workload) LoadSet(dir string) (*config.Set, error) {
	cfg := `files: [asserts.yaml]
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
	if err := os.WriteFile(filepath.Join(dir, "asserts.yaml"), []byte(w.AssertsYAML()), 0o644); err != nil {
		return nil, err
	}
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		return nil, fmt.Errorf("loading the workload: %w", errs)
	}
	return set, nil
}

func workloadKey(w Workload) string { return fmt.Sprintf("%+v", w) }
