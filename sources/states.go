package sources

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd"
)

// StatesMetric is the series assertd writes for each instance, as
// Prometheus writes ALERTS for each alert: ASSERTS{assert, state, …labels} 1.
const StatesMetric = "ASSERTS"

// StateRecorder writes the instances' states into the embedded TSDB, so
// that PromQL clients chart them beside the metrics they came from. A
// series whose instance left that state (or vanished) gets a stale marker,
// so it ends at once as Prometheus' ALERTS do.
type StateRecorder struct {
	app storage.Appendable

	mu   sync.Mutex
	last map[uint64]labels.Labels // the series written at the last Record
}

// NewStateRecorder writes to app (Embedded.Appendable).
func NewStateRecorder(app storage.Appendable) *StateRecorder {
	return &StateRecorder{app: app, last: map[uint64]labels.Labels{}}
}

// Series returns the series of an instance: its labels, then assert and
// state (which win), named ASSERTS.
func Series(in assertd.Instance) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range in.Labels {
		b.Set(k, v)
	}
	b.Set("assert", in.Assert)
	b.Set("state", string(in.State))
	b.Set(model.MetricNameLabel, StatesMetric)
	return b.Labels()
}

// Record writes one sample of 1 per instance at at, and stale markers for
// the series of the last Record that are gone.
func (s *StateRecorder) Record(ctx context.Context, ins []assertd.Instance, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ap := s.app.Appender(ctx)
	ts := at.UnixMilli()
	now := make(map[uint64]labels.Labels, len(ins))
	for _, in := range ins {
		ls := Series(in)
		now[ls.Hash()] = ls
		if _, err := ap.Append(0, ls, ts, 1); err != nil {
			_ = ap.Rollback()
			return err
		}
	}
	for h, ls := range s.last {
		if _, ok := now[h]; !ok {
			if _, err := ap.Append(0, ls, ts, math.Float64frombits(value.StaleNaN)); err != nil {
				_ = ap.Rollback()
				return err
			}
		}
	}
	if err := ap.Commit(); err != nil {
		return err
	}
	s.last = now
	return nil
}
