package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/sources"
)

// RangeSource is a source that answers range queries: sources.Remote and
// sources.ReadOnly.
type RangeSource interface {
	QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]sources.RangeSeries, error)
}

// window is the replayed stretch of time: evaluations happen at From,
// From+Step … To.
type window struct {
	From, To time.Time
	Step     time.Duration
	Chunk    time.Duration // the span of one range query
}

// steps is how many evaluation times the window has.
func (w window) steps() int { return int(w.To.Sub(w.From)/w.Step) + 1 }

// index is the evaluation time at or before ts, and whether ts is inside
// the window.
func (w window) index(ts time.Time) (int, bool) {
	if ts.Before(w.From) || ts.After(w.To) {
		return 0, false
	}
	return int(ts.Sub(w.From) / w.Step), true
}

func (w window) at(i int) time.Time { return w.From.Add(time.Duration(i) * w.Step) }

// perChunk is how many evaluation times one range query covers.
func (w window) perChunk() int { return max(1, int(w.Chunk/w.Step)) }

// chunks is how many range queries cover the window.
func (w window) chunks() int { return (w.steps() + w.perChunk() - 1) / w.perChunk() }

// history is one source's history over the window, as the engine reads it:
// an instant query at an evaluation time is answered from one range query
// over the chunk that holds it. Each distinct query text is evaluated once
// per chunk, whichever asserts share it, and only the current chunk of each
// query is held (the engine moves forward in time), so memory is bounded by
// the chunk, not the window.
type history struct {
	name string
	src  RangeSource
	w    window

	mu      sync.Mutex
	queries map[string]*queryHistory
	// data marks the evaluation times at which some query of this source
	// returned a sample; fetched those at which some query was evaluated.
	data, fetched []bool
	failures      []failure
	rangeQueries  int
}

// failure is a chunk the source could not answer.
type failure struct {
	From, To time.Time
	Err      string
}

// queryHistory is one query's current chunk.
type queryHistory struct {
	mu     sync.Mutex
	scalar bool
	chunk  int // index of the chunk held; -1 none
	// at[i] is the result at the chunk's i-th evaluation time.
	at  []assertd.Vector
	err error
	// data marks the evaluation times at which this query returned a
	// sample; seen the chunks it was evaluated on.
	data, seen []bool
}

func newHistory(name string, src RangeSource, w window) *history {
	n := w.steps()
	return &history{name: name, src: src, w: w, queries: map[string]*queryHistory{}, data: make([]bool, n), fetched: make([]bool, n)}
}

// Query answers the instant query q at ts from the range query of the chunk
// that holds ts. Outside the window it is an error: the replay has no
// history there.
func (h *history) Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error) {
	i, ok := h.w.index(ts)
	if !ok {
		return assertd.Vector{}, fmt.Errorf("%w: source %s: %s is outside the replayed window", assertd.ErrSourceUnavailable, h.name, ts.UTC().Format(time.RFC3339))
	}
	qh := h.query(q)
	qh.mu.Lock()
	defer qh.mu.Unlock()
	c := i / h.w.perChunk()
	if qh.chunk != c {
		h.fetch(ctx, q, qh, c)
	}
	if qh.err != nil {
		return assertd.Vector{}, qh.err
	}
	return qh.at[i-c*h.w.perChunk()], nil
}

func (h *history) query(q string) *queryHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	qh := h.queries[q]
	if qh == nil {
		qh = &queryHistory{chunk: -1, data: make([]bool, h.w.steps()), seen: make([]bool, h.w.chunks())}
		if e, err := promqlParser.ParseExpr(q); err == nil {
			qh.scalar = e.Type() == parser.ValueTypeScalar
		}
		h.queries[q] = qh
	}
	return qh
}

// fetch replaces qh's chunk by chunk c, evaluated as one range query.
func (h *history) fetch(ctx context.Context, q string, qh *queryHistory, c int) {
	per := h.w.perChunk()
	first := c * per
	last := min(first+per, h.w.steps()) - 1
	start, end := h.w.at(first), h.w.at(last)
	qh.chunk, qh.err, qh.at = c, nil, nil
	qh.seen[c] = true
	series, err := h.src.QueryRange(ctx, q, start, end, h.w.Step)
	h.mu.Lock()
	h.rangeQueries++
	for i := first; i <= last; i++ {
		h.fetched[i] = true
	}
	if err != nil {
		if !errors.Is(err, assertd.ErrBadQuery) {
			if !errors.Is(err, assertd.ErrSourceUnavailable) {
				err = fmt.Errorf("%w: %v", assertd.ErrSourceUnavailable, err)
			}
			h.failed(start, end, err.Error())
		}
		h.mu.Unlock()
		qh.err = err
		return
	}
	h.mu.Unlock()
	n := last - first + 1
	// Fresh vectors: the engine may keep what an earlier query returned.
	qh.at = make([]assertd.Vector, n)
	// A series has at most one sample per evaluation time: each time's
	// samples are a full-capacity slice of one array.
	k := len(series)
	buf := make([]assertd.Sample, n*k)
	for i := range qh.at {
		qh.at[i].Scalar = qh.scalar
		qh.at[i].Samples = buf[i*k : i*k : (i+1)*k]
	}
	startMs := start.UnixMilli()
	stepMs := h.w.Step.Milliseconds()
	for _, s := range series {
		for k, t := range s.T {
			i := int((t - startMs) / stepMs)
			if i < 0 || i >= n {
				continue
			}
			qh.at[i].Samples = append(qh.at[i].Samples, assertd.Sample{Labels: s.Labels, Value: s.V[k]})
		}
	}
	h.mu.Lock()
	for i := range n {
		if len(qh.at[i].Samples) > 0 {
			qh.data[first+i] = true
			h.data[first+i] = true
		}
	}
	h.mu.Unlock()
}

// failed records that the chunk from start to end could not be read; the
// queries of a chunk that fail alike are one failure.
func (h *history) failed(start, end time.Time, why string) {
	for _, f := range h.failures {
		if f.From.Equal(start) && f.To.Equal(end) && f.Err == why {
			return
		}
	}
	h.failures = append(h.failures, failure{From: start, To: end, Err: why})
}

// Gap is a stretch of the window in which a source returned nothing to any
// query, or could not be read.
type Gap struct {
	Source string    `json:"source"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
}

// gaps are the source's failures and the stretches, among the evaluation
// times at which it was queried, where no query returned a sample.
func (h *history) gaps() []Gap {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Gap
	fs := slices.Clone(h.failures)
	sort.Slice(fs, func(i, j int) bool { return fs[i].From.Before(fs[j].From) })
	for _, f := range fs {
		if n := len(out); n > 0 && out[n-1].Reason == f.Err && !f.From.After(out[n-1].To.Add(h.w.Step)) {
			out[n-1].To = maxTime(out[n-1].To, f.To) // the next chunk failed alike: one gap
			continue
		}
		out = append(out, Gap{Source: h.name, From: f.From, To: f.To, Reason: f.Err})
	}
	failed := func(i int) bool {
		t := h.w.at(i)
		for _, f := range h.failures {
			if !t.Before(f.From) && !t.After(f.To) {
				return true
			}
		}
		return false
	}
	start := -1
	flush := func(end int) {
		if start >= 0 {
			out = append(out, Gap{Source: h.name, From: h.w.at(start), To: h.w.at(end), Reason: "no data: no query returned a sample"})
			start = -1
		}
	}
	for i := range h.data {
		empty := h.fetched[i] && !h.data[i] && !failed(i)
		switch {
		case empty && start < 0:
			start = i
		case !empty:
			flush(i - 1)
		}
	}
	flush(len(h.data) - 1)
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readAll evaluates q on every chunk of the window it was not evaluated
// on, for what it says of the data, and keeps none of its results.
func (h *history) readAll(ctx context.Context, q string) {
	qh := h.query(q)
	qh.mu.Lock()
	defer qh.mu.Unlock()
	for c := range h.w.chunks() {
		if ctx.Err() != nil {
			return
		}
		if !qh.seen[c] {
			h.fetch(ctx, q, qh, c)
		}
	}
	qh.chunk, qh.at = -1, nil
}

// present marks the evaluation times at which one of qs returned a sample.
func (h *history) present(qs []string) []bool {
	out := make([]bool, h.w.steps())
	for _, q := range qs {
		h.mu.Lock()
		qh := h.queries[q]
		h.mu.Unlock()
		if qh == nil {
			continue
		}
		qh.mu.Lock()
		for i, d := range qh.data {
			out[i] = out[i] || d
		}
		qh.mu.Unlock()
	}
	return out
}

// missing are the stretches of the window in which none of qs returned a
// sample, each with its reason: the source's failure, or no data.
func (h *history) missing(qs []string, why string) []Gap {
	data := h.present(qs)
	h.mu.Lock()
	defer h.mu.Unlock()
	reason := func(i int) string {
		t := h.w.at(i)
		for _, f := range h.failures {
			if !t.Before(f.From) && !t.After(f.To) {
				return f.Err
			}
		}
		return why
	}
	var out []Gap
	for i, d := range data {
		if d {
			continue
		}
		r := reason(i)
		if n := len(out); n > 0 && out[n-1].Reason == r && out[n-1].To.Equal(h.w.at(i-1)) {
			out[n-1].To = h.w.at(i)
			continue
		}
		out = append(out, Gap{Source: h.name, From: h.w.at(i), To: h.w.at(i), Reason: r})
	}
	return out
}

// promqlParser tells a scalar query from a vector one: a range query
// returns both as a matrix, an instant query does not.
var promqlParser = parser.NewParser(parser.Options{})
