package sources

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// RuleQuery is how Prometheus rules query the embedded TSDB: its PromQL
// engine over its samples, as Prometheus' own rule manager queries its
// local storage (rules.EngineQueryFunc).
func (e *Embedded) RuleQuery() rules.QueryFunc { return rules.EngineQueryFunc(e.engine, e.db) }

// Queryable is the embedded TSDB's samples, for readers that need more than
// an instant query (the rules' for-state restore).
func (e *Embedded) Queryable() storage.Queryable { return e.db }

// RuleQueryFunc runs Prometheus rules' queries on a source that answers
// instant queries (a remote Prometheus API): each result sample at the
// evaluation time, as the remote's engine returned it.
func RuleQueryFunc(q Querier) rules.QueryFunc {
	return func(ctx context.Context, qs string, t time.Time) (promql.Vector, error) {
		v, err := q.Query(ctx, qs, t)
		if err != nil {
			return nil, err
		}
		out := make(promql.Vector, 0, len(v.Samples))
		for _, s := range v.Samples {
			out = append(out, promql.Sample{Metric: labels.FromMap(s.Labels), F: s.Value, T: t.UnixMilli()})
		}
		return out, nil
	}
}
