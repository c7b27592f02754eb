package promimport

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	yaml2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/asserttest"
)

// promtool's test file, as far as the conversion reads it.
type promFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	GroupEvalOrder     []string       `yaml:"group_eval_order,omitempty"`
	FuzzyCompare       bool           `yaml:"fuzzy_compare,omitempty"`
	Tests              []promGroup    `yaml:"tests"`
}

type promGroup struct {
	Name            string            `yaml:"name,omitempty"`
	Interval        model.Duration    `yaml:"interval,omitempty"`
	InputSeries     []promSeries      `yaml:"input_series"`
	ExternalLabels  map[string]string `yaml:"external_labels,omitempty"`
	ExternalURL     string            `yaml:"external_url,omitempty"`
	StartTimestamp  string            `yaml:"start_timestamp,omitempty"`
	AlertRuleTests  []promAlertTest   `yaml:"alert_rule_test,omitempty"`
	PromqlExprTests []promExprTest    `yaml:"promql_expr_test,omitempty"`
}

type promAlertTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `yaml:"exp_labels,omitempty"`
		ExpAnnotations map[string]string `yaml:"exp_annotations,omitempty"`
	} `yaml:"exp_alerts"`
}

type promExprTest struct {
	Expr       string         `yaml:"expr"`
	EvalTime   model.Duration `yaml:"eval_time"`
	ExpSamples []struct {
		Labels    string  `yaml:"labels,omitempty"`
		Value     float64 `yaml:"value"`
		Histogram string  `yaml:"histogram,omitempty"`
	} `yaml:"exp_samples"`
}

type promSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// TestFile is a promtool test file read for conversion.
type TestFile struct {
	f promFile
}

// ReadTestFile reads a promtool test file (strictly, as promtool does).
func ReadTestFile(path string) (*TestFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t TestFile
	if err := yaml2.UnmarshalStrict(b, &t.f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if t.f.EvaluationInterval == 0 {
		t.f.EvaluationInterval = model.Duration(time.Minute)
	}
	return &t, nil
}

// RuleFiles are the file's rule_files, as written.
func (t *TestFile) RuleFiles() []string { return t.f.RuleFiles }

// EvaluationInterval is the file's evaluation_interval (default 1m).
func (t *TestFile) EvaluationInterval() time.Duration { return time.Duration(t.f.EvaluationInterval) }

// Groups is the number of test groups; each becomes one native test file.
func (t *TestFile) Groups() int { return len(t.f.Tests) }

// GroupOptions are the import options test group i implies: every group
// evaluated at the file's evaluation_interval, the group's external labels
// and URL.
func (t *TestFile) GroupOptions(i int) Options {
	g := t.f.Tests[i]
	return Options{Every: t.EvaluationInterval(), ExternalLabels: g.ExternalLabels, ExternalURL: g.ExternalURL}
}

type nativeFile struct {
	Config             string       `yaml:"config"`
	Interval           string       `yaml:"interval"`
	EvaluationInterval string       `yaml:"evaluation_interval"`
	StartTimestamp     string       `yaml:"start_timestamp,omitempty"`
	InputSeries        []promSeries `yaml:"input_series,omitempty"`
	Tests              []nativeTest `yaml:"tests"`
}

type nativeTest struct {
	Name   string                    `yaml:"name"`
	At     string                    `yaml:"at"`
	Alerts []asserttest.AlertsExpect `yaml:"alerts,omitempty"`
	Exprs  []asserttest.ExprExpect   `yaml:"exprs,omitempty"`
}

var word = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// Reduce drops the checks that cannot be converted — alerts whose rule was
// not imported, expressions over recording rules' series or ALERTS,
// histogram samples — and the groups left without checks, and says what
// it dropped. Write the reduced file for promtool, so that both run the
// same checks.
func (t *TestFile) Reduce(res *Result) []string {
	var dropped []string
	imported := map[string]bool{}
	for _, r := range res.Rules {
		imported[r.Alertname] = true
	}
	var groups []promGroup
	for gi, g := range t.f.Tests {
		var alerts []promAlertTest
		for _, a := range g.AlertRuleTests {
			if !imported[a.Alertname] {
				dropped = append(dropped, fmt.Sprintf("group %d: alert %s at %s: its rule was not imported", gi, a.Alertname, a.EvalTime))
				continue
			}
			alerts = append(alerts, a)
		}
		var exprs []promExprTest
		for _, x := range g.PromqlExprTests {
			if why := exprProblem(x, res); why != "" {
				dropped = append(dropped, fmt.Sprintf("group %d: expr %q at %s: %s", gi, x.Expr, x.EvalTime, why))
				continue
			}
			exprs = append(exprs, x)
		}
		g.AlertRuleTests, g.PromqlExprTests = alerts, exprs
		if len(alerts)+len(exprs) == 0 {
			dropped = append(dropped, fmt.Sprintf("group %d: no checks left", gi))
			continue
		}
		groups = append(groups, g)
	}
	t.f.Tests = groups
	return dropped
}

func exprProblem(x promExprTest, res *Result) string {
	for _, w := range word.FindAllString(x.Expr, -1) {
		if w == "ALERTS" || w == "ALERTS_FOR_STATE" || slices.Contains(res.Recorded, w) {
			return "reads " + w + ", which assertd does not record"
		}
	}
	for _, s := range x.ExpSamples {
		if s.Histogram != "" {
			return "histogram samples are not compared by assertd test"
		}
	}
	return ""
}

// Write writes the (reduced) promtool test file to path, its rule files
// made absolute from dir, the original's directory.
func (t *TestFile) Write(path, dir string) error {
	f := t.f
	f.RuleFiles = nil
	for _, r := range t.f.RuleFiles {
		if !filepath.IsAbs(r) {
			r = filepath.Join(dir, r)
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			return err
		}
		f.RuleFiles = append(f.RuleFiles, abs)
	}
	b, err := yaml2.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ConvertGroup converts test group i into a native test file against the
// imported asserts (config names the assertd.yaml). The conversion is
// refused when a check cannot be expressed: an alert whose rule was not
// imported, an expression over a recording rule's series or ALERTS, a
// histogram sample or fuzzy_compare. Import with the group's external
// labels and URL (GroupOptions).
func (t *TestFile) ConvertGroup(i int, res *Result, config string) ([]byte, error) {
	if t.f.FuzzyCompare {
		return nil, fmt.Errorf("fuzzy_compare has no equivalent in an assertd test")
	}
	g := t.f.Tests[i]
	interval := g.Interval
	if interval == 0 {
		interval = t.f.EvaluationInterval
	}
	out := nativeFile{Config: config, Interval: interval.String(), EvaluationInterval: t.f.EvaluationInterval.String(),
		StartTimestamp: g.StartTimestamp, InputSeries: g.InputSeries}
	byTime := map[model.Duration]*nativeTest{}
	at := func(d model.Duration) *nativeTest {
		if byTime[d] == nil {
			byTime[d] = &nativeTest{Name: "eval_time " + d.String(), At: d.String()}
		}
		return byTime[d]
	}
	for _, a := range g.AlertRuleTests {
		var rules []Rule
		for _, r := range res.Rules {
			if r.Alertname == a.Alertname {
				rules = append(rules, r)
			}
		}
		if len(rules) == 0 {
			return nil, fmt.Errorf("alert %s at %s: no imported rule has this name (Reduce drops it)", a.Alertname, a.EvalTime)
		}
		firing := make([][]asserttest.FiringExpect, len(rules))
		for _, e := range a.ExpAlerts {
			ls := map[string]string{"alertname": a.Alertname}
			maps.Copy(ls, e.ExpLabels)
			k := 0
			for j, r := range rules {
				if carries(ls, r.Labels) {
					k = j
					break
				}
			}
			firing[k] = append(firing[k], asserttest.FiringExpect{Labels: ls, Annotations: e.ExpAnnotations})
		}
		nt := at(a.EvalTime)
		for j, r := range rules {
			nt.Alerts = append(nt.Alerts, asserttest.AlertsExpect{Assert: r.Assert, Firing: firing[j]})
		}
	}
	for _, x := range g.PromqlExprTests {
		if why := exprProblem(x, res); why != "" {
			return nil, fmt.Errorf("expr %q: %s (Reduce drops it)", x.Expr, why)
		}
		ne := asserttest.ExprExpect{Expr: x.Expr, ExpSamples: []asserttest.SampleExpect{}}
		for _, s := range x.ExpSamples {
			ne.ExpSamples = append(ne.ExpSamples, asserttest.SampleExpect{Labels: s.Labels, Value: s.Value})
		}
		nt := at(x.EvalTime)
		nt.Exprs = append(nt.Exprs, ne)
	}
	for _, d := range slices.Sorted(maps.Keys(byTime)) {
		out.Tests = append(out.Tests, *byTime[d])
	}
	if len(out.Tests) == 0 {
		return nil, fmt.Errorf("test group %d has no checks", i)
	}
	var b strings.Builder
	b.WriteString("# Converted from a promtool test by assertd import prometheus-rules.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func carries(ls, want map[string]string) bool {
	for k, v := range want {
		if ls[k] != v {
			return false
		}
	}
	return true
}

// Config is an assertd.yaml for converted tests: the imported assert files
// and one console channel that pages at once (a firing alert is an
// escalated instance).
func Config(assertFiles []string) []byte {
	var b strings.Builder
	b.WriteString("# For tests converted by assertd import prometheus-rules.\nfiles: [")
	for i, f := range assertFiles {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", f)
	}
	b.WriteString("]\ndata_dir: data\ndefaults:\n  escalate: oncall\nnotifiers:\n  - name: console\n    console: {}\n" +
		"escalation_policies:\n  - name: oncall\n    levels:\n      - after: 0s\n        notify: [console]\n")
	return []byte(b.String())
}
