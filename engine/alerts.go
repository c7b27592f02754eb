package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/asserts"
)

// AlertFeed is the alert feed alert-triggered asserts read (*alerts.Feed).
type AlertFeed interface {
	asserts.Alerts
	// Changed returns a channel closed at the feed's next change.
	Changed() <-chan struct{}
}

// alertQuerier is what an alert-triggered assert is evaluated with: the
// alert feed, beside the assert's source for its verify queries.
type alertQuerier struct {
	asserts.Querier
	AlertFeed
}

// querier returns what a's evaluation reads: its source, and for an
// alert-triggered assert the alert feed. It errs when that is not running.
func (e *Engine) querier(a *asserts.Compiled) (asserts.Querier, error) {
	src := e.current().SourceName(a)
	q := e.source(src)
	if a.Trigger != nil {
		if e.opts.Alerts == nil {
			return nil, fmt.Errorf("%w: no alert feed is running", assertd.ErrSourceUnavailable)
		}
		return alertQuerier{q, e.opts.Alerts}, nil
	}
	if q == nil {
		return nil, fmt.Errorf("%w: source %q is not running", assertd.ErrSourceUnavailable, src)
	}
	return q, nil
}

// verifyAlert verifies a fix of an alert-triggered instance without
// trusting the alert alone: with resolved_within it waits that long for
// the alert to resolve, then it runs the verify queries, if any.
func (e *Engine) verifyAlert(ctx context.Context, a *asserts.Compiled, labels assertd.Labels, now time.Time) (bool, string, error) {
	t := a.Trigger
	why := ""
	if t.ResolvedWithin > 0 {
		deadline := now.Add(t.ResolvedWithin)
		for {
			changed := e.opts.Alerts.Changed()
			as, err := a.AlertsFor(e.opts.Alerts, labels, now)
			if err != nil {
				return false, "", err
			}
			if !firing(as) {
				why = fmt.Sprintf("alert resolved within %s", assertd.Duration(t.ResolvedWithin))
				break
			}
			if !now.Before(deadline) {
				return false, fmt.Sprintf("the alert still fires %s after the verify began (resolved_within %s)",
					assertd.Duration(t.ResolvedWithin), assertd.Duration(t.ResolvedWithin)), nil
			}
			timer := e.after(deadline.Sub(now))
			select {
			case <-ctx.Done():
				return false, "", fmt.Errorf("waiting for the alert to resolve: %w", ctx.Err())
			case <-changed:
			case <-timer:
			}
			now = e.opts.Now()
		}
	}
	if t.Check == nil {
		return true, why, nil
	}
	src := e.current().SourceName(a)
	q := e.source(src)
	if q == nil {
		return false, "", fmt.Errorf("%w: source %q is not running", assertd.ErrSourceUnavailable, src)
	}
	ok, msg, err := a.CheckFix(ctx, q, e.heartbeatFunc(now), labels, now)
	if why != "" && ok {
		msg = why + "; " + msg
	}
	return ok, msg, err
}

// firing reports whether any of as is still active.
func firing(as []alerts.Alert) bool {
	for _, al := range as {
		if al.State != alerts.Resolved {
			return true
		}
	}
	return false
}

func (e *Engine) after(d time.Duration) <-chan time.Time {
	if e.opts.After != nil {
		return e.opts.After(d)
	}
	return time.After(d)
}

// EvaluateSoon makes these asserts due now: the running loop evaluates
// them at once instead of at their next slot (an alert arrived for them).
// Names of no assert are ignored.
func (e *Engine) EvaluateSoon(names ...string) {
	e.mu.Lock()
	for _, n := range names {
		if _, ok := e.asserts[n]; ok {
			e.next[n] = time.Time{}
		}
	}
	e.mu.Unlock()
	e.poke()
}
