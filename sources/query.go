// Package sources is where values come from: the embedded Prometheus TSDB
// (fed by scraping and by remote-write) and remote Prometheus-compatible query
// APIs (Prometheus, Thanos, Mimir, VictoriaMetrics). Every source answers an
// instant query at a given time with an assertd.Vector, and its errors say
// whether the source is unavailable (the engine's instances become uncertain)
// or the query is bad (a configuration error). No data is an empty vector.
package sources

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd"
)

// instantQuery runs qs at ts with the promql engine over q.
func instantQuery(ctx context.Context, eng *promql.Engine, q storage.Queryable, qs string, ts time.Time) (assertd.Vector, error) {
	qry, err := eng.NewInstantQuery(ctx, q, nil, qs, ts)
	if err != nil {
		return assertd.Vector{}, fmt.Errorf("%w: %v", assertd.ErrBadQuery, err)
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return assertd.Vector{}, classify(res.Err)
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := assertd.Vector{Samples: make([]assertd.Sample, 0, len(v))}
		for _, s := range v {
			if s.H != nil {
				continue // native histograms have no single value; use histogram_quantile()
			}
			out.Samples = append(out.Samples, assertd.Sample{Labels: fromLabels(s.Metric), Value: s.F})
		}
		return out, nil
	case promql.Scalar:
		return assertd.Vector{Scalar: true, Samples: []assertd.Sample{{Labels: assertd.Labels{}, Value: v.V}}}, nil
	default:
		return assertd.Vector{}, fmt.Errorf("%w: the query returns a %s; it must return an instant vector or a scalar", assertd.ErrBadQuery, res.Value.Type())
	}
}

// classify sorts a promql execution error into unavailable or bad query.
func classify(err error) error {
	var (
		timeout promql.ErrQueryTimeout
		cancel  promql.ErrQueryCanceled
		stor    promql.ErrStorage
	)
	switch {
	case errors.As(err, &timeout), errors.As(err, &cancel), errors.As(err, &stor),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %v", assertd.ErrSourceUnavailable, err)
	}
	return fmt.Errorf("%w: %v", assertd.ErrBadQuery, err)
}

func fromLabels(ls labels.Labels) assertd.Labels {
	out := make(assertd.Labels, ls.Len())
	ls.Range(func(l labels.Label) { out[l.Name] = l.Value })
	return out
}

func newEngine(o EngineOptions) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger,
		Reg:                  o.Registerer,
		MaxSamples:           50_000_000,
		Timeout:              o.timeout(),
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
}

// EngineOptions configure the PromQL engine of the embedded source.
type EngineOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Timeout    time.Duration         // per query; default 2m
}

func (o EngineOptions) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 2 * time.Minute
}
