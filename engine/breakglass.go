package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// BreakGlass starts a remediation by hand for an instance, outside the
// automatic path: the automation gates (kill switch, breaker, guard, rate
// limits, approval) do not apply — a human decided — but the target's lock
// does. The reason is mandatory; the request is recorded in the audit trail
// before anything runs. A dry run is a shadow run: it records what would
// run and makes no external call. The instance is the assert's instance
// with these labels (or the only one whose labels include them); an
// instance not known yet is allowed when labels are given. The instance's
// state is not changed: the next evaluation sees the effect.
func (e *Engine) BreakGlass(ctx context.Context, req BreakGlassRequest) (assertd.Run, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return assertd.Run{}, errors.New("break glass needs a reason: say why the remediation is started by hand")
	}
	if e.rem == nil {
		return assertd.Run{}, errors.New("break glass: no remediation runner is configured")
	}
	if e.Remediation(req.Remediation) == nil {
		return assertd.Run{}, fmt.Errorf("break glass: no remediation %q is loaded", req.Remediation)
	}
	in, err := e.breakGlassInstance(req)
	if err != nil {
		return assertd.Run{}, err
	}
	at := req.At
	if at.IsZero() {
		at = e.opts.Now()
	}
	by := req.By
	if by == "" {
		by = "unknown"
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%s", req.Remediation, in.Assert, in.Fingerprint, at.UnixNano(), by))
	runID := "bg-" + hex.EncodeToString(h[:8])
	action, detail := assertd.ActRemediate, "run "+runID
	if req.DryRun {
		action, detail = assertd.ActShadow, "run "+runID+" (dry run: nothing is done)"
	}
	if _, err := e.opts.Store.Audit(ctx, assertd.AuditEntry{At: at, Actor: by, Action: "run.break_glass",
		Target: req.Remediation + " " + in.Assert + in.Labels.String(), Reason: req.Reason, Detail: detail}); err != nil {
		return assertd.Run{}, fmt.Errorf("break glass: recording it in the audit trail: %w (nothing was started)", err)
	}
	key := "breakglass/" + runID
	d := assertd.Decision{Key: key, Assert: in.Assert, Fingerprint: in.Fingerprint, At: at, Action: action, Remediation: req.Remediation,
		Reason: fmt.Sprintf("break glass by %s: %s", by, req.Reason), RunID: runID}
	if _, err := e.opts.Store.Commit(ctx, store.Change{Key: key, Decision: &d}); err != nil {
		return assertd.Run{}, fmt.Errorf("break glass: recording the decision: %w (nothing was started)", err)
	}
	done := func(r RunResult) {
		e.log.Info("break-glass run ended", "run", r.RunID, "remediation", req.Remediation, "verified", r.Verified, "outcome", r.Outcome)
	}
	runCtx := context.WithoutCancel(ctx) // the run outlives the request that started it
	e.rem.StartManual(runCtx, d, in, done)
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return assertd.Run{}, fmt.Errorf("break glass: the run was not recorded: %w", err)
	}
	return run, nil
}

func (e *Engine) breakGlassInstance(req BreakGlassRequest) (assertd.Instance, error) {
	if req.Assert == "" {
		if len(req.Labels) == 0 {
			return assertd.Instance{}, errors.New("break glass needs an instance: give its assert and labels")
		}
		return assertd.Instance{Fingerprint: req.Labels.Fingerprint(), Labels: req.Labels.Copy(), State: assertd.OK}, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.asserts[req.Assert] == nil {
		return assertd.Instance{}, fmt.Errorf("break glass: no assert %q", req.Assert)
	}
	insts := e.instances[req.Assert]
	if t := insts[req.Labels.Fingerprint()]; t != nil {
		return t.Instance, nil
	}
	var found []assertd.Instance
	for _, t := range insts {
		if includes(t.Labels, req.Labels) {
			found = append(found, t.Instance)
		}
	}
	switch {
	case len(found) == 1 && len(req.Labels) > 0:
		return found[0], nil
	case len(found) > 1 && len(req.Labels) > 0:
		return assertd.Instance{}, fmt.Errorf("break glass: %d instances of %s match %s: give more labels", len(found), req.Assert, req.Labels)
	case len(req.Labels) == 0:
		return assertd.Instance{}, fmt.Errorf("break glass: which instance of %s? give its labels", req.Assert)
	}
	return assertd.Instance{Assert: req.Assert, Fingerprint: req.Labels.Fingerprint(), Labels: req.Labels.Copy(), State: assertd.OK}, nil
}

func includes(all, some assertd.Labels) bool {
	for k, v := range some {
		if all[k] != v {
			return false
		}
	}
	return true
}

// Approve records a human's answer to a run waiting for approval (audited
// by the store) and wakes the run: approved, it runs; denied, it is
// refused and the instance is paged. Answering after the approval expired,
// or twice, is an error (store.ErrConflict).
func (e *Engine) Approve(ctx context.Context, runID, by string, approved bool, comment string, now time.Time) error {
	if strings.TrimSpace(by) == "" {
		return errors.New("an approval needs who gives it")
	}
	r, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("approve run %s: %w", runID, err)
	}
	if r.Status != assertd.RunWaiting {
		return fmt.Errorf("run %s is %s, not waiting for an approval: %w", runID, r.Status, store.ErrConflict)
	}
	if err := e.opts.Store.DecideApproval(ctx, runID, by, approved, now, comment); err != nil {
		return fmt.Errorf("approve run %s: %w", runID, err)
	}
	if e.rem != nil {
		e.rem.ApprovalDecided(runID)
	}
	return nil
}

// Breakers is the blast-radius breaker of the remediation runner
// (remediations.Runner), as operators see and close it; a Remediator has
// one.
type Breakers interface {
	// Breakers returns the breaker of every assert that ever tripped, its
	// reason recomputed from the fleet at now.
	Breakers(ctx context.Context, now time.Time) ([]assertd.Breaker, error)
	// CloseBreaker closes an assert's breaker by hand (stored and audited
	// with who and why); the next violation is remediated.
	CloseBreaker(ctx context.Context, assert, by, reason string, now time.Time) (assertd.Breaker, error)
}

// Breakers returns the blast-radius breakers as they are at now.
func (e *Engine) Breakers(ctx context.Context, now time.Time) ([]assertd.Breaker, error) {
	if e.rem == nil {
		return nil, nil
	}
	return e.rem.Breakers(ctx, now)
}

// CloseBreaker closes the blast-radius breaker of an assert by hand. It
// lifts nothing else: the kill switch and the other gates stay as they are.
func (e *Engine) CloseBreaker(ctx context.Context, assert, by, reason string, now time.Time) (assertd.Breaker, error) {
	if e.rem == nil {
		return assertd.Breaker{}, errors.New("no remediation runner is configured: there is no breaker to close")
	}
	if e.Config().Assert(assert) == nil {
		return assertd.Breaker{}, fmt.Errorf("no assert %q: %w", assert, store.ErrNotFound)
	}
	return e.rem.CloseBreaker(ctx, assert, by, reason, now)
}
