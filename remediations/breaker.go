package remediations

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/assertd/assertd"
)

// breaker is the blast-radius breaker of one assert: when more than a share
// of its instances (or of those sharing a label value such as a zone) turn
// violated within one window, automation for the assert is suspended; it
// resumes when the share of violating instances falls back to the share or
// less, or when an operator resumes it.
type breaker struct {
	open    bool
	group   string // the page group of this trip
	reason  string
	resumed time.Time // onsets before an operator's resume do not count
}

// minMass is the fewest instances that make a mass failure: one instance
// alone never trips the breaker, however small its group.
const minMass = 2

var violating = []assertd.State{assertd.Violated, assertd.Remediating, assertd.Escalated}

// breakerCheck reports whether the breaker of the instance's assert is (or
// now turns) open, with the grouped refusal.
func (r *Runner) breakerCheck(h Host, in assertd.Instance, now time.Time) (assertd.Decision, bool) {
	br := h.Safety().BlastRadius
	if br.Disabled {
		return assertd.Decision{}, false
	}
	share, window := br.Share, br.Window
	if share <= 0 {
		share = DefaultBlastShare
	}
	if window <= 0 {
		window = DefaultBlastWindow
	}
	insts := h.InstancesOf(in.Assert)
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.breakers[in.Assert]
	if b == nil {
		b = &breaker{}
		r.breakers[in.Assert] = b
	}
	refuse := func() (assertd.Decision, bool) {
		return assertd.Decision{Action: assertd.ActHold, Group: b.group, Reason: b.reason}, true
	}
	if b.open {
		if _, v, n := worst(insts, br.By, func(x assertd.Instance) bool { return slices.Contains(violating, x.State) }); over(v, n, share) {
			return refuse()
		}
		r.log.Info("blast-radius breaker: the share of violating instances fell back; automation resumes", "assert", in.Assert)
		b.open = false
	}
	since := now.Add(-window)
	if b.resumed.After(since) {
		since = b.resumed
	}
	recent := func(x assertd.Instance) bool {
		return slices.Contains(violating, x.State) && !x.Since.Before(since)
	}
	g, v, n := worst(insts, br.By, recent)
	if !over(v, n, share) {
		return assertd.Decision{}, false
	}
	b.open = true
	b.group = fmt.Sprintf("breaker/%s/%d", in.Assert, now.UnixMicro())
	b.reason = fmt.Sprintf("blast-radius breaker: %d of %d instances of %s%s turned violated within %s (more than %.0f%%): automation for %s is suspended until the share falls back or an operator resumes it; one page for all of them",
		v, n, in.Assert, g, window, share*100, in.Assert)
	r.log.Warn("blast-radius breaker open: automation suspended", "assert", in.Assert, "violating", v, "instances", n, "group", g)
	return refuse()
}

func over(v, n int, share float64) bool {
	return v >= minMass && n > 0 && float64(v)/float64(n) > share
}

// worst finds the group (all instances, or those sharing a value of one of
// the by labels) with the largest share of instances that count, and
// returns its description, the count and the group's size.
func worst(insts []assertd.Instance, by []string, counts func(assertd.Instance) bool) (group string, v, n int) {
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
			best, v, n = share, c, total
			group = ""
			if k.label != "" {
				group = fmt.Sprintf(" with %s=%q", k.label, k.value)
			}
		}
	}
	return group, v, n
}

// Resume closes the blast-radius breaker of an assert by hand (recorded in
// the audit trail); only instances that turn violated after now count
// towards tripping it again.
func (r *Runner) Resume(ctx context.Context, assert, by, reason string, now time.Time) error {
	if by == "" || reason == "" {
		return fmt.Errorf("resuming automation for %s needs who and why", assert)
	}
	r.mu.Lock()
	b := r.breakers[assert]
	if b == nil {
		b = &breaker{}
		r.breakers[assert] = b
	}
	b.open, b.resumed = false, now
	r.mu.Unlock()
	if _, err := r.o.Store.Audit(ctx, assertd.AuditEntry{At: now, Actor: by, Action: "automation.resume", Target: assert, Reason: reason}); err != nil {
		return fmt.Errorf("recording the resume of %s: %w", assert, err)
	}
	return nil
}

// Suspended reports whether the breaker of an assert is open, and why.
func (r *Runner) Suspended(assert string) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.breakers[assert]; b != nil && b.open {
		return true, b.reason
	}
	return false, ""
}
