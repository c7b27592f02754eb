// Package asserttest runs `assertd test`: YAML test files that feed input
// series (promtool's notation, native histograms included) and heartbeat
// pings to the real engine on an injected clock, and check what assertd
// does — instance states (or exactly the set of instances not ok), their
// annotations, PromQL expressions, remediation runs and their outcomes,
// refusals, pages and informational messages per channel — at given
// times. Asserts are evaluated at the test's start and every interval from
// it, as promtool evaluates rules. (promtool's own test files are run by
// the subpackage promunit.) There is no second, simulated copy of the logic:
// assertd is built by app.New as assertd run builds it, so the engine, the
// decision code, the remediation runner and the deliverer are the real ones;
// only the clock, the store's place, the secrets, the channels, the effects
// of the steps and the sources are replaced.
package asserttest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/strictyaml"
)

// File is one test file.
type File struct {
	// Config is the assertd.yaml under test, relative to the test file.
	Config string `yaml:"config"`
	// Interval is the step of the input series (default 1m, like promtool).
	Interval assertd.Duration `yaml:"interval"`
	// EvaluationInterval is how often the clock advances and due asserts
	// are evaluated (default: 1s). Each assert is evaluated at 0 and every
	// `every` from it.
	EvaluationInterval assertd.Duration `yaml:"evaluation_interval"`
	// StartTimestamp is the wall-clock time of the test's time zero (the
	// first input sample), RFC 3339 or Unix seconds; default the Unix
	// epoch, as in promtool.
	StartTimestamp string   `yaml:"start_timestamp"`
	InputSeries    []Series `yaml:"input_series"`
	Pings          []Ping   `yaml:"pings"`
	// Outcomes fake the external effects of remediation steps, by
	// remediation and step name; unlisted steps succeed, verify steps are
	// evaluated for real unless listed.
	Outcomes map[string]map[string]Outcome `yaml:"outcomes"`
	// Channels fake channel behaviour: a channel may be down for a while.
	Channels []Channel `yaml:"channels"`
	// Silences are active from their start to their end, as if an
	// operator had created them.
	Silences []Silence `yaml:"silences"`
	Tests    []Test    `yaml:"tests"`
}

// Silence silences the instances carrying its labels over [from, until).
type Silence struct {
	Labels  map[string]string `yaml:"labels"`
	From    assertd.Duration  `yaml:"from"`
	Until   assertd.Duration  `yaml:"until"`
	Comment string            `yaml:"comment"`
}

// Series is one input series in promtool's notation: `a+bxn`, `a-bxn`,
// `axn`, `_` (no sample) and `stale`.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// Ping is a heartbeat ping at a time.
type Ping struct {
	Heartbeat string           `yaml:"heartbeat"`
	At        assertd.Duration `yaml:"at"`
	Kind      string           `yaml:"kind"` // success (default), start, fail, exit
	Exit      int              `yaml:"exit"`
}

// Outcome fakes one step's effect.
type Outcome struct {
	Exit   *int  `yaml:"exit"`   // run steps: the exit code
	Status *int  `yaml:"status"` // http steps: the response status
	Pass   *bool `yaml:"pass"`   // verify steps: the result
}

// Channel fakes a channel's behaviour.
type Channel struct {
	Name string             `yaml:"name"`
	Down []assertd.Duration `yaml:"down"` // [from, to): deliveries fail in between
}

// Test is a set of expectations at one time.
type Test struct {
	Name   string           `yaml:"name"`
	At     assertd.Duration `yaml:"at"`
	States []StateExpect    `yaml:"states"`
	Runs   []RunExpect      `yaml:"runs"`
	// Pages and Info count the trigger and informational messages per
	// channel sent so far; NoPage says no channel was paged.
	Pages  map[string]int `yaml:"pages"`
	Info   map[string]int `yaml:"info"`
	NoPage bool           `yaml:"no_page"`
	// Exact says the states listed are all there is: every instance of an
	// assert named in states that is not ok must be listed (promtool's
	// exp_alerts are exact sets too).
	Exact bool `yaml:"exact"`
	// Exprs are PromQL expressions evaluated at the test's time against the
	// input series, with the samples they must return (all of them).
	Exprs []ExprExpect `yaml:"exprs"`
	// Alerts are promtool's exp_alerts: exactly these instances of an
	// assert are firing (violated, remediating or escalated; pending ones
	// are not firing, as in Prometheus), with exactly these labels and
	// annotations.
	Alerts []AlertsExpect `yaml:"alerts"`
}

// AlertsExpect lists every firing instance of an assert.
type AlertsExpect struct {
	Assert string         `yaml:"assert"`
	Firing []FiringExpect `yaml:"firing"`
}

// FiringExpect is one firing instance: all its labels (the assert's
// included) and all its rendered annotations.
type FiringExpect struct {
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// ExprExpect is promtool's promql_expr_test at the test's time.
type ExprExpect struct {
	Expr       string         `yaml:"expr"`
	ExpSamples []SampleExpect `yaml:"exp_samples"`
}

// SampleExpect is one expected sample: its labels in PromQL notation
// (`name{label="value"}`, `{label="value"}`) and its value.
type SampleExpect struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// StateExpect expects an instance's state.
type StateExpect struct {
	Assert string            `yaml:"assert"`
	Labels map[string]string `yaml:"labels"` // the instance carries at least these
	State  string            `yaml:"state"`
	// Annotations the instance's rendered annotations carry, as its pages
	// carry them (only those listed are compared).
	Annotations map[string]string `yaml:"annotations"`
}

// RunExpect expects the runs of a remediation: how many, their outcome, or
// a refusal and its reason.
type RunExpect struct {
	Remediation string `yaml:"remediation"`
	Count       *int   `yaml:"count"`
	Status      string `yaml:"status"`  // succeeded, failed, refused, … of the latest
	Refused     string `yaml:"refused"` // a substring of a refusal's reason
}

// Loaded is a checked test file with its config and positions, ready to run.
type Loaded struct {
	path   string
	file   File
	pos    *strictyaml.Positions
	set    *config.Set
	series []loadedSeries
	end    time.Duration // the last input sample
	origin time.Time     // time zero: start_timestamp or the Unix epoch
	exprs  map[[2]int][]labels.Labels
}

type loadedSeries struct {
	labels labels.Labels
	values []parser.SequenceValue
}

var seriesParser = parser.NewParser(parser.Options{})

// Load reads and checks a test file: every name it uses must exist, every
// series must parse, and no expectation may lie beyond the input.
func Load(path string) (*Loaded, strictyaml.Errors) {
	data, err := os.ReadFile(path)
	if err != nil {
		var errs strictyaml.Errors
		errs.Add(strictyaml.Pos{File: path}, "cannot read: %v", err)
		return nil, errs
	}
	l := &Loaded{path: path}
	pos, errs := strictyaml.Decode(path, data, &l.file)
	l.pos = pos
	f := &l.file
	if f.Config == "" {
		errs.Add(pos.Of("config"), "name the config under test: config: assertd.yaml")
		return l, errs
	}
	set, cerrs := config.Load(filepath.Join(filepath.Dir(path), f.Config))
	if len(cerrs) > 0 {
		errs.Add(pos.Of("config"), "the config under test has errors (run assertd check):\n%v", cerrs)
		return l, errs
	}
	l.set = set
	l.origin = Origin
	if f.StartTimestamp != "" {
		t, err := parseTime(f.StartTimestamp)
		if err != nil {
			errs.Add(pos.Of("start_timestamp"), "%v: write RFC 3339 (2025-03-01T00:00:00Z) or Unix seconds", err)
		}
		l.origin = t
	}
	interval := f.Interval.Std()
	if interval <= 0 {
		interval = time.Minute
	}
	for i, s := range f.InputSeries {
		ls, vals, err := seriesParser.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			errs.Add(pos.Of("input_series", i), "series %d: %v", i, err)
			continue
		}
		l.series = append(l.series, loadedSeries{labels: ls, values: vals})
		if d := time.Duration(len(vals)-1) * interval; d > l.end {
			l.end = d
		}
	}
	var hbs, asserts, rems, chans []string
	for _, h := range set.Heartbeats {
		hbs = append(hbs, h.Name)
	}
	for _, a := range set.Asserts {
		asserts = append(asserts, a.Name)
	}
	for _, r := range set.Remediations {
		rems = append(rems, r.Name)
	}
	for _, n := range set.Config.Notifiers {
		chans = append(chans, n.Name)
	}
	known := func(at strictyaml.Pos, kind, name string, names []string) {
		if !slices.Contains(names, name) {
			errs.Add(at, "unknown %s %q%s; the %ss are: %s", kind, name, strictyaml.DidYouMean(name, names), kind, strings.Join(names, ", "))
		}
	}
	for i, p := range f.Pings {
		known(pos.Of("pings", i, "heartbeat"), "heartbeat", p.Heartbeat, hbs)
		if !slices.Contains([]string{"", "success", "start", "fail", "exit"}, p.Kind) {
			errs.Add(pos.Of("pings", i, "kind"), "kind must be success, start, fail or exit")
		}
	}
	for rem, steps := range f.Outcomes {
		known(pos.Of("outcomes", rem), "remediation", rem, rems)
		r := set.Remediation(rem)
		if r == nil {
			continue
		}
		var names []string
		for _, s := range r.Steps {
			names = append(names, s.Name)
		}
		for step := range steps {
			known(pos.Of("outcomes", rem, step), "step", step, names)
		}
	}
	for i, c := range f.Channels {
		known(pos.Of("channels", i, "name"), "channel", c.Name, chans)
		if len(c.Down) != 2 || c.Down[1] <= c.Down[0] {
			errs.Add(pos.Of("channels", i, "down"), "down takes [from, to] with to after from, such as down: [0s, 10m]")
		}
	}
	for i, si := range f.Silences {
		if len(si.Labels) == 0 {
			errs.Add(pos.Of("silences", i), "a silence needs labels, such as labels: {instance: db1}")
		}
		if si.Until <= si.From {
			errs.Add(pos.Of("silences", i, "until"), "until must be after from, such as from: 1m, until: 10m")
		}
	}
	if len(f.Tests) == 0 {
		errs.Add(pos.Of("tests"), "no tests: add tests: [{name: …, at: 5m, states: […]}]")
	}
	l.exprs = map[[2]int][]labels.Labels{}
	for i, t := range f.Tests {
		if t.Name == "" {
			errs.Add(pos.Of("tests", i), "test %d has no name", i+1)
		}
		// Past the last input sample, series end as Prometheus' lookback
		// says (5m after their last sample), as in promtool.
		for j, x := range t.Exprs {
			if _, err := seriesParser.ParseExpr(x.Expr); err != nil {
				errs.Add(pos.Of("tests", i, "exprs", j, "expr"), "%v", err)
			}
			for k, s := range x.ExpSamples {
				ls, err := seriesParser.ParseMetric(s.Labels)
				if err != nil {
					errs.Add(pos.Of("tests", i, "exprs", j, "exp_samples", k, "labels"), "labels %q: %v; write name{label=\"value\"} or {label=\"value\"}", s.Labels, err)
				}
				l.exprs[[2]int{i, j}] = append(l.exprs[[2]int{i, j}], ls)
			}
		}
		for j, s := range t.States {
			known(pos.Of("tests", i, "states", j, "assert"), "assert", s.Assert, asserts)
			if !slices.Contains([]string{"ok", "pending", "violated", "remediating", "escalated", "uncertain", "silenced"}, s.State) {
				errs.Add(pos.Of("tests", i, "states", j, "state"), "state must be ok, pending, violated, remediating, escalated, uncertain or silenced")
			}
		}
		for j, a := range t.Alerts {
			known(pos.Of("tests", i, "alerts", j, "assert"), "assert", a.Assert, asserts)
		}
		for j, r := range t.Runs {
			known(pos.Of("tests", i, "runs", j, "remediation"), "remediation", r.Remediation, rems)
		}
		for ch := range t.Pages {
			known(pos.Of("tests", i, "pages", ch), "channel", ch, chans)
		}
		for ch := range t.Info {
			known(pos.Of("tests", i, "info", ch), "channel", ch, chans)
		}
	}
	return l, errs.Sort()
}

// parseTime reads a Unix timestamp in seconds or an RFC 3339 time, as
// promtool reads start_timestamp.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(t)
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// isStale reports whether a sequence value is a staleness marker.
func isStale(v float64) bool {
	return value.IsStaleNaN(v) || math.IsNaN(v) && math.Float64bits(v) == value.StaleNaN
}
