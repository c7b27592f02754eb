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
	// Update records alerts a sender reported; the engine records the
	// resolve of an alert it silenced, which no receiver hears of.
	Update(sender string, as []alerts.Alert, at time.Time) alerts.Result
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
	_, q, err := e.querierOf(a)
	return q, err
}

// querierOf is querier with the name of the source (one look at the
// configuration in force).
func (e *Engine) querierOf(a *asserts.Compiled) (string, asserts.Querier, error) {
	e.mu.Lock()
	src := e.set.SourceName(a)
	q := e.sources[src]
	e.mu.Unlock()
	if a.Trigger != nil {
		if e.opts.Alerts == nil {
			return src, nil, fmt.Errorf("%w: no alert feed is running", assertd.ErrSourceUnavailable)
		}
		return src, alertQuerier{q, e.opts.Alerts}, nil
	}
	if q == nil {
		return src, nil, fmt.Errorf("%w: source %q is not running", assertd.ErrSourceUnavailable, src)
	}
	return src, q, nil
}

// verifyAlert verifies a fix of an alert-triggered instance without
// trusting the alert alone: with resolved_within it waits that long for
// the alert to resolve, then it runs the verify queries, if any.
func (e *Engine) verifyAlert(ctx context.Context, a *asserts.Compiled, labels assertd.Labels, now time.Time) (bool, string, error) {
	t := a.Trigger
	if t.ResolvedWithin == 0 && t.Check == nil {
		return false, "", fmt.Errorf("assert %s has no verify: its alert alone proves nothing", a.Name)
	}
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
			wait := deadline.Sub(now)
			sil := e.silencedAlerts(a.Name, labels)
			if len(sil) > 0 {
				e.pollSilenced(ctx, sil)
				wait = min(wait, amPoll)
			}
			timer := e.after(wait)
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

// AlertSilencer silences alerts in the Alertmanager that sent them
// (amclient.Silencer).
type AlertSilencer interface {
	Silence(ctx context.Context, amURL string, ls assertd.Labels, comment string, starts, ends time.Time) (string, error)
	Expire(ctx context.Context, amURL, id string) error
	// Active reports whether the alert of exactly these labels is still
	// active there.
	Active(ctx context.Context, amURL string, ls assertd.Labels) (bool, error)
}

// amPoll is how often a verify asks an Alertmanager about an alert it
// silenced (whose resolve no receiver hears of).
const amPoll = time.Second

// amSilence is an alert silenced in an Alertmanager while a run fixes it.
type amSilence struct {
	url, id string
	alert   alerts.Alert
}

// silencedAlerts returns the alerts of this instance silenced by a run.
func (e *Engine) silencedAlerts(assert string, ls assertd.Labels) []amSilence {
	e.amMu.Lock()
	defer e.amMu.Unlock()
	return e.amSilenced[assert+"/"+ls.Fingerprint()]
}

// pollSilenced asks the Alertmanagers about the silenced alerts of an
// instance and records in the feed those that resolved.
func (e *Engine) pollSilenced(ctx context.Context, sil []amSilence) {
	for _, s := range sil {
		cctx, cancel := context.WithTimeout(ctx, silenceTimeout)
		active, err := e.opts.Silencer.Active(cctx, s.url, s.alert.Labels)
		cancel()
		if err != nil {
			e.log.Warn("asking Alertmanager about a silenced alert", "alertmanager", s.url, "err", err)
			continue
		}
		if !active {
			res := s.alert
			res.State = alerts.Resolved
			res.EndsAt = time.Time{}
			e.opts.Alerts.Update(alerts.SenderAlertmanager, []alerts.Alert{res}, e.opts.Now())
		}
	}
}

// silenceTimeout bounds each call to an Alertmanager.
const silenceTimeout = 5 * time.Second

// silenceAlerts silences, for a run of an alert-triggered assert with
// silence: set, the instance's firing alerts in the Alertmanager that sent
// them, so that nobody is paged there for what the run is fixing; it
// returns what expires them when the run ends. A failure is logged and
// counted: the run goes ahead.
func (e *Engine) silenceAlerts(ctx context.Context, a *asserts.Compiled, d assertd.Decision, in assertd.Instance) func(context.Context) {
	none := func(context.Context) {}
	t := a.Trigger
	if t == nil || t.Silence <= 0 || e.opts.Silencer == nil || e.opts.Alerts == nil || d.Action != assertd.ActRemediate {
		return none
	}
	now := e.opts.Now()
	as, err := a.AlertsFor(e.opts.Alerts, in.Labels, now)
	if err != nil {
		return none
	}
	var ids []amSilence
	for _, al := range as {
		if al.State != alerts.Firing || al.ExternalURL == "" {
			continue
		}
		comment := fmt.Sprintf("assertd run %s: remediation %s is fixing %s (%s); expired when the run ends", d.RunID, d.Remediation, a.Name, in.Labels)
		cctx, cancel := context.WithTimeout(ctx, silenceTimeout)
		id, err := e.opts.Silencer.Silence(cctx, al.ExternalURL, al.Labels, comment, now, now.Add(t.Silence))
		cancel()
		if err != nil {
			e.metrics.amSilences.WithLabelValues("failed").Inc()
			e.log.Warn("silencing the alert in Alertmanager", "assert", a.Name, "run", d.RunID, "alertmanager", al.ExternalURL, "err", err)
			continue
		}
		e.metrics.amSilences.WithLabelValues("created").Inc()
		e.log.Info("silenced the alert in Alertmanager while the run fixes it", "assert", a.Name, "run", d.RunID, "alertmanager", al.ExternalURL, "silence", id)
		ids = append(ids, amSilence{url: al.ExternalURL, id: id, alert: al})
	}
	if len(ids) == 0 {
		return none
	}
	key := a.Name + "/" + in.Labels.Fingerprint()
	e.amMu.Lock()
	e.amSilenced[key] = ids
	e.amMu.Unlock()
	return func(ctx context.Context) {
		e.amMu.Lock()
		delete(e.amSilenced, key)
		e.amMu.Unlock()
		// Its resolve, if it resolved, reached no receiver.
		e.pollSilenced(ctx, ids)
		for _, m := range ids {
			cctx, cancel := context.WithTimeout(ctx, silenceTimeout)
			err := e.opts.Silencer.Expire(cctx, m.url, m.id)
			cancel()
			if err != nil {
				e.metrics.amSilences.WithLabelValues("failed").Inc()
				e.log.Warn("expiring the silence in Alertmanager (it ends by itself)", "assert", a.Name, "run", d.RunID, "silence", m.id, "err", err)
				continue
			}
			e.metrics.amSilences.WithLabelValues("expired").Inc()
		}
	}
}
