package promrules_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/promrules"
)

// rig is an evaluator on a fresh embedded TSDB and a fake clock.
type rig struct {
	t     *testing.T
	emb   *sources.Embedded
	clock *fakeclock.Clock
	ev    *promrules.Evaluator
	evals chan promrules.Evaluation
	first time.Time // the group's first evaluation
	itv   time.Duration
}

const extURL = "http://assertd.example:8080"

func newRig(t *testing.T, ruleFile string) *rig { return newRigWith(t, ruleFile, nil) }

func newRigWith(t *testing.T, ruleFile string, externalLabels map[string]string) *rig {
	t.Helper()
	emb, err := sources.OpenEmbedded(sources.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	r := &rig{t: t, emb: emb, clock: fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), evals: make(chan promrules.Evaluation, 100)}
	r.ev = promrules.New(promrules.Options{Query: emb.RuleQuery(), Queryable: emb.Queryable(), Appendable: emb.Appendable(),
		Clock: r.clock, OnEval: func(e promrules.Evaluation) { r.evals <- e }})
	set := ruleSet(t, ruleFile)
	set.Config.PrometheusRules.ExternalLabels = externalLabels
	n, err := r.ev.Prepare(set, promrules.Target{ExternalURL: extURL})
	if err != nil {
		t.Fatal(err)
	}
	r.ev.Apply(n)
	g := r.ev.Groups()[0]
	r.itv = g.Interval()
	r.first = g.EvalTimestamp(r.clock.Now().UnixNano()).Add(r.itv)
	t.Cleanup(r.ev.Stop)
	return r
}

func ruleSet(t *testing.T, ruleFile string) *config.Set {
	t.Helper()
	set, errs := config.ParseRules("rules.yml", []byte(ruleFile))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	set.Config = &config.Config{}
	return set
}

// series appends up{instance="a"} every 15s from 10m before the first
// evaluation to 20m after it, its value given by f of the time since the
// first evaluation (NaN: a stale marker).
func (r *rig) series(f func(since time.Duration) float64) {
	app := r.emb.Appendable().Appender(context.Background())
	ls := labels.FromStrings("__name__", "up", "instance", "a", "job", "db")
	for d := -10 * time.Minute; d <= 20*time.Minute; d += 15 * time.Second {
		v := f(d)
		if math.IsNaN(v) {
			v = math.Float64frombits(value.StaleNaN)
		}
		if _, err := app.Append(0, ls, r.first.Add(d).UnixMilli(), v); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		r.t.Fatal(err)
	}
}

// step moves the clock to the k-th evaluation and returns its outcome.
func (r *rig) step(k int) promrules.Evaluation {
	r.t.Helper()
	at := r.first.Add(time.Duration(k) * r.itv)
	r.clock.Set(at)
	select {
	case e := <-r.evals:
		if !e.At.Equal(at) {
			r.t.Fatalf("evaluation %d at %s, want %s", k, e.At, at)
		}
		return e
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no evaluation %d", k)
	}
	return promrules.Evaluation{}
}

func state(e promrules.Evaluation) string {
	if len(e.Alerts) > 1 {
		return "+"
	}
	if len(e.Alerts) == 0 {
		return "-"
	}
	return e.Alerts[0].State
}

const upRule = `groups:
  - name: db
    interval: 1m
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} down ({{ $value }})"
`

// TestForTimeline is the timeline Prometheus gives up == 0 with for: 5m:
// pending 0–4m, firing 5–9m, resolved at 10m; a single good sample resets
// the for clock and a stale marker resolves at once.
func TestForTimeline(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   func(d time.Duration) float64
		want string
	}{
		// One letter per evaluation, a minute apart: p pending, f firing,
		// - no alert.
		{"down 0-10m", func(d time.Duration) float64 { return b2f(d < 0 || d >= 10*time.Minute) }, "pppppfffff--"},
		{"one good sample at 3m", func(d time.Duration) float64 {
			return b2f(d < 0 || d == 3*time.Minute || d >= 14*time.Minute)
		}, "ppp-pppppfffff-"},
		{"stale at 7m", func(d time.Duration) float64 {
			if d >= 7*time.Minute {
				return math.NaN()
			}
			return b2f(d < 0)
		}, "pppppff---"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, upRule)
			r.series(tc.up)
			r.ev.Start(context.Background())
			got := ""
			for k := 0; len(got) < len(tc.want); k++ {
				s := state(r.step(k))
				got += s[:1]
			}
			if got != tc.want {
				t.Errorf("states %q, want %q", got, tc.want)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestForStateRestored: after a restart, an alert whose for is at least
// the grace period takes its active-since back from ALERTS_FOR_STATE as
// Prometheus restores it: the time it was pending before the restart
// counts, the time assertd was down does not. Pending 0–3m, down 3–5m,
// restored after the second evaluation (6m): 12m remain, so it fires at
// 18m (without the restore: 20m).
func TestForStateRestored(t *testing.T) {
	const rule = `groups:
  - name: db
    interval: 1m
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 15m
`
	r := newRig(t, rule)
	r.series(func(d time.Duration) float64 { return b2f(d < 0) })
	r.ev.Start(context.Background())
	for k := 0; k <= 3; k++ {
		if s := state(r.step(k)); s != "pending" {
			t.Fatalf("evaluation %d: %s", k, s)
		}
	}
	r.ev.Stop()

	// assertd starts again 2 minutes later on the same TSDB.
	clock := fakeclock.New(r.first.Add(5 * time.Minute).Add(-time.Second))
	evals := make(chan promrules.Evaluation, 10)
	ev2 := promrules.New(promrules.Options{Query: r.emb.RuleQuery(), Queryable: r.emb.Queryable(), Appendable: r.emb.Appendable(),
		Clock: clock, OnEval: func(e promrules.Evaluation) { evals <- e }})
	n, err := ev2.Prepare(ruleSet(t, rule), promrules.Target{ExternalURL: extURL})
	if err != nil {
		t.Fatal(err)
	}
	ev2.Apply(n)
	ev2.Start(context.Background())
	t.Cleanup(ev2.Stop)
	var last promrules.Evaluation
	restored := time.Unix(r.first.Unix(), 0).Add(r.first.Add(6 * time.Minute).Sub(time.Unix(r.first.Add(3*time.Minute).Unix(), 0)))
	for k := 5; k <= 18; k++ {
		clock.Set(r.first.Add(time.Duration(k) * time.Minute))
		select {
		case last = <-evals:
		case <-time.After(10 * time.Second):
			t.Fatalf("no evaluation at %dm", k)
		}
		if len(last.Alerts) != 1 {
			t.Fatalf("at %dm: %+v", k, last)
		}
		a := last.Alerts[0]
		switch {
		case k <= 6 && !a.ActiveAt.Equal(r.first.Add(5*time.Minute)):
			// Prometheus restores after the second evaluation.
			t.Fatalf("at %dm, before the restore: active since %s, want the restart's first evaluation", k, a.ActiveAt)
		case k >= 7 && !a.ActiveAt.Equal(restored):
			t.Fatalf("at %dm, after the restore: active since %s, want %s (from ALERTS_FOR_STATE, the outage left out)", k, a.ActiveAt, restored)
		case k < 18 && a.State != "pending", k == 18 && a.State != "firing":
			t.Fatalf("at %dm: %s", k, a.State)
		}
	}
}

// TestGroupOptions: a group's query_offset moves its queries back and its
// labels join the rule's on every alert, as in Prometheus.
func TestGroupOptions(t *testing.T) {
	r := newRig(t, `groups:
  - name: opts
    interval: 1m
    query_offset: 2m
    labels: {team: dba}
    rules:
      - alert: Lagged
        expr: up == 1
        labels: {severity: page}
`)
	// up is 1 until 90s before the first evaluation, 0 after: only a query
	// 2m back sees it.
	r.series(func(d time.Duration) float64 { return b2f(d < -90*time.Second) })
	r.ev.Start(context.Background())
	ev := r.step(0)
	if len(ev.Alerts) != 1 {
		t.Fatalf("alerts %+v: want one (the query 2m back sees up == 1)", ev.Alerts)
	}
	want := labels.FromStrings("alertname", "Lagged", "instance", "a", "job", "db", "severity", "page", "team", "dba")
	if !labels.Equal(ev.Alerts[0].Labels, want) {
		t.Errorf("labels %s, want %s", ev.Alerts[0].Labels, want)
	}
	if ev := r.step(2); len(ev.Alerts) != 0 {
		t.Errorf("at 2m (the query sees 0s): %+v", ev.Alerts)
	}
}

// TestEvalDue: an evaluator stepped by EvalDue evaluates at the same
// slots, with the same outcomes, as a started one on a clock moved by the
// same steps: with a 30s step every slot once (TestForTimeline's
// timeline), with a 150s step only the latest slot at or before each step
// after the first (the group loop skips the missed ones).
func TestEvalDue(t *testing.T) {
	down := func(d time.Duration) float64 { return b2f(d < 0 || d >= 10*time.Minute) }
	for _, tc := range []struct {
		step time.Duration
		want string // with the 30s step
	}{
		{30 * time.Second, "pppppfffff---"},
		{150 * time.Second, ""},
	} {
		t.Run(tc.step.String(), func(t *testing.T) {
			started, stepped := newRig(t, upRule), newRig(t, upRule)
			started.series(down)
			stepped.series(down)
			started.ev.Start(context.Background())
			start := started.clock.Now()
			if n := stepped.ev.EvalDue(context.Background(), start); n != 0 {
				t.Fatalf("%d evaluations before the first slot", n)
			}
			var want, got []string
			outcome := func(e promrules.Evaluation) string { return e.At.Format("15:04:05") + state(e)[:1] }
			for now := start.Add(tc.step); now.Before(start.Add(13 * time.Minute)); now = now.Add(tc.step) {
				started.clock.Set(now)
				if err := started.clock.Settle(func() int { return 1 }, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				for len(started.evals) > 0 {
					want = append(want, outcome(<-started.evals))
				}
				stepped.clock.Set(now)
				for range stepped.ev.EvalDue(context.Background(), now) {
					got = append(got, outcome(<-stepped.evals))
				}
			}
			if len(want) < 5 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("stepped evaluations %v, want the started ones %v", got, want)
			}
			if tc.want != "" {
				states := ""
				for _, o := range got {
					states += o[len(o)-1:]
				}
				if states != tc.want {
					t.Errorf("states %q, want %q", states, tc.want)
				}
			}
		})
	}
}

// TestReads tells the expressions that read recorded series, others, or
// both, through range selectors, subqueries and selectors without a name.
func TestReads(t *testing.T) {
	rec := map[string]bool{"job:up:sum": true}
	for _, tc := range []struct {
		expr       string
		rec, other bool
	}{
		{`job:up:sum > 1`, true, false},
		{`rate(job:up:sum[5m])`, true, false},
		{`max_over_time((job:up:sum > 0)[10m:1m])`, true, false},
		{`up == 0`, false, true},
		{`{job="db"}`, false, true},
		{`job:up:sum > 1 and on() up`, true, true},
		{`vector(1)`, false, false},
	} {
		if rec, other := promrules.Reads(tc.expr, rec); rec != tc.rec || other != tc.other {
			t.Errorf("Reads(%s) = %v, %v; want %v, %v", tc.expr, rec, other, tc.rec, tc.other)
		}
	}
}
