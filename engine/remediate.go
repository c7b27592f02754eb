package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
)

// Remediator is what the engine needs from the remediation runner
// (remediations.Runner): the gates' decision, the runs, and the operator
// actions that reach a waiting run or a gate. The engine commits each
// decision before it calls Start.
type Remediator interface {
	// Decide is asked when an instance of an assert naming remediation
	// turns violated. It returns ActRemediate or ActShadow to run it, or
	// ActHold / ActEscalate with the refusal's reason (the engine then pages).
	Decide(ctx context.Context, remediation string, in assertd.Instance, now time.Time) assertd.Decision
	// Start runs the decided remediation in the background under d.RunID
	// (creating the run is idempotent) and calls done exactly once.
	Start(ctx context.Context, d assertd.Decision, in assertd.Instance, done func(RunResult))
	// StartManual is Start for a run a human started (break glass): that
	// human is its approval, so it does not wait for one.
	StartManual(ctx context.Context, d assertd.Decision, in assertd.Instance, done func(RunResult))
	// ApprovalDecided wakes the run waiting for this approval, which the
	// engine has just recorded.
	ApprovalDecided(runID string)
	// Interrupted counts a run the store marked interrupted (its process
	// stopped, or its replica lost the share, while it ran).
	Interrupted(run assertd.Run)
	// The blast-radius breaker, as operators see and close it.
	Breakers
}

// NewRemediator builds the Remediator of an engine. The runner and the
// engine need each other — the runner verifies against the engine, counts
// its instances and reads its remediations (remediations.Host) — so
// engine.New builds the runner, once, on the engine it is making.
type NewRemediator func(host remediations.Host) Remediator

// RunResult is how a run ended. It is an alias of assertd.RunResult so that
// a runner outside the engine (remediations.Runner) has the same Start.
type RunResult = assertd.RunResult

func (e *Engine) startRun(ctx context.Context, a *asserts.Compiled, d assertd.Decision, in assertd.Instance) {
	ctx = e.fence(ctx, a.Name) // the run's every write: it stops when the share moves
	unsilence := e.silenceAlerts(ctx, a, d, in)
	e.rem.Start(ctx, d, in, func(r RunResult) {
		unsilence(context.WithoutCancel(ctx))
		e.runFinished(context.WithoutCancel(ctx), a.Name, in.Fingerprint, r)
	})
}

// runFinished moves an instance whose run ended: verified → ok with an
// informational message (never a page); anything else → escalated, paged
// with the run's step log.
func (e *Engine) runFinished(ctx context.Context, assert, fp string, r RunResult) {
	if r.Shadow {
		return
	}
	e.mu.Lock()
	a := e.asserts[assert]
	t := e.instances[assert][fp]
	if a == nil || t == nil || t.State != assertd.Remediating {
		e.mu.Unlock()
		return
	}
	from := t.State
	to, kind, action := assertd.Escalated, assertd.NoticeTrigger, assertd.ActEscalate
	reason := fmt.Sprintf("remediation %s did not fix it (run %s): %s", a.Remediate, r.RunID, r.Outcome)
	if r.Verified {
		to, kind, action = assertd.OK, assertd.NoticeInfo, assertd.ActNotify
		reason = fmt.Sprintf("fixed by remediation %s (run %s): %s", a.Remediate, r.RunID, r.Outcome)
		t.ViolatedSince, t.ClearSince = time.Time{}, time.Time{}
	}
	t.State, t.Since, t.Reason = to, r.At, reason
	inst := t.Instance
	e.mu.Unlock()
	tr := assertd.Transition{Assert: assert, Fingerprint: fp, Labels: inst.Labels, From: from, To: to, At: r.At, Reason: reason, Values: inst.Values}
	d := assertd.Decision{Assert: assert, Fingerprint: fp, At: r.At, Action: action, Reason: reason, Policy: e.policyName(a), RunID: r.RunID}
	msgs := e.messages(a, inst, kind, reason, r.At)
	for i := range msgs {
		msgs[i].Key = "run/" + r.RunID + "/" + msgs[i].Channel
	}
	if len(msgs) > 0 && r.StepLog != "" {
		for i := range msgs {
			msgs[i].Payload = withStepLog(msgs[i].Payload, r.RunID, r.StepLog)
		}
	}
	if to == assertd.Escalated {
		e.opened(t, r.At, msgs, true)
	} else if e.paged(t) {
		// It was paged before the run (escalated while uncertain, then
		// violated): the fix resolves that page.
		resolves, channels := e.resolves(ctx, a, t, inst, reason, r.At)
		msgs = append(msgs, resolves...)
		d.Reason = resolveReason(reason, channels)
	}
	e.commit(ctx, store.Change{Key: "run/" + r.RunID, Instance: &inst, Transition: &tr, Decision: &d, Messages: msgs})
	if to == assertd.Escalated {
		e.poke() // Run schedules the incident's later levels
	}
}

// Verify evaluates an assert now for the instance with these labels (its
// instances that agree with them on every label they share) and reports
// whether it holds. A verify step of a remediation calls it.
func (e *Engine) Verify(ctx context.Context, assert string, labels assertd.Labels, now time.Time) (bool, string, error) {
	e.mu.Lock()
	a := e.asserts[assert]
	e.mu.Unlock()
	if a == nil {
		return false, "", fmt.Errorf("no assert %q", assert)
	}
	if a.Trigger != nil {
		return e.verifyAlert(ctx, a, labels, now)
	}
	q, err := e.querier(a)
	if err != nil {
		return false, "", err
	}
	ev := a.Evaluate(ctx, q, e.heartbeatFunc(now), now)
	if ev.SourceErr != nil {
		return false, "", ev.SourceErr
	}
	matched := 0
	for _, v := range ev.Verdicts {
		if !agree(v.Labels, labels) {
			continue
		}
		matched++
		if v.State != assertd.OK {
			return false, fmt.Sprintf("%s is %s: %s", assert, v.State, v.Reason), nil
		}
	}
	if matched == 0 {
		return false, fmt.Sprintf("%s has no instance matching %s", assert, labels), nil
	}
	return true, fmt.Sprintf("%s holds for %s", assert, labels), nil
}

// agree reports whether two label sets agree on every label they share.
func agree(a, b assertd.Labels) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}

// Counts returns how many instances of an assert are violated (violated,
// remediating or escalated) and how many there are, optionally only those
// whose label by has value (by == "": all).
func (e *Engine) Counts(assert, by, value string) (violating, total int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.instances[assert] {
		if by != "" && t.Labels[by] != value {
			continue
		}
		total++
		if slices.Contains([]assertd.State{assertd.Violated, assertd.Remediating, assertd.Escalated}, t.State) {
			violating++
		}
	}
	return violating, total
}
