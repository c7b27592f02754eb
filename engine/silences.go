package engine

import (
	"context"
	"time"

	"github.com/assertd/assertd"
)

// activeSilence is a silence in force, its matchers compiled.
type activeSilence struct {
	id       string
	matchers *assertd.MatcherSet
}

// activeSilences reads the silences in force at now. Their matchers'
// regular expressions are compiled when a silence is first seen (or seen
// with other matchers, after it was replaced), not at every match: the
// compiled sets are kept by silence ID while the silence is in force.
func (e *Engine) activeSilences(ctx context.Context, now time.Time) []activeSilence {
	all, err := e.opts.Store.Silences(ctx, now, false)
	if err != nil {
		e.log.Warn("reading silences", "err", err)
		return nil
	}
	e.silenceMu.Lock()
	defer e.silenceMu.Unlock()
	var out []activeSilence
	keep := make(map[string]bool, len(all))
	for _, s := range all {
		if !s.ActiveAt(now) || len(s.Matchers) == 0 { // one without matchers matches nothing
			continue
		}
		ms := e.matchers[s.ID]
		if ms == nil || !ms.Of(s.Matchers) {
			ms = assertd.NewMatcherSet(s.Matchers)
			e.matchers[s.ID] = ms
		}
		keep[s.ID] = true
		out = append(out, activeSilence{id: s.ID, matchers: ms})
	}
	for id := range e.matchers {
		if !keep[id] {
			delete(e.matchers, id)
		}
	}
	return out
}

// overlaySilences matches every instance against the active silences, so
// that a silence that started or ended shows on every instance at once,
// not only on those of the asserts evaluated next.
func (e *Engine) overlaySilences(ss []activeSilence) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(ss) == 0 && !e.anySilenced {
		return // no silence, and none to lift
	}
	found := false
	for _, m := range e.instances {
		for _, t := range m {
			t.silenced = matchSilence(ss, t.Assert, t.Labels)
			t.Silenced = t.silenced
			found = found || t.silenced != ""
		}
	}
	e.anySilenced = found
}

// SilencesChanged applies the silences active at now to every instance
// (the API calls it after creating or expiring one). Nothing is acted on
// here: a violation a silence held back is acted on at its next evaluation.
func (e *Engine) SilencesChanged(ctx context.Context, now time.Time) {
	e.overlaySilences(e.activeSilences(ctx, now))
}

// matchSilence is the ID of the first silence that matches ls, the labels
// of an instance of assert, or "". As in Alertmanager, alertname names the
// alert: the assert, unless the instance has a label of that name.
func matchSilence(ss []activeSilence, assert string, ls assertd.Labels) string {
	if len(ss) == 0 {
		return ""
	}
	if _, ok := ls["alertname"]; !ok {
		ls = ls.Copy()
		ls["alertname"] = assert
	}
	for _, s := range ss {
		if s.matchers.Matches(ls) {
			return s.id
		}
	}
	return ""
}
