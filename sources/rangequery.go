package sources

import (
	"context"
	"fmt"
	"math"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd"
)

// RangeSeries is one series of a range query's result: its labels and its
// float points in time order (native-histogram points are left out, as an
// instant query leaves them out).
type RangeSeries struct {
	Labels assertd.Labels
	T      []int64 // milliseconds since the epoch
	V      []float64
}

// QueryRange evaluates q at start, start+step … end through the API's
// /api/v1/query_range, with the source's timeout. Its errors are classified
// as Query's are.
func (r *Remote) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	val, _, _, err := r.api.QueryRange(ctx, q, v1.Range{Start: start, End: end, Step: step}, v1.WithTimeout(r.timeout))
	if err != nil {
		return nil, r.classify(err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: source %s: the range query returns a %s", assertd.ErrBadQuery, r.Name, val.Type())
	}
	out := make([]RangeSeries, 0, len(m))
	for _, s := range m {
		if len(s.Values) == 0 {
			continue
		}
		ls := make(assertd.Labels, len(s.Metric))
		for k, v := range s.Metric {
			ls[string(k)] = string(v)
		}
		se := RangeSeries{Labels: ls, T: make([]int64, len(s.Values)), V: make([]float64, len(s.Values))}
		for i, p := range s.Values {
			se.T[i], se.V[i] = int64(p.Timestamp), float64(p.Value)
		}
		out = append(out, se)
	}
	return out, nil
}

// QueryRange evaluates q at start, start+step … end on the directory's
// TSDB.
func (r *ReadOnly) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	// One querier underneath: its readers are not safe for concurrent use,
	// so the range queries of a directory run one at a time.
	r.mu.Lock()
	defer r.mu.Unlock()
	whole, err := r.wholeQueryable()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", assertd.ErrSourceUnavailable, err)
	}
	return rangeQuery(ctx, r.engine, whole, q, start, end, step)
}

// QueryRange evaluates q at start, start+step … end on the embedded TSDB
// (a replay of the history assertd stored, while it runs).
func (e *Embedded) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	return rangeQuery(ctx, e.engine, e.db, q, start, end, step)
}

func rangeQuery(ctx context.Context, engine *promql.Engine, db storage.Queryable, q string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	qry, err := engine.NewRangeQuery(ctx, db, nil, q, start, end, step)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", assertd.ErrBadQuery, err)
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, classify(res.Err)
	}
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: the range query returns a %s", assertd.ErrBadQuery, res.Value.Type())
	}
	out := make([]RangeSeries, 0, len(m))
	for _, s := range m {
		if len(s.Floats) == 0 {
			continue
		}
		se := RangeSeries{Labels: fromLabels(s.Metric), T: make([]int64, len(s.Floats)), V: make([]float64, len(s.Floats))}
		for i, p := range s.Floats {
			se.T[i], se.V[i] = p.T, p.F
		}
		out = append(out, se)
	}
	return out, nil
}

// wholeQueryable is the directory loaded once, blocks and WAL, for every
// range query of the ReadOnly. r.mu is held.
func (r *ReadOnly) wholeQueryable() (storage.Queryable, error) {
	if r.whole == nil {
		q, err := r.db.Querier(math.MinInt64, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		r.whole = q
	}
	return storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return keepOpen{r.whole}, nil }), nil
}

// keepOpen is a querier whose Close leaves the one underneath open.
type keepOpen struct{ storage.Querier }

func (keepOpen) Close() error { return nil }
