package engine

import (
	"hash/fnv"
	"time"

	"github.com/assertd/assertd/asserts"
)

// offset spreads asserts with the same interval over it, by a stable hash of
// the name, the way Prometheus spreads rule groups: restarts keep the phase.
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
	if a.Schedule != nil {
		return a.Schedule.Next(t)
	}
	every := a.Every
	off := offset(phase(a), every)
	// Evaluations happen at k*every + off (Unix time).
	base := t.UnixNano() - int64(off)
	k := base / int64(every)
	next := time.Unix(0, (k+1)*int64(every)+int64(off))
	if !next.After(t) {
		next = next.Add(every)
	}
	return next.In(t.Location())
}

// missed counts the evaluations of a that fell between last and now,
// exclusive of both: they were skipped because an evaluation ran late.
func missed(a *asserts.Compiled, last, now time.Time) int {
	n := 0
	for t := nextEval(a, last); t.Before(now) && n < 1000; t = nextEval(a, t) {
		n++
	}
	return n
}
