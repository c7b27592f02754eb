package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/store"
)

// LifecycleLabel is the series label that carries a target's lifecycle
// state; the engine API (SetLifecycle) can set it too.
const LifecycleLabel = "lifecycle"

// The lifecycle states of a target.
var (
	Lifecycles = []string{"installing", "available", "uncertain", "unavailable", "retiring",
		"retired", "archived", "terminated", "restart", "upgrading"}
	// expectedDisruption: violations are recorded, neither remediated nor
	// paged, until the bound passes.
	expectedDisruption = []string{"installing", "upgrading", "restart", "retiring"}
	// notEvaluated: the target is gone; its instances are no longer evaluated.
	notEvaluated = []string{"retired", "archived", "terminated"}
)

// DefaultExpectedDisruption bounds how long an expected disruption stays unpaged.
const DefaultExpectedDisruption = 30 * time.Minute

// lifecycleOf returns the lifecycle of an instance: set through the API for
// a target whose labels it carries, or from its lifecycle label.
func (e *Engine) lifecycleOf(ls assertd.Labels) string {
	for _, o := range e.lifecycles {
		match := true
		for k, v := range o.target {
			if ls[k] != v {
				match = false
				break
			}
		}
		if match {
			return o.state
		}
	}
	return ls[LifecycleLabel]
}

type lifecycleOverride struct {
	target assertd.Labels
	state  string
}

// SetLifecycle sets the lifecycle state of the target identified by labels
// (every instance carrying them), recorded in the audit trail. An empty
// state removes the override.
func (e *Engine) SetLifecycle(ctx context.Context, target assertd.Labels, state, by, reason string, now time.Time) error {
	if state != "" && !slices.Contains(Lifecycles, state) {
		return fmt.Errorf("unknown lifecycle state %q: the states are %v", state, Lifecycles)
	}
	if len(target) == 0 {
		return fmt.Errorf("a target needs at least one label")
	}
	e.mu.Lock()
	key := target.String()
	e.lifecycles = slices.DeleteFunc(e.lifecycles, func(o lifecycleOverride) bool { return o.target.String() == key })
	if state != "" {
		e.lifecycles = append(e.lifecycles, lifecycleOverride{target: target.Copy(), state: state})
	}
	e.mu.Unlock()
	_, err := e.opts.Store.Audit(ctx, assertd.AuditEntry{At: now, Actor: by, Action: "lifecycle.set", Target: key, Reason: reason, Detail: state})
	return err
}

// lifecycleChange records a change of an instance's lifecycle as a decision.
func (e *Engine) lifecycleChange(ctx context.Context, in assertd.Instance, from, to string, now time.Time) {
	key := fmt.Sprintf("lifecycle/%s/%s/%s>%s/%d", in.Assert, in.Fingerprint, from, to, now.UnixMicro())
	d := assertd.Decision{Key: key, Assert: in.Assert, Fingerprint: in.Fingerprint, At: now, Action: assertd.ActNone,
		Reason: fmt.Sprintf("lifecycle: %s → %s", orNone(from), orNone(to))}
	e.commit(ctx, commitDecision(key, d))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// retire forgets an instance whose target has left service; its page,
// when it was paged, is resolved.
func (e *Engine) retire(ctx context.Context, a *asserts.Compiled, t *tracked, in assertd.Instance, state string, now time.Time) {
	tr := assertd.Transition{Assert: in.Assert, Fingerprint: in.Fingerprint, Labels: in.Labels, From: in.State, To: assertd.OK, At: now,
		Reason: fmt.Sprintf("the target is %s: no longer evaluated", state)}
	d := assertd.Decision{Assert: in.Assert, Fingerprint: in.Fingerprint, At: now, Action: assertd.ActNone, Reason: tr.Reason}
	var msgs []assertd.Message
	if in.State == assertd.Escalated {
		var channels []string
		gone := in
		gone.State, gone.Since = assertd.OK, now
		msgs, channels = e.resolves(ctx, a, t, gone, tr.Reason, now)
		d.Action, d.Reason, d.Policy = assertd.ActResolve, resolveReason(tr.Reason, channels), e.policyName(a)
	}
	if e.commit(ctx, store.Change{Key: tr.Key(), Transition: &tr, Decision: &d, Messages: msgs}) {
		if err := e.opts.Store.DeleteInstance(ctx, in.Assert, in.Fingerprint); err != nil {
			e.log.Warn("forgetting a retired instance", "assert", in.Assert, "err", err)
		}
	}
}
