package replay

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
)

func TestProbes(t *testing.T) {
	parse := func(s string) parser.Expr {
		e, err := config.RuleFileParser.ParseExpr(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	recorded := map[string][]parser.Expr{
		"job:errors:rate5m": {parse(`sum by (job) (rate(errors_total[5m]))`)},
		"job:ratio":         {parse(`job:errors:rate5m / on (job) sum by (job) (rate(requests_total{code!="404"}[5m]))`)},
	}
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up{job="api"} == 0`, []string{`count(up{job="api"})`}},
		{`rate(x[5m] offset 1h) > 2 and on () y`, []string{`count(last_over_time(x[5m] offset 1h))`, `count(y)`}},
		// Through the recording rules, to the series the source holds.
		{`job:ratio > 0.05`, []string{`count(last_over_time(errors_total[5m]))`, `count(last_over_time(requests_total{code!="404"}[5m]))`}},
		{`absent(heartbeat_seconds)`, []string{`count(heartbeat_seconds)`}},
	} {
		got := probes(parse(c.expr), recorded, map[string]bool{})
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("probes of %s: %q, want %q", c.expr, got, c.want)
		}
	}
}

// TestRuleReads: the binding's assert reads what its rule reads, and
// through the recording rule when the alert is built on it.
func TestRuleReads(t *testing.T) {
	for _, c := range []struct {
		edits  []string
		alerts []string
		probes []string
	}{
		{nil, []string{`api_error_ratio{job="api"} > 0.05`}, []string{`count(api_error_ratio{job="api"})`}},
		{[]string{`expr: api_error_ratio{job="api"} > 0.05`, `expr: instance:api_error_ratio:max > 0.05`},
			[]string{`instance:api_error_ratio:max > 0.05`}, []string{`count(api_error_ratio{job="api"})`}},
		// A binding on another severity than the rule's takes none of its alerts.
		{[]string{`match: '{alertname="ApiErrors"}'`, `match: '{alertname="ApiErrors", severity="page"}'`}, nil, nil},
	} {
		set, errs := config.Load(rules(t, "promrules", "http://127.0.0.1:9090", c.edits...))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if !slices.ContainsFunc(set.Asserts, func(a *asserts.Compiled) bool { return a.Name == "ApiErrors" && a.Trigger != nil }) {
			t.Fatalf("with %q: no binding assert ApiErrors", c.edits)
		}
		rr := ruleReads(set)["ApiErrors"]
		if !slices.Equal(rr.Alerts, c.alerts) || !slices.Equal(rr.Probes, c.probes) {
			t.Errorf("with %q: alerts %q, probes %q; want %q, %q", c.edits, rr.Alerts, rr.Probes, c.alerts, c.probes)
		}
	}
}
