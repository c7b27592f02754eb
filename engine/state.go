// Package engine is the heart of assertd: it schedules each assert, runs
// its evaluations, moves every instance through its state machine, stores
// each transition before acting on it, and decides — remediate, page, or
// wait — with a recorded reason for every decision, including why it did
// not act. It owns the escalation of a page too: later levels, repeats,
// acknowledgements and resolves are its decisions (escalation.go).
package engine

import (
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// Flap detection, Nagios-style: the share of state changes over the last
// flapWindow results, weighted from 0.8 (oldest) to 1.2 (newest). An instance
// starts flapping above FlapHigh and stops below FlapLow.
const (
	flapWindow     = 21
	flapMinHistory = 10 // results needed before an instance can be called flapping
)

// FlapThresholds are the percentages that start and stop flapping.
type FlapThresholds struct {
	High, Low float64
}

// DefaultFlap is the Nagios default.
var DefaultFlap = FlapThresholds{High: 50, Low: 25}

// tracked is one instance as the engine holds it between evaluations.
type tracked struct {
	assertd.Instance
	// history holds the recent results, newest in bit 0 (1 = problem:
	// violated or uncertain); nhistory how many (at most flapWindow).
	history  uint32
	nhistory uint8
	flapping bool
	missing  int    // evaluations in a row without this instance's series
	silenced string // the ID of a silence that matches it, or ""
	// flapPaged: this flapping episode has been paged once already.
	flapPaged bool
	// deferred: the instance is violated but a silence or an expected
	// disruption held the decision back; it is taken when that ends.
	deferred bool
	// inc is the escalation of the instance while it is escalated
	// (escalation.go).
	inc *incident
	// The clocks as last stored, to store them again only when they move.
	savedViolated, savedClear time.Time
	stored                    bool // the instance is in the store
	// saved is the instance as the store last took it (or as it was
	// created); held counts its changes that wait for the store.
	saved saved
	held  int
	// blindEsc: escalated because its state could not be told (uncertain
	// for too long), not for a violation.
	blindEsc bool
}

// saved is what the engine shows of an instance as the store last took
// it while a change waits for the store (view): its state, since when and
// why — not a whole copy of the instance, which a million instances would
// each hold twice.
type saved struct {
	state  assertd.State
	since  time.Time
	reason string
}

func savedOf(in assertd.Instance) saved {
	return saved{state: in.State, since: in.Since, reason: in.Reason}
}

// view is the instance as the engine shows it: while a change waits for
// the store it shows what the store holds (Held, and the state it takes
// once stored, HeldState); a matching silence overlays its state
// (Silenced, with the state underneath in Underlying).
func (t *tracked) view() assertd.Instance {
	in := t.Instance
	if t.held > 0 {
		in.State, in.Since, in.Reason = t.saved.state, t.saved.since, t.saved.reason
		in.Held, in.HeldState = true, t.State
	}
	if in.Silenced != "" {
		in.Underlying, in.State = in.State, assertd.Silenced
	}
	return in
}

// blind reports whether the instance is escalated without a violation
// behind it: it was paged because its state could not be told (uncertain
// for too long), not because it was violated.
func (t *tracked) blind() bool {
	return t.State == assertd.Escalated && t.blindEsc
}

// blindStored tells, for an instance loaded from the store, whether it was
// escalated without a violation: one escalated for a violation was
// violated before it escalated; a blind one was not (its violation clock
// is zero, or started after it escalated).
func blindStored(in assertd.Instance) bool {
	return in.State == assertd.Escalated && (in.ViolatedSince.IsZero() || in.ViolatedSince.After(in.Since))
}

// input is what one evaluation says about an instance.
type input struct {
	now     time.Time
	verdict *asserts.Verdict // nil: the instance's series are missing
	srcErr  error            // the source could not answer
	// uncertain, when set, says why the evaluation cannot tell the
	// instance's state although the source answered (a flood of series).
	uncertain string
}

// why is the reason of an evaluation's result, formatted only when it is
// used: most results change nothing and say nothing new.
type why struct {
	s string
	v *asserts.Verdict // set: the verdict's reason
}

func (w why) String() string {
	if w.v != nil {
		return w.v.Why()
	}
	return w.s
}

// change is a state change the machine decided; it becomes a transition.
type change struct {
	from, to assertd.State
	reason   string
}

// advance moves t by one evaluation of a and returns the state change, if
// any. It does not decide remediation or escalation: entering violated (or
// staying uncertain past uncertain_for) is reported, and the policy acts.
func (t *tracked) advance(a *asserts.Compiled, in input, flap FlapThresholds) *change {
	t.LastEval = in.now
	var verdict assertd.State
	var clears bool
	var reason why
	switch {
	case in.srcErr != nil:
		verdict, reason = assertd.Uncertain, why{s: "source unavailable: " + in.srcErr.Error()}
	case in.uncertain != "":
		verdict, reason = assertd.Uncertain, why{s: in.uncertain}
	case in.verdict == nil:
		t.missing++
		if a.Missing == asserts.MissingResolve {
			if t.missing < 2 || t.State == assertd.OK {
				return nil
			}
			verdict, clears, reason = assertd.OK, true, why{s: "resolved: its series are gone (missing: resolve)"}
		} else {
			verdict, reason = assertd.Uncertain, why{s: "its series are gone while the source is healthy (missing: uncertain)"}
		}
	default:
		t.missing = 0
		verdict, clears, reason = in.verdict.State, in.verdict.Clear, why{v: in.verdict}
		if !in.verdict.SameValues(t.Values) {
			// Keep the map the instance has while the values are the same.
			t.Values = in.verdict.ValueSet()
		}
		t.AlertAnnotations, t.GeneratorURL = in.verdict.Annotations, in.verdict.GeneratorURL
	}
	t.record(verdict != assertd.OK, flap)

	switch t.State {
	case assertd.Remediating:
		// A run is in progress; its verify step decides. Keep the clocks.
		return nil
	case assertd.Escalated:
		if t.blind() {
			return t.unblind(a, verdict, clears, reason, in.now)
		}
		return t.recover(a, verdict, clears, reason, in.now)
	case assertd.Violated:
		return t.recover(a, verdict, clears, reason, in.now)
	}

	switch verdict {
	case assertd.OK:
		t.ViolatedSince = time.Time{}
		if t.State == assertd.OK {
			return nil
		}
		return t.move(assertd.OK, reason.String(), in.now)
	case assertd.Uncertain, assertd.Pending:
		// Pending comes from an alert its sender holds pending (its own for).
		t.ViolatedSince = time.Time{}
		if t.State == verdict {
			t.Reason = reason.String()
			return nil
		}
		return t.move(verdict, reason.String(), in.now)
	}
	// Violated.
	if t.ViolatedSince.IsZero() {
		t.ViolatedSince = in.now
	}
	if in.now.Sub(t.ViolatedSince) >= a.For.Std() {
		return t.move(assertd.Violated, reason.String(), in.now)
	}
	if t.State == assertd.Pending {
		t.Reason = reason.String()
		return nil
	}
	return t.move(assertd.Pending, fmt.Sprintf("%s (for %s)", reason, a.For), in.now)
}

// recover handles a violated or escalated instance: it returns to ok only
// when clear (or expect) has held for clear_for.
func (t *tracked) recover(a *asserts.Compiled, verdict assertd.State, clears bool, reason why, now time.Time) *change {
	if verdict == assertd.Uncertain {
		t.ClearSince = time.Time{}
		t.Reason = reason.String()
		return nil
	}
	if verdict != assertd.OK || !clears {
		t.ClearSince = time.Time{}
		return nil
	}
	if t.ClearSince.IsZero() {
		t.ClearSince = now
	}
	if now.Sub(t.ClearSince) < a.ClearFor.Std() {
		return nil
	}
	t.ViolatedSince, t.ClearSince = time.Time{}, time.Time{}
	return t.move(assertd.OK, "recovered: "+reason.String(), now)
}

// unblind handles an instance escalated while its state could not be told:
// once it is really violated (for its for), it moves to violated, so that
// the policy considers its remediation as for any violation; until then its
// reason says what is known now. It recovers like a violated instance.
func (t *tracked) unblind(a *asserts.Compiled, verdict assertd.State, clears bool, reason why, now time.Time) *change {
	if verdict != assertd.Violated {
		t.ViolatedSince = time.Time{}
		if verdict == assertd.OK {
			t.Reason = reason.String()
		}
		return t.recover(a, verdict, clears, reason, now)
	}
	t.ClearSince = time.Time{}
	if t.ViolatedSince.IsZero() {
		t.ViolatedSince = now
	}
	if now.Sub(t.ViolatedSince) >= a.For.Std() {
		return t.move(assertd.Violated, reason.String(), now)
	}
	t.Reason = fmt.Sprintf("%s (for %s)", reason, a.For)
	return nil
}

func (t *tracked) move(to assertd.State, reason string, now time.Time) *change {
	c := &change{from: t.State, to: to, reason: reason}
	t.State, t.Since, t.Reason, t.blindEsc = to, now, reason, false
	if to == assertd.OK {
		t.ViolatedSince, t.ClearSince = time.Time{}, time.Time{}
	}
	return c
}

// record adds a result to the flap history and updates flapping.
func (t *tracked) record(problem bool, th FlapThresholds) {
	t.history = (t.history << 1) & (1<<flapWindow - 1)
	if problem {
		t.history |= 1
	}
	t.nhistory = min(t.nhistory+1, flapWindow)
	n := int(t.nhistory)
	if n < flapMinHistory {
		return
	}
	var h [flapWindow]bool // oldest first
	for i := range n {
		h[i] = t.history&(1<<(n-1-i)) != 0
	}
	p := flapPercent(h[:n])
	switch {
	case !t.flapping && p > th.High:
		t.flapping = true
	case t.flapping && p < th.Low:
		t.flapping, t.flapPaged = false, false
	}
}

// flapPercent is the weighted share of changes between consecutive results.
func flapPercent(h []bool) float64 {
	if len(h) < 2 {
		return 0
	}
	var changed, total float64
	for i := 1; i < len(h); i++ {
		w := 0.8 + 0.4*float64(i-1)/float64(max(len(h)-2, 1))
		total += w
		if h[i] != h[i-1] {
			changed += w
		}
	}
	return 100 * changed / total
}
