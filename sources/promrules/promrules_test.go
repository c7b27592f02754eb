package promrules_test

import (
	"context"
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
