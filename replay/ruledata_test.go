package replay

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

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
