package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// This file holds the escalation of a paged incident. The first page
// (decide.go, remediate.go) goes to the first level of the instance's
// escalation policy. While the instance stays escalated and nobody
// acknowledges it, the engine pages the later levels after their delay and
// every level again each repeat; an acknowledgement stops that; when the
// instance recovers, the resolve goes to every channel that was paged. Each
// step is a decision with its reason, committed with its messages under a
// key made of the incident and the step, so that a restart writes it once.
// The deliverer only delivers what is in the outbox.

// incident is the escalation of one instance, from its first page until it
// recovers. Its fields are under Engine.mu.
type incident struct {
	start    time.Time      // when the instance was escalated: the incident's identity
	first    assertd.Notice // the first page, which the later pages repeat
	dedup    string         // the dedup key of its pages
	timeline bool           // later levels and repeats follow (not for a group's page)
	acked    bool
	paged    map[string]bool // channels paged so far: the resolve goes to each
	round    int             // the round of sent
	sent     map[int]bool    // levels of round written
	next     time.Time       // when the next page is due; zero: none
	loaded   bool            // false: from before a restart, not read from the store yet
	// stepped is the policy next was found under: while it is in force,
	// nothing is due before next (nothing at all when next is zero).
	stepped *config.EscalationPolicy
}

// opened starts the incident of t, escalated at since, whose first page is
// msgs. timeline is false for a page shared by a group: its later levels
// would page once per instance. The channels paged by an earlier
// escalation that was not resolved (escalated while uncertain, then
// violated and escalated again) stay paged: its resolve goes to them too.
func (e *Engine) opened(t *tracked, since time.Time, msgs []assertd.Message, timeline bool) {
	inc := &incident{start: since, paged: map[string]bool{}, sent: map[int]bool{}, loaded: true}
	for _, m := range msgs {
		if m.Kind != string(assertd.NoticeTrigger) {
			continue
		}
		inc.paged[m.Channel] = true
		if inc.dedup == "" && json.Unmarshal([]byte(m.Payload), &inc.first) == nil {
			inc.dedup, inc.timeline = m.DedupKey, timeline
		}
	}
	e.mu.Lock()
	if old := t.inc; old != nil {
		if !old.loaded {
			inc.loaded = false // the earlier pages are read from the store with the rest
		}
		for ch := range old.paged {
			inc.paged[ch] = true
		}
	}
	t.inc = inc
	e.open[t] = struct{}{}
	e.mu.Unlock()
}

// load reads an incident from before a restart from the store: its first
// page, the channels paged since the last resolve, and whether it was
// acknowledged.
func (e *Engine) load(ctx context.Context, assert, fp string, inc *incident) error {
	key := assert + "/" + fp
	msgs, err := e.opts.Store.Messages(ctx, store.MessageFilter{DedupKey: key})
	if err != nil {
		return fmt.Errorf("reading the pages of %s: %w", key, err)
	}
	acks, err := e.opts.Store.Decisions(ctx, store.DecisionFilter{Assert: assert, Fingerprint: fp, Action: assertd.ActAck, Limit: 10})
	if err != nil {
		return fmt.Errorf("reading the acknowledgements of %s: %w", key, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var first *assertd.Message
	for i := range msgs { // newest first
		m := &msgs[i]
		if m.Kind == string(assertd.NoticeResolve) {
			break
		}
		if m.Kind != string(assertd.NoticeTrigger) {
			continue
		}
		inc.paged[m.Channel] = true
		if !m.Created.Before(inc.start) && (first == nil || !m.Created.After(first.Created)) {
			first = m
		}
	}
	if first != nil && inc.dedup == "" && json.Unmarshal([]byte(first.Payload), &inc.first) == nil {
		inc.dedup, inc.timeline = first.DedupKey, true
	}
	inc.acked = inc.acked || slices.ContainsFunc(acks, func(d assertd.Decision) bool { return !d.At.Before(inc.start) })
	inc.loaded = true
	return nil
}

// dueSteps returns the round of policy p at now for an incident that
// started at t0, the levels of that round whose delay has passed (level 1
// of round 0, the first page, is never one of them) and when the next
// level falls due (zero: never). Only the latest round counts: an engine
// that was down does not replay the rounds it missed.
func dueSteps(p *config.EscalationPolicy, t0, now time.Time) (round int, levels []int, next time.Time) {
	rep := p.Repeat.Std()
	if len(p.Levels) == 0 || (len(p.Levels) < 2 && rep <= 0) {
		return 0, nil, time.Time{}
	}
	if rep > 0 && now.Sub(t0) >= rep {
		round = int(now.Sub(t0) / rep)
	}
	start := t0.Add(time.Duration(round) * rep)
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for level, l := range p.Levels {
		due := start.Add(l.After.Std())
		switch {
		case due.After(now):
			soonest(due)
		case round > 0 || level > 0:
			levels = append(levels, level)
		}
	}
	if rep > 0 {
		soonest(start.Add(rep + p.Levels[0].After.Std()))
	}
	return round, levels, next
}

// escalateDue pages the levels and repeats of every open incident that are
// due at now, and returns when the next one is due (zero: none).
func (e *Engine) escalateDue(ctx context.Context, now time.Time) time.Time {
	type open struct {
		t    *tracked
		inc  *incident
		inst assertd.Instance
		key  string // assert/fingerprint: the order they are paged in
	}
	var wake time.Time
	soonest := func(n time.Time) {
		if !n.IsZero() && (wake.IsZero() || n.Before(wake)) {
			wake = n
		}
	}
	e.mu.Lock()
	var cfg *config.Config
	if e.set != nil {
		cfg = e.set.Config
	}
	var todo []open
	for t := range e.open {
		switch inc := t.inc; {
		case inc == nil || inc.acked || (inc.loaded && !inc.timeline) || t.State != assertd.Escalated || !inc.start.Equal(t.Since) ||
			e.instances[t.Assert][t.Fingerprint] != t:
			// Resolved, acknowledged, without later pages, no longer
			// escalated, or forgotten: nothing more to page (a resolve
			// reads t.inc itself).
			delete(e.open, t)
		case inc.loaded && inc.stepped != nil && inc.stepped == policyIn(cfg, inc.first.Policy) && (inc.next.IsZero() || inc.next.After(now)):
			soonest(inc.next) // nothing due yet under the same policy
		default:
			todo = append(todo, open{t, inc, t.Instance, t.Assert + "/" + t.Fingerprint})
		}
	}
	e.mu.Unlock()
	slices.SortFunc(todo, func(a, b open) int { return strings.Compare(a.key, b.key) })

	for _, o := range todo {
		e.mu.Lock()
		loaded := o.inc.loaded
		e.mu.Unlock()
		if !loaded {
			if err := e.load(ctx, o.inst.Assert, o.inst.Fingerprint, o.inc); err != nil {
				if !errors.Is(err, store.ErrUnavailable) { // an outage is reported where changes are held
					e.log.Warn("escalation: reading an incident from before the restart", "err", err)
				}
				continue
			}
		}
		e.mu.Lock()
		policy := o.inc.first.Policy
		e.mu.Unlock()
		p := e.policyNamed(policy)
		if p == nil {
			continue
		}
		for _, c := range e.steps(o.t, o.inc, o.inst, p, now) {
			e.commit(ctx, c)
		}
		e.mu.Lock()
		o.inc.stepped = p
		soonest(o.inc.next)
		e.mu.Unlock()
	}
	return wake
}

// steps returns the changes that page the steps of inc due at now, and
// marks them written.
func (e *Engine) steps(t *tracked, inc *incident, inst assertd.Instance, p *config.EscalationPolicy, now time.Time) []store.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !inc.timeline || inc.acked || t.inc != inc {
		inc.next = time.Time{}
		return nil
	}
	round, levels, next := dueSteps(p, inc.start, now)
	inc.next = next
	if round != inc.round {
		inc.round, inc.sent = round, map[int]bool{}
	}
	var out []store.Change
	for _, level := range levels {
		if inc.sent[level] {
			continue
		}
		inc.sent[level] = true
		l := p.Levels[level]
		due := inc.start.Add(time.Duration(round)*p.Repeat.Std() + l.After.Std())
		after := due.Sub(inc.start).Round(time.Second)
		to := strings.Join(l.Notify, ", ")
		action, reason := assertd.ActLevel, fmt.Sprintf("not acknowledged after %s: level %d of %s pages %s", after, level+1, p.Name, to)
		if round > 0 {
			action = assertd.ActRepeat
			reason = fmt.Sprintf("not acknowledged after %s: repeat %d of %s pages level %d again (%s)", after, round, p.Name, level+1, to)
		}
		key := fmt.Sprintf("page/%s/%s/%d/r%d/l%d", inst.Assert, inst.Fingerprint, inc.start.UnixMicro(), round, level)
		if inst.Silenced != "" {
			// A silence mutes the step; it is recorded, and not paged later.
			d := assertd.Decision{Key: key, Assert: inst.Assert, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActNone, Policy: p.Name,
				Reason: "silenced by " + inst.Silenced + ": " + reason + " — not paged"}
			out = append(out, store.Change{Key: key, Decision: &d})
			continue
		}
		n := inc.first
		n.At, n.Level, n.Round = now, level, round
		n.Reason = reason + "; " + inc.first.Reason
		payload, _ := json.Marshal(n)
		var msgs []assertd.Message
		for _, ch := range l.Notify {
			inc.paged[ch] = true
			msgs = append(msgs, assertd.Message{Key: key + "/" + ch, Channel: ch, DedupKey: inc.dedup, Kind: string(assertd.NoticeTrigger),
				Payload: string(payload), Status: assertd.MsgPending, Created: now, NextAttempt: now})
		}
		d := assertd.Decision{Key: key, Assert: inst.Assert, Fingerprint: inst.Fingerprint, At: now, Action: action, Policy: p.Name, Reason: reason}
		out = append(out, store.Change{Key: key, Decision: &d, Messages: msgs})
	}
	return out
}

// acknowledged stops the escalation of t's incident that started at since.
func (e *Engine) acknowledged(t *tracked, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc := t.inc; inc != nil && inc.start.Equal(since) {
		inc.acked, inc.next = true, time.Time{}
	}
}

// policyOfIncident is the escalation policy of t's incident that started
// at since, else of its assert.
func (e *Engine) policyOfIncident(t *tracked, since time.Time) string {
	e.mu.Lock()
	inc, a := t.inc, e.asserts[t.Assert]
	if inc != nil && inc.start.Equal(since) && inc.first.Policy != "" {
		defer e.mu.Unlock()
		return inc.first.Policy
	}
	e.mu.Unlock()
	if a == nil {
		return ""
	}
	return e.policyName(a)
}

// resolves ends t's incident: the resolve messages go to every channel
// that got one of its pages, and to the first level of the policy (as any
// page does). It returns the messages and the channels, in order.
func (e *Engine) resolves(ctx context.Context, a *asserts.Compiled, t *tracked, inst assertd.Instance, reason string, now time.Time) ([]assertd.Message, []string) {
	e.mu.Lock()
	inc := t.inc
	t.inc = nil
	delete(e.open, t)
	loaded := inc == nil || inc.loaded
	e.mu.Unlock()
	if !loaded {
		if err := e.load(ctx, inst.Assert, inst.Fingerprint, inc); err != nil {
			e.log.Warn("resolve: reading the pages of the incident; resolving on the first level only", "err", err)
		}
	}
	p := e.policy(a)
	var channels []string
	name := ""
	if p != nil {
		name = p.Name
		if len(p.Levels) > 0 {
			channels = slices.Clone(p.Levels[0].Notify)
		}
	}
	if inc != nil {
		e.mu.Lock()
		var more []string
		for ch := range inc.paged {
			if !slices.Contains(channels, ch) {
				more = append(more, ch)
			}
		}
		if name == "" {
			name = inc.first.Policy
		}
		e.mu.Unlock()
		slices.Sort(more)
		channels = append(channels, more...)
	}
	return e.messagesTo(a, inst, name, assertd.NoticeResolve, reason, now, channels), channels
}

// paged reports whether t has a page out that no resolve answered yet.
func (e *Engine) paged(t *tracked) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return t.inc != nil
}

// policyNamed returns the escalation policy with this name, or nil.
func (e *Engine) policyNamed(name string) *config.EscalationPolicy {
	return policyIn(e.current().Config, name)
}

// policyIn is the escalation policy of c with this name, or nil.
func policyIn(c *config.Config, name string) *config.EscalationPolicy {
	if c == nil || name == "" {
		return nil
	}
	for i := range c.EscalationPolicies {
		if p := &c.EscalationPolicies[i]; p.Name == name {
			return p
		}
	}
	return nil
}

// resolveReason words a resolve decision.
func resolveReason(why string, channels []string) string {
	if len(channels) == 0 {
		return why + ": nobody was paged, nothing to resolve"
	}
	return why + ": resolving the page on " + strings.Join(channels, ", ")
}

// poke makes Run look at the schedule again now: an incident opened
// outside a Tick (a run that did not fix it) has later levels to plan, and
// a reload may bring new schedules and policies.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}
