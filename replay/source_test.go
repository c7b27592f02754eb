package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/sources"
)

// fakeRange answers every query with one series holding the evaluation
// time in seconds, and fails the range queries that start in down.
type fakeRange struct {
	mu    sync.Mutex
	calls []string
	down  [2]time.Time
}

func (f *fakeRange) QueryRange(_ context.Context, q string, start, end time.Time, step time.Duration) ([]sources.RangeSeries, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s", q, start.Format("15:04")))
	f.mu.Unlock()
	if !start.Before(f.down[0]) && start.Before(f.down[1]) {
		return nil, errors.New("connection refused")
	}
	s := sources.RangeSeries{Labels: assertd.Labels{"q": q}}
	for t := start; !t.After(end); t = t.Add(step) {
		s.T, s.V = append(s.T, t.UnixMilli()), append(s.V, float64(t.Unix()))
	}
	return []sources.RangeSeries{s}, nil
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	w := window{From: from, To: from.Add(4*time.Hour - 30*time.Second), Step: 30 * time.Second, Chunk: time.Hour}
	f := &fakeRange{down: [2]time.Time{from.Add(time.Hour), from.Add(3 * time.Hour)}}
	h := newHistory("prom", f, w)
	for at := w.From; !at.After(w.To); at = at.Add(w.Step) {
		for _, q := range []string{"a", "b", "a"} { // two asserts share a
			v, err := h.Query(ctx, q, at)
			inOutage := !at.Before(f.down[0]) && at.Before(f.down[1])
			switch {
			case inOutage && !errors.Is(err, assertd.ErrSourceUnavailable):
				t.Fatalf("%s at %s in the outage: %v, want unavailable", q, at, err)
			case !inOutage && (err != nil || len(v.Samples) != 1 || v.Samples[0].Value != float64(at.Unix())):
				t.Fatalf("%s at %s: %+v %v, want its value at that time", q, at, v, err)
			}
		}
	}
	// One range query per query and chunk, whichever asserts share it.
	if len(f.calls) != 8 {
		t.Errorf("range queries %v, want 8 (2 queries × 4 chunks)", f.calls)
	}
	gaps := h.gaps()
	if len(gaps) != 1 || !gaps[0].From.Equal(f.down[0]) || !gaps[0].To.Equal(f.down[1].Add(-w.Step)) ||
		!strings.Contains(gaps[0].Reason, "source unavailable") || !strings.Contains(gaps[0].Reason, "connection refused") {
		t.Errorf("gaps %+v, want the outage 01:00–02:59:30, as one gap", gaps)
	}
	if _, err := h.Query(ctx, "a", w.To.Add(w.Step)); !errors.Is(err, assertd.ErrSourceUnavailable) {
		t.Errorf("a query after the window: %v, want unavailable", err)
	}
	if ms := h.missing([]string{"a"}, "no data"); len(ms) != 1 || !ms[0].From.Equal(f.down[0]) || !ms[0].To.Equal(f.down[1].Add(-w.Step)) || ms[0].Reason != gaps[0].Reason {
		t.Errorf("a missing %+v, want the outage's two hours, for the source's reason", ms)
	}
}
