package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
)

func series(prefix string, n int, v float64, into map[string]float64) map[string]float64 {
	if into == nil {
		into = map[string]float64{}
	}
	for i := range n {
		into[fmt.Sprintf("%s%03d", prefix, i)] = v
	}
	return into
}

// Past max_instances no instance is created, the assert's instances are
// uncertain with the reason, nothing is remediated, and one page goes out
// for the flood (not one per instance, not one per evaluation); within the
// cap again, the assert is evaluated as before.
func TestInstanceCapUncertainPagedOnce(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - {name: latency, every: 10s, uncertain_for: 30s, max_instances: 5, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}
remediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]
`)
	st, src, reg := openStore(t), &source{}, prometheus.NewRegistry()
	rem := &fakeRemediator{action: assertd.ActRemediate, verified: true}
	ctx := context.Background()
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, NewRemediator: fixed(rem), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	fleet := series("api-", 3, 10, nil)
	src.set(fleet, nil)
	e.EvaluateNow(ctx, "latency", t0)
	// 17 injected label values, one of them violating.
	flood := series("x-", 17, 10, map[string]float64{"api-000": 10, "api-001": 10, "api-002": 10})
	flood["x-000"] = 900
	src.set(flood, nil)
	for dt := 10 * time.Second; dt <= 2*time.Minute; dt += 10 * time.Second {
		e.EvaluateNow(ctx, "latency", t0.Add(dt))
	}
	ins := e.Instances()
	if len(ins) != 3 {
		t.Fatalf("%d instances, want the 3 from before the flood: %s", len(ins), states(e))
	}
	for _, in := range ins {
		if in.State != assertd.Escalated || !strings.Contains(in.Reason, "too many instances: the query returned series for 20 instances, more than max_instances 5") {
			t.Fatalf("%s: %s: %s", in.Labels, in.State, in.Reason)
		}
	}
	if len(rem.started) != 0 {
		t.Fatalf("%d runs started during the flood", len(rem.started))
	}
	ms := messages(t, st)
	if len(ms) != 2 || ms[0].DedupKey != ms[1].DedupKey || !strings.HasPrefix(ms[0].DedupKey, "flood/latency/") ||
		!strings.Contains(notice(t, ms[0]).Reason, "max_instances 5") {
		t.Fatalf("want one page on each of the 2 channels: %+v", ms)
	}
	if n := testutil.ToFloat64(e.metrics.floods.WithLabelValues("latency")); n != 1 {
		t.Fatalf("assertd_instance_floods_total = %v, want 1 for one flood", n)
	}
	if f := e.Floods(); f["latency"] != 20 {
		t.Fatalf("floods %v", f)
	}
	// The injected series are gone: evaluated again, the instances recover.
	src.set(fleet, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(3*time.Minute))
	if got := states(e); got != "api-000=ok api-001=ok api-002=ok" {
		t.Fatalf("after the flood: %s", got)
	}
	if f := e.Floods(); len(f) != 0 {
		t.Fatalf("floods %v", f)
	}
}

// A flood on an assert that has no instance yet: one instance stands for
// the assert, uncertain, paged once.
func TestInstanceCapFirstEvaluation(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - {name: latency, every: 10s, uncertain_for: 20s, max_instances: 5, query: {ms: latency_ms}, expect: ms < 50}
`)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(series("x-", 50, 900, nil), nil)
	for dt := time.Duration(0); dt <= time.Minute; dt += 10 * time.Second {
		e.EvaluateNow(ctx, "latency", t0.Add(dt))
	}
	ins := e.Instances()
	if len(ins) != 1 || len(ins[0].Labels) != 0 || ins[0].State != assertd.Escalated || !strings.Contains(ins[0].Reason, "50 instances, more than max_instances 5") {
		t.Fatalf("instances %+v", ins)
	}
	if ms := messages(t, st); len(ms) != 2 {
		t.Fatalf("%d messages, want one page per channel", len(ms))
	}
}

// Series written as ok beside real violations do not dilute the breaker's
// share: instances that appeared within the window count only once they
// violate, so 4 of 10 real instances violating trip it although 100
// injected ok series came with them; zero runs, one grouped page.
func TestBreakerNotDilutedByInjectedOkSeries(t *testing.T) {
	b := newBreakerRig(t)
	e, src := b.e, b.src
	ctx := context.Background()
	vals := series("api-", 10, 10, nil)
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0)
	e.EvaluateNow(ctx, "latency", t0.Add(10*time.Minute)) // the fleet is older than the window
	series("inj-", 100, 10, vals)
	for i := range 4 {
		vals[fmt.Sprintf("api-%03d", i)] = 80
	}
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(11*time.Minute))
	b.wantOneBreakerPage(t, "blast-radius breaker open: 4 of 10 instances of latency")
	if _, err := os.Stat(b.marker); err == nil {
		t.Fatal("something ran")
	}
	if n := refusals(t, b.reg, "breaker"); n != 4 {
		t.Fatalf("assertd_refusals_total{reason=breaker} = %v, want 4", n)
	}
	if v, n := e.Counts("latency", "", ""); v != 4 || n != 110 {
		t.Fatalf("the instances are all tracked: %d/%d", v, n)
	}
}

// New instances that violate count fully: 5 new violating beside 10 ok
// ones trip the breaker (5 of 15), where the same 5 among 100 new ok
// series would too.
func TestBreakerCountsNewViolatedInstances(t *testing.T) {
	helper := helperProgram(t)
	marker := filepath.Join(t.TempDir(), "ran")
	set := loadRunnerSet(t, touchRules(helper, marker, ""), "")
	st, src, reg := openStore(t), &source{}, prometheus.NewRegistry()
	e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: src}, remediations.RunnerOptions{Clock: fakeclock.New(t0), Registerer: reg})
	ctx := context.Background()
	vals := series("api-", 10, 10, nil)
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0)
	series("new-", 5, 80, vals)
	series("inj-", 100, 10, vals)
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(time.Minute))
	settle(t, e)
	if rs := runs(t, st); len(rs) != 0 {
		t.Fatalf("%d runs", len(rs))
	}
	ms := messages(t, st)
	if len(ms) != 1 || !strings.Contains(notice(t, ms[0]).Reason, "blast-radius breaker open: 5 of 15 instances of latency") {
		t.Fatalf("messages %+v", ms)
	}
	if n := refusals(t, reg, "breaker"); n != 5 {
		t.Fatalf("assertd_refusals_total{reason=breaker} = %v, want 5", n)
	}
}

func refusals(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "assertd_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// An evaluation before the first scrape finds nothing; the fleet found by
// the next one is the fleet as it is, not new instances: the breaker's
// share is over all ten.
func TestBreakerBaselineAfterAnEmptyStart(t *testing.T) {
	b := newBreakerRig(t)
	e, src := b.e, b.src
	ctx := context.Background()
	src.set(map[string]float64{}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	vals := series("api-", 10, 10, nil)
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(time.Second))
	e.EvaluateNow(ctx, "latency", t0.Add(2*time.Second)) // the no-data placeholder resolves and is forgotten
	for i := range 4 {
		vals[fmt.Sprintf("api-%03d", i)] = 80
	}
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(3*time.Second))
	b.wantOneBreakerPage(t, "blast-radius breaker open: 4 of 10 instances of latency")
}

// breakerRig is an engine with a runner whose remediation touches marker,
// on a store, a settable source and a fake clock.
type breakerRig struct {
	e      *Engine
	r      *remediations.Runner
	st     store.Store
	src    *source
	reg    *prometheus.Registry
	clock  *fakeclock.Clock
	marker string
}

func newBreakerRig(t *testing.T) *breakerRig {
	t.Helper()
	b := &breakerRig{marker: filepath.Join(t.TempDir(), "ran"), src: &source{}, reg: prometheus.NewRegistry(), clock: fakeclock.New(t0)}
	set := loadRunnerSet(t, touchRules(helperProgram(t), b.marker, ""), "")
	b.st = openStore(t)
	b.e, b.r = withRunner(t, set, b.st, map[string]asserts.Querier{config.EmbeddedName: b.src}, remediations.RunnerOptions{Clock: b.clock, Registerer: b.reg})
	return b
}

// wantOneBreakerPage waits for the runs and the decisions, and wants no run
// and one page whose reason contains reason.
func (b *breakerRig) wantOneBreakerPage(t *testing.T, reason string) {
	t.Helper()
	if err := b.clock.Settle(b.r.InFlight, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(t, b.e)
	if rs := runs(t, b.st); len(rs) != 0 {
		t.Fatalf("%d runs", len(rs))
	}
	if ms := messages(t, b.st); len(ms) != 1 || !strings.Contains(notice(t, ms[0]).Reason, reason) {
		t.Fatalf("want one grouped page (%s): %+v", reason, ms)
	}
}
