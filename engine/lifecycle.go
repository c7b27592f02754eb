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
func (e *Engine) lifecycleOf(label func(string) (string, bool)) string {
	for _, o := range e.lifecycles {
		match := true
		for k, v := range o.target {
			if l, _ := label(k); l != v {
				match = false
				break
			}
		}
		if match {
			return o.state
		}
	}
	l, _ := label(LifecycleLabel)
	return l
}

type lifecycleOverride struct {
	target assertd.Labels
	state  string
}

// Lifecycles returns the lifecycle overrides in force, in the order they
// were set (the first that matches an instance wins).
func (e *Engine) Lifecycles() []assertd.LifecycleOverride {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.lifecycleLog)
}

// SetLifecycle sets the lifecycle state of the target identified by labels
// (every instance carrying them), stored and recorded in the audit trail
// before it applies, so that it survives a restart. An empty state removes
// the override.
func (e *Engine) SetLifecycle(ctx context.Context, target assertd.Labels, state, by, reason string, now time.Time) error {
	if state != "" && !slices.Contains(Lifecycles, state) {
		return fmt.Errorf("unknown lifecycle state %q: the states are %v", state, Lifecycles)
	}
	if len(target) == 0 {
		return fmt.Errorf("a target needs at least one label")
	}
	o := assertd.LifecycleOverride{Target: target.Copy(), State: state, By: by, Reason: reason, Updated: now}
	if err := e.opts.Store.PutLifecycle(ctx, o); err != nil {
		return fmt.Errorf("lifecycle of %s: %w", target, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applyLifecycle(o)
	return nil
}

// applyLifecycle puts an override in force (e.mu held).
func (e *Engine) applyLifecycle(o assertd.LifecycleOverride) {
	key := o.Target.String()
	e.lifecycles = slices.DeleteFunc(e.lifecycles, func(x lifecycleOverride) bool { return x.target.String() == key })
	e.lifecycleLog = slices.DeleteFunc(e.lifecycleLog, func(x assertd.LifecycleOverride) bool { return x.Target.String() == key })
	if o.State != "" {
		e.lifecycles = append(e.lifecycles, lifecycleOverride{target: o.Target, state: o.State})
		e.lifecycleLog = append(e.lifecycleLog, o)
	}
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
