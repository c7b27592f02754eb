package remediations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// The blast-radius breaker of an assert: when more than a share of its
// instances (or of those sharing a label value such as a zone) turn
// violated within one window, automation for the assert is suspended and
// every refusal shares one page. It closes by itself when the share of
// violating instances falls back to the share or less, or by hand
// (CloseBreaker): then only the instances that turn violated after the
// close count towards tripping it again, so the next violation runs. Its
// state is in the store, so it survives a restart; its reason is
// recomputed from the fleet each time it refuses or is shown.

// minMass is the fewest instances that make a mass failure: one instance
// alone never trips the breaker, however small its group.
const minMass = 2

var violating = []assertd.State{assertd.Violated, assertd.Remediating, assertd.Escalated}

func isViolating(x assertd.Instance) bool { return slices.Contains(violating, x.State) }

// counted returns the instances the breaker's share is taken over: those
// that existed before since (or were loaded from the store at start), and
// the newer ones that are violating.
func counted(insts []assertd.Instance, since time.Time) []assertd.Instance {
	out := make([]assertd.Instance, 0, len(insts))
	for _, x := range insts {
		if x.FirstSeen.IsZero() || x.FirstSeen.Before(since) || isViolating(x) {
			out = append(out, x)
		}
	}
	return out
}

// blast is the breaker's configuration with its defaults.
type blast struct {
	share  float64
	window time.Duration
	by     []string
}

func blastOf(br BlastRadius) blast {
	b := blast{share: br.Share, window: br.Window, by: br.By}
	if b.share <= 0 {
		b.share = DefaultBlastShare
	}
	if b.window <= 0 {
		b.window = DefaultBlastWindow
	}
	return b
}

// breakerCheck reports whether the breaker of the instance's assert is (or
// now turns) open, with the grouped refusal.
func (r *Runner) breakerCheck(ctx context.Context, h Host, in assertd.Instance, now time.Time) (assertd.Decision, bool) {
	br := h.Safety().BlastRadius
	if br.Disabled {
		return assertd.Decision{}, false
	}
	cfg := blastOf(br)
	insts := counted(h.InstancesOf(in.Assert), now.Add(-cfg.window))
	r.breakerMu.Lock()
	defer r.breakerMu.Unlock()
	b, err := r.o.Store.Breaker(ctx, in.Assert)
	switch {
	case errors.Is(err, store.ErrNotFound):
		b = assertd.Breaker{Assert: in.Assert}
	case err != nil:
		return assertd.Decision{Action: assertd.ActHold, Reason: fmt.Sprintf("refused: the blast-radius breaker of %s cannot be read (%v): failing closed", in.Assert, err)}, true
	}
	refuse := func(b assertd.Breaker) (assertd.Decision, bool) {
		return assertd.Decision{Action: assertd.ActHold, Group: b.Group, Reason: b.Reason}, true
	}
	if b.Open {
		if b = r.current(ctx, b, cfg, insts, now, true); b.Open {
			return refuse(b)
		}
	}
	since := now.Add(-cfg.window)
	recent := func(x assertd.Instance) bool { return isViolating(x) && !x.Since.Before(since) }
	if b.ClosedBy != "" && !b.ClosedAt.Before(since) {
		// Closed by hand: the onsets the operator saw (up to the close) do
		// not trip it again.
		recent = func(x assertd.Instance) bool { return isViolating(x) && x.Since.After(b.ClosedAt) }
	}
	label, value, v, n := worst(insts, cfg.by, recent)
	if !over(v, n, cfg.share) {
		return assertd.Decision{}, false
	}
	b = assertd.Breaker{Assert: in.Assert, Open: true, Group: fmt.Sprintf("breaker/%s/%d", in.Assert, now.UnixMicro()),
		GroupLabel: label, GroupValue: value, Violating: v, Instances: n, OpenedAt: now, ViolatingNow: v, InstancesNow: n}
	b.Reason = fmt.Sprintf("blast-radius breaker open: %d of %d instances of %s%s turned violated within %s (more than %s): %s",
		v, n, in.Assert, groupText(label, value), cfg.window, pct(cfg.share), suspended(in.Assert, cfg.share))
	if err := r.o.Store.PutBreaker(ctx, b); err != nil {
		r.log.Error("storing the open blast-radius breaker (it refuses all the same)", "assert", in.Assert, "err", err)
	}
	r.log.Warn("blast-radius breaker open: automation suspended", "assert", in.Assert, "violating", v, "instances", n, "group", groupText(label, value))
	return refuse(b)
}

// current recomputes an open breaker's reason from the fleet as it is now.
// When the share of violating instances fell back, deciding closes it
// (stored); showing it says that the next decision will.
func (r *Runner) current(ctx context.Context, b assertd.Breaker, cfg blast, insts []assertd.Instance, now time.Time, deciding bool) assertd.Breaker {
	label, value, v, n := worst(insts, cfg.by, isViolating)
	b.ViolatingNow, b.InstancesNow = v, n
	if !deciding && !over(v, n, cfg.share) {
		// Shown, not decided: the instances may not all have been evaluated
		// yet (just after a start), so only a decision closes it.
		b.Reason = fmt.Sprintf("blast-radius breaker open since %s: the share of violating instances of %s fell back to %d of %d (at most %s; it opened when %d of %d%s turned violated): it closes when the next violation of %s is decided, or when an operator closes it",
			b.OpenedAt.UTC().Format(time.RFC3339), b.Assert, v, n, pct(cfg.share), b.Violating, b.Instances, groupText(b.GroupLabel, b.GroupValue), b.Assert)
		return b
	}
	if over(v, n, cfg.share) {
		b.Reason = fmt.Sprintf("blast-radius breaker open since %s: %d of %d instances of %s%s are violating now (more than %s; it opened when %d of %d%s turned violated): %s",
			b.OpenedAt.UTC().Format(time.RFC3339), v, n, b.Assert, groupText(label, value), pct(cfg.share), b.Violating, b.Instances,
			groupText(b.GroupLabel, b.GroupValue), suspended(b.Assert, cfg.share))
		return b
	}
	b.Open, b.ClosedAt, b.ClosedBy = false, now, ""
	b.CloseReason = fmt.Sprintf("the share of violating instances fell back: %d of %d (at most %s)", v, n, pct(cfg.share))
	b.Reason = closedText(b)
	if err := r.o.Store.PutBreaker(ctx, b); err != nil {
		r.log.Error("storing the closed blast-radius breaker", "assert", b.Assert, "err", err)
	}
	r.log.Info("blast-radius breaker closed: the share of violating instances fell back; automation resumes", "assert", b.Assert, "violating", v, "instances", n)
	return b
}

func suspended(assert string, share float64) string {
	return fmt.Sprintf("automation for %s is suspended until the share falls back to %s or less, or an operator closes the breaker (assertd breaker close %s --reason …); one page for all of them",
		assert, pct(share), assert)
}

func closedText(b assertd.Breaker) string {
	by := "assertd"
	if b.ClosedBy != "" {
		by = b.ClosedBy
	}
	return fmt.Sprintf("blast-radius breaker closed by %s at %s: %s (it had opened at %s when %d of %d%s turned violated)", by,
		b.ClosedAt.UTC().Format(time.RFC3339), b.CloseReason, b.OpenedAt.UTC().Format(time.RFC3339), b.Violating, b.Instances,
		groupText(b.GroupLabel, b.GroupValue))
}

func groupText(label, value string) string {
	if label == "" {
		return ""
	}
	return fmt.Sprintf(" with %s=%q", label, value)
}

func pct(share float64) string { return fmt.Sprintf("%.0f%%", share*100) }

func over(v, n int, share float64) bool {
	return v >= minMass && n > 0 && float64(v)/float64(n) > share
}

// worst finds the group (all instances, or those sharing a value of one of
// the by labels) with the largest share of instances that count, and
// returns its label and value ("" for all), the count and the group's size.
func worst(insts []assertd.Instance, by []string, counts func(assertd.Instance) bool) (label, value string, v, n int) {
	type key struct{ label, value string }
	vs, ns := map[key]int{}, map[key]int{}
	for _, x := range insts {
		keys := []key{{}}
		for _, l := range by {
			if val, ok := x.Labels[l]; ok && val != "" {
				keys = append(keys, key{l, val})
			}
		}
		for _, k := range keys {
			ns[k]++
			if counts(x) {
				vs[k]++
			}
		}
	}
	best := -1.0
	for k, total := range ns {
		c := vs[k]
		share := float64(c) / float64(total)
		if c < minMass {
			share = 0
		}
		if share > best || share == best && k.label == "" {
			best, v, n, label, value = share, c, total, k.label, k.value
		}
	}
	return label, value, v, n
}

// CloseBreaker closes the blast-radius breaker of an assert by hand: who
// and why are stored with it and in the audit trail. Only instances that
// turn violated after now count towards tripping it again, so the next
// violation is remediated. Closing a breaker that is not open is
// store.ErrConflict; one that never opened, store.ErrNotFound.
func (r *Runner) CloseBreaker(ctx context.Context, assert, by, reason string, now time.Time) (assertd.Breaker, error) {
	if strings.TrimSpace(by) == "" || strings.TrimSpace(reason) == "" {
		return assertd.Breaker{}, fmt.Errorf("closing the blast-radius breaker of %s needs who and why: %w", assert, store.ErrInvalid)
	}
	r.breakerMu.Lock()
	defer r.breakerMu.Unlock()
	b, err := r.o.Store.CloseBreaker(ctx, assert, by, reason, now)
	if err != nil {
		return b, fmt.Errorf("closing the blast-radius breaker of %s: %w", assert, err)
	}
	b.Reason = closedText(b)
	r.log.Warn("blast-radius breaker closed by hand: automation resumes", "assert", assert, "by", by, "reason", reason)
	return b, nil
}

// Breakers returns the breaker of every assert that ever tripped, as it is
// at now: an open one's reason is recomputed from the fleet; a closed one
// says who closed it and why. Nothing is changed.
func (r *Runner) Breakers(ctx context.Context, now time.Time) ([]assertd.Breaker, error) {
	h := r.getHost()
	r.breakerMu.Lock()
	defer r.breakerMu.Unlock()
	bs, err := r.o.Store.Breakers(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the blast-radius breakers: %w", err)
	}
	for i, b := range bs {
		if h == nil {
			continue
		}
		cfg := blastOf(h.Safety().BlastRadius)
		insts := counted(h.InstancesOf(b.Assert), now.Add(-cfg.window))
		if b.Open {
			bs[i] = r.current(ctx, b, cfg, insts, now, false)
			continue
		}
		_, _, bs[i].ViolatingNow, bs[i].InstancesNow = worst(insts, cfg.by, isViolating)
		bs[i].Reason = closedText(b)
	}
	return bs, nil
}
