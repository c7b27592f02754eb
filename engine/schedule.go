package engine

import (
	"hash/fnv"
	"time"

	"github.com/assertd/assertd/asserts"
)

// offset spreads asserts with the same interval over it, by a stable hash of
// a key (slotKey: the assert's queries, else its name), the way Prometheus
// spreads rule groups: restarts keep the phase.
func offset(name string, every time.Duration) time.Duration {
	if every <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(every))
}

// nextEval returns the first evaluation time of a strictly after t.
func nextEval(a *asserts.Compiled, t time.Time) time.Time {
	return nextEvalAt(a, t, offset(slotKey(a), a.Every))
}

// nextEvalAt is nextEval with evaluations at k*every + off (Unix time).
func nextEvalAt(a *asserts.Compiled, t time.Time, off time.Duration) time.Time {
	if a.Schedule != nil {
		return a.Schedule.Next(t)
	}
	every := a.Every
	base := t.UnixNano() - int64(off)
	k := base / int64(every)
	if base < 0 && base%int64(every) != 0 {
		k-- // floor, so that times before 1970 (a test's origin) align too
	}
	next := time.Unix(0, (k+1)*int64(every)+int64(off))
	if !next.After(t) {
		next = next.Add(every)
	}
	return next.In(t.Location())
}

// missed counts the evaluations of a that fell between last and now,
// exclusive of both: they were skipped because an evaluation ran late.
func missed(a *asserts.Compiled, last, now time.Time) int {
	return missedAt(a, last, now, offset(slotKey(a), a.Every))
}

func missedAt(a *asserts.Compiled, last, now time.Time, off time.Duration) int {
	n := 0
	for t := nextEvalAt(a, last, off); t.Before(now) && n < 1000; t = nextEvalAt(a, t, off) {
		n++
	}
	return n
}

// phase is the offset of a's evaluations: with Options.AlignedAt, the
// one that puts them at AlignedAt, AlignedAt+every … (as assertd test runs
// them), else the spread of its slot key (its queries: querycache.go).
func (e *Engine) phase(a *asserts.Compiled) time.Duration {
	if e.opts.AlignedAt.IsZero() {
		return offset(slotKey(a), a.Every)
	}
	if a.Every <= 0 {
		return 0
	}
	every := int64(a.Every)
	return time.Duration((e.opts.AlignedAt.UnixNano()%every + every) % every)
}
