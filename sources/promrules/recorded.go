package promrules

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/assertd/assertd/config"
)

// Recorded is the metric names the recording rules of set's rule files
// record.
func Recorded(set *config.Set) map[string]bool {
	out := map[string]bool{}
	for _, f := range set.PromRules {
		for _, g := range f.Groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record] = true
				}
			}
		}
	}
	return out
}

// Reads tells which series an expression reads: some that a recording
// rule of recorded records, and some that none records (a selector
// without a metric name is one of those).
func Reads(expr string, recorded map[string]bool) (rec, other bool) {
	e, err := config.RuleFileParser.ParseExpr(expr)
	if err != nil {
		return false, true
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if recorded[vs.Name] {
				rec = true
			} else {
				other = true
			}
		}
		return nil
	})
	return rec, other
}

// LocalRecorded runs on local the queries that read only series the
// recording rules of set record, and the others on query: when the
// recording rules' samples are written to local only (a replay), the rules
// that read them find them there.
func LocalRecorded(set *config.Set, query, local rules.QueryFunc) rules.QueryFunc {
	recorded := Recorded(set)
	if len(recorded) == 0 {
		return query
	}
	var mu sync.Mutex
	onLocal := map[string]bool{}
	return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
		mu.Lock()
		l, ok := onLocal[q]
		if !ok {
			rec, other := Reads(q, recorded)
			l = rec && !other
			onLocal[q] = l
		}
		mu.Unlock()
		if l {
			return local(ctx, q, t)
		}
		return query(ctx, q, t)
	}
}
