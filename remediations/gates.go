package remediations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// Decide runs the gates before a run of the remediation for the instance,
// in this order: the kill switch (which fails closed: a setting that cannot
// be read stops everything), the instance itself (never uncertain or
// silenced), the allow patterns of its labels, the blast-radius breaker, the guard, mode and rollout (shadow),
// the target key, max_runs, cooldown, the lock, the concurrent runs and the
// run budget. A refusal is ActHold with its reason (the engine records it
// and pages); the breaker's refusals carry a Group so that they page once.
func (r *Runner) Decide(ctx context.Context, name string, in assertd.Instance, now time.Time) assertd.Decision {
	hold := func(kind, format string, args ...any) assertd.Decision {
		r.m.refusals.WithLabelValues(kind).Inc()
		return assertd.Decision{Action: assertd.ActHold, Remediation: name, Reason: fmt.Sprintf(format, args...)}
	}
	h := r.getHost()
	if h == nil {
		return hold(refusedDetached, "refused: the remediation runner is not attached to the engine")
	}
	rem := h.Remediation(name)
	if rem == nil {
		return assertd.Decision{Action: assertd.ActEscalate, Remediation: name, Reason: fmt.Sprintf("remediation %q is not loaded: paging instead", name)}
	}
	lim, err := r.limits(ctx)
	if err != nil {
		return hold(refusedLimits, "refused: %v", err)
	}
	if lim.kill {
		return hold(refusedKillSwitch, "refused: the kill switch is on (%s): no automated action", lim.killWhy)
	}
	switch {
	case in.Silenced != "":
		return hold(refusedSilenced, "refused: the instance is silenced by %s", in.Silenced)
	case in.State == assertd.Uncertain:
		return hold(refusedUncertain, "refused: the instance is uncertain: never remediated blindly")
	}
	if why := rem.allowed(in.Labels); why != "" {
		return hold(refusedAllow, "refused: %s", why)
	}
	if d, open := r.breakerCheck(ctx, h, in, now); open {
		r.m.refusals.WithLabelValues(refusedBreaker).Inc()
		d.Remediation = name
		return d
	}
	if rem.Guard != nil {
		ok, err := r.guard(h, rem, in, now)
		switch {
		case err != nil:
			return hold(refusedGuard, "refused: guard %q cannot be evaluated (%v): failing closed", rem.Remediation.Guard, err)
		case !ok:
			return hold(refusedGuard, "refused: guard %q does not hold", rem.Remediation.Guard)
		}
	}
	if rem.Mode == ModeShadow {
		return assertd.Decision{Action: assertd.ActShadow, Remediation: name, Reason: "mode shadow: recording what would run"}
	}
	if len(rem.Rollout) > 0 && !matches(rem.Rollout, in.Labels) {
		return assertd.Decision{Action: assertd.ActShadow, Remediation: name, Reason: fmt.Sprintf("rollout %s does not select this instance: recording what would run", rem.Remediation.Rollout)}
	}
	key, err := targetKey(rem, in, templateData(rem, in, ""))
	if err != nil {
		return hold(refusedTarget, "refused: %v", err)
	}
	if limit, ok := lim.rate(rem); ok {
		st, err := r.o.Store.RunStats(ctx, name, key, now.Add(-limit.Within.Std()))
		switch {
		case err != nil:
			return hold(refusedMaxRuns, "refused: max_runs cannot be checked (%v): failing closed", err)
		case st.Count >= limit.Count:
			return hold(refusedMaxRuns, "refused: max_runs: %d runs of %s for %s within %s (at most %d): the target is frozen until the window passes; paging",
				st.Count, name, key, limit.Within, limit.Count)
		}
	}
	if cd := rem.Cooldown.Std(); cd > 0 {
		st, err := r.o.Store.RunStats(ctx, name, key, now)
		switch {
		case err != nil:
			return hold(refusedCooldown, "refused: cooldown cannot be checked (%v): failing closed", err)
		case !st.LastStart.IsZero() && now.Before(st.LastStart.Add(cd)):
			return hold(refusedCooldown, "refused: cooldown: the last run of %s for %s started at %s; the next may start at %s",
				name, key, st.LastStart.UTC().Format(time.RFC3339), st.LastStart.Add(cd).UTC().Format(time.RFC3339))
		}
	}
	l, err := r.o.Store.Lock(ctx, key)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return hold(refusedLock, "refused: lock %s cannot be read (%v): failing closed", key, err)
	case err == nil && l.Owner != "" && l.Expires.After(now):
		return hold(refusedLock, "refused: lock %s is held by run %s until %s", key, l.Owner, l.Expires.UTC().Format(time.RFC3339))
	}
	r.mu.Lock()
	active := r.active
	r.mu.Unlock()
	if active >= lim.maxConcurrent {
		return hold(refusedConcurrency, "refused: %d runs are in progress, the most allowed at once (%s)", active, assertd.SettingMaxConcurrentRuns)
	}
	if b := lim.budget; b != nil {
		n, err := r.runsSince(ctx, now.Add(-b.Within.Std()), b.Count)
		switch {
		case err != nil:
			return hold(refusedBudget, "refused: the run budget cannot be checked (%v): failing closed", err)
		case n >= b.Count:
			return hold(refusedBudget, "refused: the run budget is spent: %d runs within %s (at most %d, %s)", n, b.Within, b.Count, assertd.SettingRunBudget)
		}
	}
	reason := fmt.Sprintf("allowed: remediation %s for %s", name, key)
	if rem.ApprovalRequired {
		reason += fmt.Sprintf("; waiting up to %s for an approval", rem.ApprovalExpire)
	}
	return assertd.Decision{Action: assertd.ActRemediate, Remediation: name, Reason: reason}
}

// runsSince counts the runs that acted (not shadow, not refused) started
// at or after since, stopping at limit.
func (r *Runner) runsSince(ctx context.Context, since time.Time, limit int) (int, error) {
	runs, err := r.o.Store.Runs(ctx, store.RunFilter{Limit: 1000})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ru := range runs {
		if ru.Started.Before(since) {
			break // newest first
		}
		if !ru.Shadow && ru.Status != assertd.RunRefused {
			n++
		}
		if n >= limit {
			break
		}
	}
	return n, nil
}

func matches(ms []*labels.Matcher, ls assertd.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// guard evaluates the remediation's guard expression for the instance.
func (r *Runner) guard(f Fleet, rem *Compiled, in assertd.Instance, now time.Time) (bool, error) {
	env := map[string]any{
		"now":    now,
		"labels": map[string]string(in.Labels),
		FnViolating: func(a string) int {
			v, _ := f.Counts(a, "", "")
			return v
		},
		FnInstances: func(a string) int {
			_, n := f.Counts(a, "", "")
			return n
		},
		FnFractionViolating: func(a string, by ...string) float64 {
			var v, n int
			if len(by) > 0 && by[0] != "" {
				v, n = f.Counts(a, by[0], in.Labels[by[0]])
			} else {
				v, n = f.Counts(a, "", "")
			}
			if n == 0 {
				return 0
			}
			return float64(v) / float64(n)
		},
	}
	out, err := expr.Run(rem.Guard, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("the guard gave %T, not a boolean", out)
	}
	return b, nil
}

// limits are the global limits in force: config safety, overridden by the
// runtime settings.
type limits struct {
	kill          bool
	killWhy       string
	maxConcurrent int
	budget        *Limit
	rates         map[string]Limit
}

func (l limits) rate(rem *Compiled) (Limit, bool) {
	if x, ok := l.rates[rem.Name]; ok {
		return x, x.Count > 0
	}
	if rem.MaxRuns != nil {
		return *rem.MaxRuns, true
	}
	return Limit{}, false
}

// limits reads the settings. It fails closed: when they cannot be read, or
// the kill switch holds an unknown value, the error says nothing may run.
func (r *Runner) limits(ctx context.Context) (limits, error) {
	var sf Safety
	if h := r.getHost(); h != nil {
		sf = h.Safety()
	}
	l := limits{kill: sf.KillSwitch, killWhy: "config safety.kill_switch", maxConcurrent: sf.MaxConcurrent, budget: sf.Budget, rates: map[string]Limit{}}
	if l.maxConcurrent <= 0 {
		l.maxConcurrent = DefaultMaxConcurrent
	}
	settings, err := r.o.Store.Settings(ctx)
	if err != nil {
		return l, fmt.Errorf("the kill switch cannot be read (%v): failing closed, nothing runs", err)
	}
	for _, s := range settings {
		switch {
		case s.Key == assertd.SettingKillSwitch:
			switch s.Value {
			case "on":
				l.kill, l.killWhy = true, fmt.Sprintf("set by %s: %s", s.By, s.Reason)
			case "off":
				l.kill = false
			default:
				return l, fmt.Errorf("the kill switch holds %q, neither on nor off: failing closed, nothing runs", s.Value)
			}
		case s.Key == assertd.SettingMaxConcurrentRuns:
			if n, err := strconv.Atoi(s.Value); err == nil && n >= 0 {
				l.maxConcurrent = n
			}
		case s.Key == assertd.SettingRunBudget:
			if c, w, err := assertd.ParseRate(s.Value); err == nil {
				l.budget = &Limit{Count: c, Within: assertd.Duration(w)}
			}
		case strings.HasPrefix(s.Key, assertd.SettingRatePrefix):
			if c, w, err := assertd.ParseRate(s.Value); err == nil {
				l.rates[strings.TrimPrefix(s.Key, assertd.SettingRatePrefix)] = Limit{Count: c, Within: assertd.Duration(w)}
			}
		}
	}
	return l, nil
}

// awaitApproval asks for an approval and waits for it until it expires.
func (r *Runner) awaitApproval(ctx context.Context, ru *execRun) (bool, string) {
	now := r.o.Clock.Now()
	expires := now.Add(ru.rem.ApprovalExpire)
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.waiters[ru.ID] = approvalWait{decided: ch}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiters, ru.ID)
		r.mu.Unlock()
	}()
	if err := r.o.Store.SetRunStatus(ctx, ru.ID, assertd.RunWaiting); err != nil {
		return false, fmt.Sprintf("refused: the run cannot wait for an approval: %v", err)
	}
	if err := r.o.Store.RequestApproval(ctx, assertd.Approval{RunID: ru.ID, Requested: now, Expires: expires}); err != nil {
		return false, fmt.Sprintf("refused: an approval cannot be requested: %v", err)
	}
	ru.log.add("approval: requested, expires at %s", expires.UTC().Format(time.RFC3339))
	if asker, ok := r.getHost().(ApprovalAsker); ok {
		asker.ApprovalRequested(ctx, ru.Run, ru.in, expires)
	}
	// The expiry wait starts once the approval is asked for (a test's
	// clock sees the run as waiting only then), unless it is already
	// decided.
	var expired <-chan time.Time
	r.mu.Lock()
	if len(ch) == 0 {
		expired = r.o.Clock.After(ru.rem.ApprovalExpire)
		r.waiters[ru.ID] = approvalWait{decided: ch, expired: expired}
	}
	r.mu.Unlock()
	if err := r.waitApproval(ctx, ru.ID, ch, expired); err != nil {
		return false, "interrupted"
	}
	a, err := r.o.Store.Approval(ctx, ru.ID)
	switch {
	case err != nil:
		return false, fmt.Sprintf("refused: the approval cannot be read: %v", err)
	case a.Decided.IsZero():
		return false, fmt.Sprintf("refused: no approval before it expired at %s: paging instead of running", expires.UTC().Format(time.RFC3339))
	case !a.Approved:
		return false, fmt.Sprintf("refused: denied by %s: %s", a.By, a.Comment)
	}
	ru.log.add("approval: approved by %s: %s", a.By, a.Comment)
	if err := r.o.Store.SetRunStatus(ctx, ru.ID, assertd.RunRunning); err != nil {
		r.log.Warn("marking an approved run running", "run", ru.ID, "err", err)
	}
	return true, ""
}

// Interrupted counts a run marked interrupted after its process stopped
// (or its replica lost the share) while it ran: it ended, unverified.
func (r *Runner) Interrupted(run assertd.Run) { r.m.ended(run.Remediation, assertd.RunInterrupted) }

// ApprovalDecided wakes the run waiting for this approval (the engine's
// Approve calls it after recording the decision in the store).
func (r *Runner) ApprovalDecided(runID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.waiters[runID]
	if !ok {
		return
	}
	// The expiry no longer matters: a clock that can cancel it (the tests'
	// fake clock) stops counting the run as waiting on it before the run
	// wakes, so that nobody sees the run as idle in between.
	if s, ok := r.o.Clock.(stopper); ok && w.expired != nil {
		s.Stop(w.expired)
	}
	select {
	case w.decided <- struct{}{}:
	default:
	}
}

// approvalWait is a run waiting for its approval: decided is signalled when
// the approval is decided, expired fires when it expires.
type approvalWait struct {
	decided chan struct{}
	expired <-chan time.Time
}

// stopper is a clock that can cancel a wait After returned.
type stopper interface {
	Stop(ch <-chan time.Time) bool
}

// waitApproval returns once the approval of run is decided (woken by
// ApprovalDecided or, with ApprovalPoll, read from the store) or expired.
func (r *Runner) waitApproval(ctx context.Context, run string, decided chan struct{}, expired <-chan time.Time) error {
	for {
		var poll <-chan time.Time
		if r.o.ApprovalPoll > 0 {
			poll = r.o.Clock.After(r.o.ApprovalPoll)
		}
		select {
		case <-decided:
			return nil
		case <-expired:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-poll:
			if a, err := r.o.Store.Approval(ctx, run); err == nil && !a.Decided.IsZero() {
				return nil
			}
		}
	}
}
