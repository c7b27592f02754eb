// Package promimport converts Prometheus alerting rule files into native
// assert files (assertd import prometheus-rules), and promtool test files
// into native test files against them, so that a team can check that the
// imported asserts behave as the rules did: the converted tests must give
// the verdicts promtool gives on the originals.
//
// An alerting rule becomes an assert with the rule's expression as its one
// query (`value`), `expect: "false"` (every series the expression returns
// is a firing alert), `no_data: ok` (no series: no alert), the group's
// interval as `every`, the rule's `for`, its labels plus `alertname`, and
// its annotations with Prometheus' template variables bound at the top
// (`$labels`, `$value`, `$externalURL`; `$externalLabels.name` written as
// the value given). Recording rules are not asserts: they are listed as
// not imported, and so is a rule whose templates call what asserts do not
// offer (`query`, …).
package promimport

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Options are what a rule file does not say.
type Options struct {
	// EvaluationInterval is the interval of groups without one (default
	// 1m, Prometheus' global evaluation_interval default).
	EvaluationInterval time.Duration
	// Every, when set, is every assert's interval, whatever its group says
	// (promtool evaluates every group at the test's evaluation_interval).
	Every time.Duration
	// ExternalLabels and ExternalURL are the values of $externalLabels and
	// $externalURL.
	ExternalLabels map[string]string
	ExternalURL    string
}

// Rule is one imported alerting rule.
type Rule struct {
	File, Group string
	Index       int // within its group
	Alertname   string
	Assert      string            // the assert's name (unique)
	Labels      map[string]string // the rule's labels, alertname included
}

// Result is the import of a set of rule files.
type Result struct {
	// Files are the assert files, by the rule file they come from.
	Files map[string][]byte
	Rules []Rule
	// Skipped says, per rule not imported, why.
	Skipped []string
	// Recorded are the names recording rules write (not imported).
	Recorded []string
}

type assertOut struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Every       string            `yaml:"every"`
	For         string            `yaml:"for,omitempty"`
	Query       map[string]string `yaml:"query"`
	Expect      string            `yaml:"expect"`
	NoData      string            `yaml:"no_data"`
	ClearFor    string            `yaml:"clear_for,omitempty"`
	Clear       string            `yaml:"clear,omitempty"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// unsupported are Prometheus template functions asserts do not offer.
var unsupported = regexp.MustCompile(`\b(query|first|label|value|strvalue|sortByLabel|now|externalURL|pathPrefix|graphLink|tableLink)\b`)

var (
	externalLabel = regexp.MustCompile(`\$externalLabels\.([A-Za-z_][A-Za-z0-9_]*)`)
	fields        = regexp.MustCompile(`[$.][A-Za-z_][A-Za-z0-9_]*`) // $value, .Labels: not functions
)

// Import converts the rule files.
func Import(files []string, o Options) (*Result, error) {
	if o.EvaluationInterval <= 0 {
		o.EvaluationInterval = time.Minute
	}
	res := &Result{Files: map[string][]byte{}}
	used := map[string]int{}
	parsed := map[string]*rulefmt.RuleGroups{}
	for _, f := range files {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			return nil, errs[0]
		}
		parsed[f] = rgs
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					res.Recorded = append(res.Recorded, r.Record)
				}
			}
		}
	}
	for _, f := range files {
		rgs := parsed[f]
		var out []assertOut
		for _, g := range rgs.Groups {
			every := o.EvaluationInterval
			if g.Interval > 0 {
				every = time.Duration(g.Interval)
			}
			if o.Every > 0 {
				every = o.Every
			}
			for i, r := range g.Rules {
				if r.Record != "" {
					continue
				}
				where := fmt.Sprintf("%s: group %s, rule %d (%s)", f, g.Name, i+1, r.Alert)
				a, err := convert(r, g, every, o, res.Recorded)
				if err != nil {
					res.Skipped = append(res.Skipped, where+": "+err.Error())
					continue
				}
				used[r.Alert]++
				a.Name = r.Alert
				if n := used[r.Alert]; n > 1 {
					a.Name = fmt.Sprintf("%s-%d", r.Alert, n) // alert names repeat; assert names do not
				}
				a.Description = fmt.Sprintf("Prometheus alerting rule %s (%s, group %s, rule %d)", r.Alert, filepath.Base(f), g.Name, i+1)
				out = append(out, a)
				res.Rules = append(res.Rules, Rule{File: f, Group: g.Name, Index: i, Alertname: r.Alert, Assert: a.Name, Labels: a.Labels})
			}
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Imported from %s by assertd import prometheus-rules.\n", filepath.Base(f))
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(map[string][]assertOut{"asserts": out}); err != nil {
			return nil, err
		}
		res.Files[f] = b.Bytes()
	}
	return res, nil
}

func convert(r rulefmt.Rule, g rulefmt.RuleGroup, every time.Duration, o Options, recorded []string) (assertOut, error) {
	a := assertOut{Every: model.Duration(every).String(), Query: map[string]string{"value": r.Expr}, Expect: "false", NoData: "ok",
		Labels: map[string]string{"alertname": r.Alert}}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
	if err != nil {
		return a, err
	}
	var reads string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && (slices.Contains(recorded, vs.Name) || vs.Name == "ALERTS" || vs.Name == "ALERTS_FOR_STATE") {
			reads = vs.Name
		}
		return nil
	})
	if reads != "" {
		return a, fmt.Errorf("the expression reads %s, which a recording rule or the rule manager writes and assertd does not", reads)
	}
	if g.QueryOffset != nil && *g.QueryOffset > 0 {
		return a, fmt.Errorf("query_offset has no equivalent in an assert")
	}
	if g.Limit > 0 {
		return a, fmt.Errorf("limit has no equivalent in an assert (max_instances pages a flood instead)")
	}
	if r.For > 0 {
		a.For = r.For.String()
	}
	if r.KeepFiringFor > 0 {
		return a, fmt.Errorf("keep_firing_for has no equivalent in an assert (clear_for needs the series to stay)")
	}
	for k, v := range g.Labels {
		a.Labels[k] = v
	}
	for k, v := range r.Labels {
		if strings.Contains(v, "{{") {
			return a, fmt.Errorf("label %s is a template; assert labels are literal", k)
		}
		a.Labels[k] = v
	}
	if len(r.Annotations) > 0 {
		a.Annotations = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Annotations)) {
		t, err := annotation(r.Annotations[k], o)
		if err != nil {
			return a, fmt.Errorf("annotation %s: %w", k, err)
		}
		a.Annotations[k] = t
	}
	return a, nil
}

// annotation rewrites a Prometheus annotation template for an assert: the
// variables Prometheus defines are defined at the top, so the text itself
// stays as it was.
func annotation(t string, o Options) (string, error) {
	if !strings.Contains(t, "{{") {
		return t, nil
	}
	for _, action := range strings.Split(t, "{{")[1:] {
		body, _, _ := strings.Cut(action, "}}")
		if m := unsupported.FindString(fields.ReplaceAllString(stripStrings(body), "")); m != "" {
			return "", fmt.Errorf("calls %s, which asserts do not offer (add the expression to query: and write .Values.name)", m)
		}
	}
	t = externalLabel.ReplaceAllStringFunc(t, func(m string) string {
		return fmt.Sprintf("%q", o.ExternalLabels[externalLabel.FindStringSubmatch(m)[1]])
	})
	if strings.Contains(t, "$externalLabels") {
		return "", fmt.Errorf("uses $externalLabels other than as $externalLabels.name")
	}
	var pre strings.Builder
	if strings.Contains(t, "$labels") {
		pre.WriteString("{{ $labels := .Labels }}")
	}
	if strings.Contains(t, "$value") {
		pre.WriteString("{{ $value := .Values.value }}")
	}
	if strings.Contains(t, "$externalURL") {
		fmt.Fprintf(&pre, "{{ $externalURL := %q }}", o.ExternalURL)
	}
	return pre.String() + t, nil
}

// stripStrings blanks quoted strings, so that a word inside one is not
// taken for a function.
func stripStrings(s string) string {
	var b strings.Builder
	in := rune(0)
	for _, c := range s {
		switch {
		case in != 0 && c == in:
			in = 0
		case in != 0:
		case c == '"' || c == '`':
			in = c
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
