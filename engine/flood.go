package engine

import (
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// A flood is an assert whose evaluation returns more series than its
// max_instances: every new label value would be a new instance with its
// own lock and its own run, so past the cap no instance is created and the
// assert's instances are uncertain (never remediated blindly); once they
// have been uncertain for uncertain_for, one page goes out for the flood,
// not one per instance and not one per evaluation. It ends at the first
// evaluation within the cap.
type flood struct {
	since  time.Time
	series int
}

// standIn is the fingerprint of the instance that stands for an assert
// whose source failed (or that flooded) before any instance was known.
var standIn = assertd.Labels{}.Fingerprint()

// group names the flood's page.
func (f *flood) group(assert string) string {
	return fmt.Sprintf("flood/%s/%d", assert, f.since.UnixMicro())
}

// checkFlood counts the instances an evaluation would leave the assert
// with and returns why its state cannot be told when that passes the cap,
// or "". Called with e.mu held.
func (e *Engine) checkFlood(a *asserts.Compiled, vs []asserts.Verdict, insts map[string]*tracked, now time.Time) string {
	limit := a.MaxInstances
	if limit <= 0 {
		limit = asserts.DefaultMaxInstances
	}
	n := len(insts)
	if t := insts[standIn]; t != nil && len(t.Labels) == 0 {
		n-- // the instance that stands for the assert while nothing is known
	}
	if len(vs)+n > limit { // only then is it worth counting exactly
		seen := make(map[string]bool, len(vs))
		for i := range vs {
			var fp string
			if _, ok := vs[i].Label(LifecycleLabel); ok {
				ls := vs[i].LabelSet().Copy()
				delete(ls, LifecycleLabel)
				fp = ls.Fingerprint()
			} else {
				fp = string(vs[i].AppendFingerprint(nil))
			}
			if (insts[fp] == nil || fp == standIn) && !seen[fp] {
				seen[fp] = true
				n++
			}
		}
	}
	f := e.floods[a.Name]
	if n <= limit {
		if f != nil {
			delete(e.floods, a.Name)
			e.log.Info("the assert is back within max_instances: evaluated again", "assert", a.Name, "instances", n, "max_instances", limit)
		}
		return ""
	}
	if f == nil {
		f = &flood{since: now}
		e.floods[a.Name] = f
		e.metrics.floods.WithLabelValues(a.Name).Inc()
		e.log.Warn("the assert has more series than max_instances: its state cannot be told", "assert", a.Name, "instances", n, "max_instances", limit)
	}
	f.series = n
	return fmt.Sprintf("too many instances: the query returned series for %d instances, more than max_instances %d (since %s): no new instance is created and the state cannot be told, so nothing is remediated; find what adds label values (injected series?) or raise max_instances",
		n, limit, f.since.UTC().Format(time.RFC3339))
}

// Floods returns the asserts past their max_instances, with the number of
// instances their last evaluation would have made.
func (e *Engine) Floods() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for a, f := range e.floods {
		out[a] = f.series
	}
	return out
}
