package engine

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/remediations"
)

// This file holds what the remediation runner (remediations.Runner) reads
// from the engine: remediations.Host.

// InstancesOf returns a snapshot of the instances of an assert.
func (e *Engine) InstancesOf(assert string) []assertd.Instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]assertd.Instance, 0, len(e.instances[assert]))
	for _, t := range e.instances[assert] {
		out = append(out, t.Instance)
	}
	return out
}

// Remediation returns the loaded remediation with this name, or nil.
func (e *Engine) Remediation(name string) *remediations.Compiled {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set.Remediation(name)
}

// Safety returns the configured limits on automation (runtime settings
// override them; the runner reads those).
func (e *Engine) Safety() remediations.Safety {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set.Config == nil {
		return remediations.Safety{}
	}
	s := e.set.Config.Safety
	return remediations.Safety{
		KillSwitch: s.KillSwitch, MaxConcurrent: s.MaxConcurrentRuns, Budget: s.RunBudget,
		BlastRadius: remediations.BlastRadius{Disabled: s.BlastRadius.Disabled, Share: s.BlastRadius.Share,
			Window: s.BlastRadius.Window.Std(), By: s.BlastRadius.By},
	}
}

// VerifyExpr evaluates an assert now for the instance with these labels and
// reports whether expression holds over the fresh values of every matching
// instance (verify: {expr: ...}).
func (e *Engine) VerifyExpr(ctx context.Context, assert string, labels assertd.Labels, expression string, now time.Time) (bool, string, error) {
	e.mu.Lock()
	a := e.asserts[assert]
	e.mu.Unlock()
	if a == nil {
		return false, "", fmt.Errorf("no assert %q", assert)
	}
	prog, _, err := assertd.CompileExpr(expression, asserts.Env(a.QueryNames()), asserts.EnvHeartbeat)
	if err != nil {
		return false, "", fmt.Errorf("verify expr %q: %w", expression, err)
	}
	if a.Trigger != nil {
		return false, "", fmt.Errorf("assert %s is alert-triggered: verify it with verify: %s (its verify: settings), not an expression", a.Name, a.Name)
	}
	q, err := e.querier(a)
	if err != nil {
		return false, "", err
	}
	ev := a.Evaluate(ctx, q, e.heartbeatFunc(now), now)
	if ev.SourceErr != nil {
		return false, "", ev.SourceErr
	}
	hb := e.heartbeatFunc(now)
	matched := 0
	for _, v := range ev.Verdicts {
		if !agree(v.Labels, labels) {
			continue
		}
		matched++
		env := asserts.Env(nil)
		for k, x := range v.Values {
			env[k] = x
		}
		var hbErr error
		env[asserts.EnvNow], env[asserts.EnvLabels] = now, map[string]string(v.Labels)
		env[asserts.EnvHeartbeat] = func(name string) asserts.HeartbeatStatus {
			st, err := hb(name)
			hbErr = errors.Join(hbErr, err)
			return st
		}
		for _, n := range a.QueryNames() {
			if _, ok := v.Values[n]; !ok {
				return false, fmt.Sprintf("%s has no value of %s for %s", assert, n, v.Labels), nil
			}
		}
		out, err := runExpr(prog, env)
		switch {
		case hbErr != nil:
			return false, "", hbErr
		case err != nil:
			return false, "", fmt.Errorf("verify expr %q: %w", expression, err)
		case !out:
			return false, fmt.Sprintf("%s is false for %s%s", expression, v.Labels, valuesText(v.Values)), nil
		}
	}
	if matched == 0 {
		return false, fmt.Sprintf("%s has no instance matching %s", assert, labels), nil
	}
	return true, fmt.Sprintf("%s holds for %s", expression, labels), nil
}

// The engine is the runner's host.
var _ remediations.Host = (*Engine)(nil)
