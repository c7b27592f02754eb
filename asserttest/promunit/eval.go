package promunit

// The evaluation loop and comparisons below are ported from promtool's
// cmd/promtool/unittest.go (github.com/prometheus/prometheus v0.315.0,
// Copyright The Prometheus Authors, Apache License 2.0). Differences: the
// output goes to the runner's writers, go-cmp's comparisons are written
// out (the same semantics: exact float equality, or within one ULP under
// fuzzy_compare), and --diff's coloured JSON diff is not offered.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// test runs one test group.
func (r *Runner) test(tg *testGroup, testname string, evalInterval time.Duration, groupOrderMap map[string]int, fuzzyCompare bool, ruleFiles ...string) (outErr []error) {
	if r.opts.Debug {
		testStart := time.Now()
		fmt.Fprintf(r.opts.Stderr, "DEBUG: Starting test %s\n", testname)
		defer func() {
			fmt.Fprintf(r.opts.Stderr, "DEBUG: Test %s finished, took %v\n", testname, time.Since(testStart))
		}()
	}
	queryOpts := r.queryOpts()
	queryOpts.StartTime = tg.StartTimestamp.Time
	suite, err := promqltest.NewLazyLoader(tg.seriesLoadingString(), queryOpts)
	if err != nil {
		return []error{err}
	}
	defer func() {
		if err := suite.Close(); err != nil {
			outErr = append(outErr, err)
		}
	}()
	suite.SubqueryInterval = evalInterval

	opts := &rules.ManagerOptions{
		QueryFunc:  rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		Appendable: suite.Storage(),
		Context:    context.Background(),
		NotifyFunc: func(context.Context, string, ...*rules.Alert) {},
		Logger:     promslog.NewNopLogger(),
		Parser:     r.parser,
	}
	m := rules.NewManager(opts)
	groupsMap, ers := m.LoadGroups(time.Duration(tg.Interval), tg.ExternalLabels, tg.ExternalURL, nil, r.opts.IgnoreUnknownFields, ruleFiles...)
	if ers != nil {
		return ers
	}
	groups := orderedGroups(groupsMap, groupOrderMap)

	mint := time.Unix(0, 0).UTC()
	if !tg.StartTimestamp.IsZero() {
		mint = tg.StartTimestamp.Time
	}
	maxt := mint.Add(tg.maxEvalTime())

	eq := func(x, y float64) bool { return x == y }
	if fuzzyCompare {
		eq = func(x, y float64) bool {
			return x == y || math.Nextafter(x, math.Inf(-1)) == y || math.Nextafter(x, math.Inf(1)) == y
		}
	}

	// The alert tests by evaluation time, so that alerts are checked as
	// the rules are evaluated rather than kept for every evaluation.
	alertsInTest := make(map[model.Duration]map[string]struct{})
	alertTests := make(map[model.Duration][]alertTestCase)
	var alertEvalTimes []model.Duration
	for _, alert := range tg.AlertRuleTests {
		if alert.Alertname == "" {
			var testGroupLog string
			if tg.TestGroupName != "" {
				testGroupLog = fmt.Sprintf(" (in TestGroup %s)", tg.TestGroupName)
			}
			return []error{fmt.Errorf("an item under alert_rule_test misses required attribute alertname at eval_time %v%s", alert.EvalTime, testGroupLog)}
		}
		if _, ok := alertsInTest[alert.EvalTime]; !ok {
			alertsInTest[alert.EvalTime] = make(map[string]struct{})
			alertEvalTimes = append(alertEvalTimes, alert.EvalTime)
		}
		alertsInTest[alert.EvalTime][alert.Alertname] = struct{}{}
		alertTests[alert.EvalTime] = append(alertTests[alert.EvalTime], alert)
	}
	slices.Sort(alertEvalTimes)
	curr := 0

	for _, g := range groups {
		for _, rule := range g.Rules() {
			if ar, ok := rule.(*rules.AlertingRule); ok {
				// Restored, so that the ALERTS series is written from the
				// first evaluation.
				ar.SetRestored(true)
			}
		}
	}

	var errs []error
	for ts := mint; !ts.After(maxt); ts = ts.Add(evalInterval) {
		var evalErrs []error
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, rule := range g.Rules() {
					if rule.LastError() != nil {
						evalErrs = append(evalErrs, fmt.Errorf("    rule: %s, time: %s, err: %w",
							rule.Name(), ts.Sub(time.Unix(0, 0).UTC()), rule.LastError()))
					}
				}
			}
		})
		errs = append(errs, evalErrs...)
		// Stop here only on evaluation errors, not on failed expectations.
		if len(evalErrs) > 0 {
			return errs
		}

		// An eval_time with ts <= eval_time < ts+evalInterval is checked
		// against the evaluation at ts.
		for curr < len(alertEvalTimes) && ts.Sub(mint) <= time.Duration(alertEvalTimes[curr]) &&
			time.Duration(alertEvalTimes[curr]) < ts.Add(evalInterval).Sub(mint) {
			t := alertEvalTimes[curr]
			presentAlerts := alertsInTest[t]
			got := make(map[string]labelsAndAnnotations)
			// The same alert name may be in several groups.
			for _, g := range groups {
				for _, rule := range g.Rules() {
					ar, ok := rule.(*rules.AlertingRule)
					if !ok {
						continue
					}
					if _, ok := presentAlerts[ar.Name()]; !ok {
						continue
					}
					var alerts labelsAndAnnotations
					for _, a := range ar.ActiveAlerts() {
						if a.State == rules.StateFiring {
							alerts = append(alerts, labelAndAnnotation{Labels: a.Labels.Copy(), Annotations: a.Annotations.Copy()})
						}
					}
					got[ar.Name()] = append(got[ar.Name()], alerts...)
				}
			}
			for _, testcase := range alertTests[t] {
				gotAlerts := got[testcase.Alertname]
				var expAlerts labelsAndAnnotations
				for _, a := range testcase.ExpAlerts {
					// alertname is added by the rule, not written in the test.
					if a.ExpLabels == nil {
						a.ExpLabels = make(map[string]string)
					}
					a.ExpLabels[labels.AlertName] = testcase.Alertname
					expAlerts = append(expAlerts, labelAndAnnotation{
						Labels:      labels.FromMap(a.ExpLabels),
						Annotations: labels.FromMap(a.ExpAnnotations),
					})
				}
				sort.Sort(gotAlerts)
				sort.Sort(expAlerts)
				if !alertsEqual(expAlerts, gotAlerts) {
					var testName string
					if tg.TestGroupName != "" {
						testName = fmt.Sprintf("    name: %s,\n", tg.TestGroupName)
					}
					expString := indentLines(expAlerts.String(), "            ")
					gotString := indentLines(gotAlerts.String(), "            ")
					errs = append(errs, fmt.Errorf("%s    alertname: %s, time: %s, \n        exp:%v, \n        got:%v",
						testName, testcase.Alertname, testcase.EvalTime.String(), expString, gotString))
				}
			}
			curr++
		}
	}

	errs = append(errs, r.exprTests(tg, suite, mint, eq)...)

	if r.opts.Debug {
		r.dump(tg, suite, mint)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// exprTests checks promql_expr_test after every evaluation has run.
func (r *Runner) exprTests(tg *testGroup, suite *promqltest.LazyLoader, mint time.Time, eq func(x, y float64) bool) []error {
	var errs []error
Outer:
	for _, testCase := range tg.PromqlExprTests {
		got, err := query(suite.Context(), testCase.Expr, mint.Add(time.Duration(testCase.EvalTime)),
			suite.QueryEngine(), suite.Queryable())
		if err != nil {
			errs = append(errs, fmt.Errorf("    expr: %q, time: %s, err: %s", testCase.Expr,
				testCase.EvalTime.String(), err.Error()))
			continue
		}
		var gotSamples []parsedSample
		for _, s := range got {
			gotSamples = append(gotSamples, parsedSample{
				Labels:    s.Metric.Copy(),
				Value:     s.F,
				Histogram: promqltest.HistogramTestExpression(s.H),
			})
		}
		var expSamples []parsedSample
		for _, s := range testCase.ExpSamples {
			lb, err := r.parser.ParseMetric(s.Labels)
			var hist *histogram.FloatHistogram
			if err == nil && s.Histogram != "" {
				_, values, parseErr := r.parser.ParseSeriesDesc("{} " + s.Histogram)
				switch {
				case parseErr != nil:
					err = parseErr
				case len(values) != 1:
					err = fmt.Errorf("expected 1 value, got %d", len(values))
				case values[0].Histogram == nil:
					err = fmt.Errorf("expected histogram, got %v", values[0])
				default:
					hist = values[0].Histogram
				}
			}
			if err != nil {
				err = fmt.Errorf("labels %q: %w", s.Labels, err)
				errs = append(errs, fmt.Errorf("    expr: %q, time: %s, err: %w", testCase.Expr,
					testCase.EvalTime.String(), err))
				continue Outer
			}
			expSamples = append(expSamples, parsedSample{
				Labels:    lb,
				Value:     s.Value,
				Histogram: promqltest.HistogramTestExpression(hist),
			})
		}
		sort.Slice(expSamples, func(i, j int) bool {
			return labels.Compare(expSamples[i].Labels, expSamples[j].Labels) <= 0
		})
		sort.Slice(gotSamples, func(i, j int) bool {
			return labels.Compare(gotSamples[i].Labels, gotSamples[j].Labels) <= 0
		})
		if !samplesEqual(expSamples, gotSamples, eq) {
			errs = append(errs, fmt.Errorf("    expr: %q, time: %s,\n        exp: %v\n        got: %v", testCase.Expr,
				testCase.EvalTime.String(), parsedSamplesString(expSamples), parsedSamplesString(gotSamples)))
		}
	}
	return errs
}

// dump prints all data at the group's last evaluation (promtool --debug).
func (r *Runner) dump(tg *testGroup, suite *promqltest.LazyLoader, mint time.Time) {
	// A test may be at fractional seconds, which PromQL cannot represent:
	// round up to the next whole second.
	ts := (tg.maxEvalTime() + time.Second).Truncate(time.Second)
	expr := fmt.Sprintf(`{__name__=~".+"}[%v]`, ts)
	q, err := suite.QueryEngine().NewInstantQuery(context.Background(), suite.Queryable(), nil, expr, mint.Add(ts))
	if err != nil {
		fmt.Fprintf(r.opts.Stderr, "DEBUG: Failed querying, expr: %q, err: %v\n", expr, err)
		return
	}
	res := q.Exec(suite.Context())
	if res.Err != nil {
		fmt.Fprintf(r.opts.Stderr, "DEBUG: Failed query exec, expr: %q, err: %v\n", expr, res.Err)
		return
	}
	switch v := res.Value.(type) {
	case promql.Matrix:
		fmt.Fprintf(r.opts.Stderr, "DEBUG: Dump of all data (input_series and rules) at %v:\n", ts)
		fmt.Fprintln(r.opts.Stderr, v.String())
	default:
		fmt.Fprintf(r.opts.Stderr, "DEBUG: Got unexpected type %T\n", v)
	}
}

// alertsEqual is go-cmp's Equal on the sorted alerts with labels.Equal.
func alertsEqual(a, b labelsAndAnnotations) bool {
	// cmp.Equal tells a nil slice from an empty one only when one side is
	// nil and the other is not; both come from appends here, so lengths
	// decide.
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !labels.Equal(a[i].Labels, b[i].Labels) || !labels.Equal(a[i].Annotations, b[i].Annotations) {
			return false
		}
	}
	return true
}

// samplesEqual is go-cmp's Equal on the sorted samples: labels by
// labels.Equal, values by eq, histograms by their test expression.
func samplesEqual(a, b []parsedSample, eq func(x, y float64) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !labels.Equal(a[i].Labels, b[i].Labels) || !eq(a[i].Value, b[i].Value) || a[i].Histogram != b[i].Histogram {
			return false
		}
	}
	return true
}

// seriesLoadingString returns the input series in promqltest's notation.
func (tg *testGroup) seriesLoadingString() string {
	var result strings.Builder
	fmt.Fprintf(&result, "load %v\n", shortDuration(tg.Interval))
	for _, is := range tg.InputSeries {
		fmt.Fprintf(&result, "  %v %v\n", is.Series, is.Values)
	}
	return result.String()
}

func shortDuration(d model.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// orderedGroups orders the groups by group_eval_order (a partial order:
// groups not listed come first, in map order, as in promtool).
func orderedGroups(groupsMap map[string]*rules.Group, groupOrderMap map[string]int) []*rules.Group {
	groups := make([]*rules.Group, 0, len(groupsMap))
	for _, g := range groupsMap {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		return groupOrderMap[groups[i].Name()] < groupOrderMap[groups[j].Name()]
	})
	return groups
}

// maxEvalTime is the latest eval_time of the group's tests.
func (tg *testGroup) maxEvalTime() time.Duration {
	var maxd model.Duration
	for _, alert := range tg.AlertRuleTests {
		maxd = max(maxd, alert.EvalTime)
	}
	for _, pet := range tg.PromqlExprTests {
		maxd = max(maxd, pet.EvalTime)
	}
	return time.Duration(maxd)
}

func query(ctx context.Context, qs string, t time.Time, engine *promql.Engine, qu storage.Queryable) (promql.Vector, error) {
	q, err := engine.NewInstantQuery(ctx, qu, nil, qs, t)
	if err != nil {
		return nil, err
	}
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		return v, nil
	case promql.Scalar:
		return promql.Vector{promql.Sample{T: v.T, F: v.V, Metric: labels.Labels{}}}, nil
	default:
		return nil, errors.New("rule result is not a vector or scalar")
	}
}
