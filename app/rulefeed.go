package app

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources/promrules"
)

// ruleFeed is the alert feed as alert-triggered asserts read it, with what
// the Prometheus rule files add to the rules' alerts:
//   - an assert whose selector could match the alerts of a rule whose last
//     evaluation failed is uncertain (its source errs), never quiet;
//   - an alert goes to the first binding whose selector it matches, so that
//     overlapping bindings do not act twice on one alert.
//
// installRules puts n in force in the evaluator and the feed.
func (a *App) installRules(n *promrules.Next, set *config.Set) {
	a.rules.Apply(n)
	a.ruleSilence.Store(int64(3 * n.MaxInterval()))
	a.ruleAlerts.keep(a.rules.Groups())
	a.ruleFeed.install(set)
}

type ruleFeed struct {
	*alerts.Feed
	rules *ruleAlerts

	mu sync.Mutex
	// By the matcher set of each alert-triggered assert on the rules'
	// alerts: its matchers, and for a binding the sets of the bindings
	// before it.
	matchers map[alerts.Matcher][]assertd.Matcher
	earlier  map[alerts.Matcher][]alerts.Matcher
}

// install takes the asserts of set.
func (f *ruleFeed) install(set *config.Set) {
	ms := map[alerts.Matcher][]assertd.Matcher{}
	for _, a := range set.Asserts {
		if t := a.Trigger; t != nil && t.Sender == alerts.SenderRules && t.Set != nil {
			ms[t.Set] = t.Matchers
		}
	}
	earlier := map[alerts.Matcher][]alerts.Matcher{}
	var before []alerts.Matcher
	for _, b := range set.Bindings {
		if b.Assert == nil || b.Assert.Trigger == nil || b.Assert.Trigger.Set == nil {
			continue
		}
		earlier[b.Assert.Trigger.Set] = append([]alerts.Matcher(nil), before...)
		before = append(before, b.Assert.Trigger.Set)
	}
	f.mu.Lock()
	f.matchers, f.earlier = ms, earlier
	f.mu.Unlock()
}

// Select is alerts.Feed's, with the failures and the bindings' order of
// the rules' alerts.
func (f *ruleFeed) Select(sender string, m alerts.Matcher, now time.Time) ([]alerts.Alert, error) {
	if sender != alerts.SenderRules {
		return f.Feed.Select(sender, m, now)
	}
	f.mu.Lock()
	ms, known := f.matchers[m]
	earlier := f.earlier[m]
	f.mu.Unlock()
	for _, ev := range f.rules.Evaluations() {
		for _, fl := range ev.Failures {
			if !known || couldMatch(ms, fl.Labels) {
				return nil, fmt.Errorf("%w: %s failed at %s: %v", assertd.ErrSourceUnavailable, fl.Rule, ev.At.UTC().Format(time.RFC3339), fl.Err)
			}
		}
	}
	as, err := f.Feed.Select(sender, m, now)
	if err != nil || len(earlier) == 0 {
		return as, err
	}
	out := as[:0]
	for _, a := range as {
		taken := false
		for _, e := range earlier {
			taken = taken || e.Matches(a.Labels)
		}
		if !taken {
			out = append(out, a)
		}
	}
	return out, nil
}

// couldMatch reports whether the alerts of a rule, of which only the
// labels every one of them carries are known (alertname, the group's and
// the rule's labels that are not templates), could satisfy ms.
func couldMatch(ms []assertd.Matcher, known labels.Labels) bool {
	kn := assertd.Labels{}
	known.Range(func(l labels.Label) {
		if !containsTemplate(l.Value) {
			kn[l.Name] = l.Value
		}
	})
	for _, m := range ms {
		if _, ok := kn[m.Name]; ok && !m.Matches(kn) {
			return false
		}
	}
	return true
}

func containsTemplate(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '{' && s[i+1] == '{' {
			return true
		}
	}
	return false
}

// feedRules hands every rule group's alerts to the feed after each
// evaluation of one of them (the complete set of the rules' alerts), and
// makes the asserts on them due at once.
func (a *App) feedRules(all []promrules.Evaluation) {
	var as []alerts.Alert
	var at time.Time
	for _, ev := range all {
		if ev.At.After(at) {
			at = ev.At
		}
		for _, al := range ev.Alerts {
			as = append(as, alerts.Alert{Labels: fromPromLabels(al.Labels), Annotations: fromPromLabels(al.Annotations),
				State: alerts.State(al.State), StartsAt: al.ActiveAt, GeneratorURL: al.GeneratorURL})
		}
	}
	if now := a.now(); now.After(at) {
		at = now
	}
	a.feed.Replace(alerts.SenderRules, as, at)
	// Silent for three intervals of its slowest group: the rules stopped.
	a.feed.Expect(alerts.SenderRules, time.Duration(a.ruleSilence.Load()))
	a.mu.Lock()
	set := a.set
	a.mu.Unlock()
	var names []string
	for _, c := range set.Asserts {
		if t := c.Trigger; t != nil && t.Sender == alerts.SenderRules {
			names = append(names, c.Name)
		}
	}
	if len(names) > 0 && a.eng != nil {
		a.eng.EvaluateSoon(names...)
	}
}

func fromPromLabels(ls labels.Labels) assertd.Labels {
	out := make(assertd.Labels, ls.Len())
	ls.Range(func(l labels.Label) { out[l.Name] = l.Value })
	return out
}

var _ asserts.Alerts = (*ruleFeed)(nil)
