package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// act records what an evaluation changed and decides what to do about it.
// Every transition and the decision it causes are committed (with the
// outbox messages) before anything acts on them.
func (e *Engine) act(ctx context.Context, a *asserts.Compiled, t *tracked, c *change, now time.Time) {
	e.mu.Lock()
	inst := t.Instance
	deferred := t.deferred
	paged := t.inc != nil // a page is out: the recovery resolves it
	e.mu.Unlock()

	if c == nil {
		switch {
		case inst.State == assertd.Uncertain && now.Sub(inst.Since) >= a.UncertainFor && inst.Silenced == "":
			// An instance uncertain for too long is escalated: we cannot tell.
			reason := fmt.Sprintf("uncertain for %s: %s", now.Sub(inst.Since).Round(time.Second), inst.Reason)
			e.escalate(ctx, a, t, assertd.Uncertain, reason, now)
		case inst.State == assertd.Violated && deferred:
			// Held back by a silence or an expected disruption: act once
			// that ends, or once the disruption has lasted too long.
			if why := e.holdBack(inst, now); why == "" {
				e.onViolated(ctx, a, t, nil, now)
			}
		default:
			e.persistClocks(ctx, t)
		}
		return
	}
	tr := transition(inst, c, now)
	d := assertd.Decision{Assert: a.Name, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActNone, Reason: "recorded"}
	switch {
	case c.to == assertd.Violated:
		e.onViolated(ctx, a, t, &tr, now)
		return
	case c.to == assertd.OK && (c.from == assertd.Escalated || paged):
		msgs, channels := e.resolves(ctx, a, t, inst, "recovered: "+c.reason, now)
		d.Action, d.Reason = assertd.ActResolve, resolveReason("recovered", channels)
		d.Policy = e.policyName(a)
		e.commit(ctx, store.Change{Key: tr.Key(), Instance: &inst, Transition: &tr, Decision: &d, Messages: msgs})
		return
	case c.to == assertd.OK:
		d.Reason = "recovered"
	}
	e.commit(ctx, store.Change{Key: tr.Key(), Instance: &inst, Transition: &tr, Decision: &d})
}

// mayAct reports whether act has anything to do for an instance whose
// evaluation changed nothing (e.mu held): escalating one uncertain for too
// long, acting on a violation held back, or storing clocks that moved.
func (e *Engine) mayAct(a *asserts.Compiled, t *tracked, now time.Time) bool {
	switch {
	case t.State == assertd.Uncertain && now.Sub(t.Since) >= a.UncertainFor && t.Silenced == "":
		return true
	case t.State == assertd.Violated && t.deferred:
		return true
	}
	return clocksDirty(t)
}

// clocksDirty reports whether the instance's clocks moved since they were
// stored (e.mu held); a held change stores the instance when the store is
// back, in order.
func clocksDirty(t *tracked) bool {
	return t.held == 0 && (!t.stored || !t.ViolatedSince.Equal(t.savedViolated) || !t.ClearSince.Equal(t.savedClear))
}

// holdBack says why a violated instance must not be acted on now, or "".
func (e *Engine) holdBack(in assertd.Instance, now time.Time) string {
	if in.Silenced != "" {
		return "silenced by " + in.Silenced + ": no action"
	}
	if slices.Contains(expectedDisruption, in.Lifecycle) {
		bound := DefaultExpectedDisruption
		if c := e.current().Config; c != nil && c.Defaults.ExpectedDisruption > 0 {
			bound = c.Defaults.ExpectedDisruption.Std()
		}
		if now.Sub(in.Since) < bound {
			return fmt.Sprintf("expected disruption: the target is %s; no action unless still violated after %s", in.Lifecycle, bound)
		}
	}
	return ""
}

// onViolated decides what to do about an instance that is violated: tr is
// the transition that made it so (nil when an earlier, held-back violation
// is acted on now).
func (e *Engine) onViolated(ctx context.Context, a *asserts.Compiled, t *tracked, tr *assertd.Transition, now time.Time) {
	e.mu.Lock()
	inst := t.Instance
	flapping, flapPaged := t.flapping, t.flapPaged
	e.mu.Unlock()
	key := ""
	if tr != nil {
		key = tr.Key()
	} else {
		key = fmt.Sprintf("act/%s/%s/%d", a.Name, inst.Fingerprint, inst.Since.UnixMicro())
	}
	d := assertd.Decision{Key: key, Assert: a.Name, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActNone, Policy: e.policyName(a)}
	if why := e.holdBack(inst, now); why != "" {
		e.mu.Lock()
		t.deferred = true
		e.mu.Unlock()
		d.Reason = why
		e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &d})
		return
	}
	e.mu.Lock()
	t.deferred = false
	e.mu.Unlock()
	switch {
	case flapping && flapPaged:
		d.Reason = "flapping: already paged; no remediation while it flaps"
		e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &d})
		return
	case flapping:
		e.mu.Lock()
		t.flapPaged = true
		e.mu.Unlock()
		e.commitAndEscalate(ctx, a, t, tr, key, "flapping (its state keeps changing): never remediated; paging once", now)
		return
	case a.Remediate == "":
		e.commitAndEscalate(ctx, a, t, tr, key, "no remediation is set for this assert: paging", now)
		return
	case e.rem == nil:
		e.commitAndEscalate(ctx, a, t, tr, key, fmt.Sprintf("remediation %s cannot run: no remediation runner is configured; paging instead", a.Remediate), now)
		return
	}
	// While the store is away a decision would read none of the limits (the
	// runner fails closed and pages a refusal): hold it back, as for a
	// silence, and decide once the store is back.
	if err := e.opts.Store.Health(ctx); errors.Is(err, store.ErrUnavailable) {
		e.mu.Lock()
		t.deferred = true
		e.mu.Unlock()
		if tr != nil {
			d.Reason = "the store is unavailable: no decision until it is back"
			e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &d})
		}
		return
	}
	rd := e.rem.Decide(ctx, a.Remediate, inst, now)
	rd.Key, rd.Assert, rd.Fingerprint, rd.At, rd.Remediation = key, a.Name, inst.Fingerprint, now, a.Remediate
	if rd.Policy == "" {
		rd.Policy = e.policyName(a)
	}
	switch rd.Action {
	case assertd.ActRemediate:
		if rd.RunID == "" {
			rd.RunID = runID(key)
		}
		e.mu.Lock()
		t.State, t.Since, t.Reason = assertd.Remediating, now, rd.Reason
		inst = t.Instance
		e.mu.Unlock()
		if !e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &rd}) {
			return // held: the run starts only with its record
		}
		e.startRun(ctx, a, rd, inst)
	case assertd.ActShadow:
		if rd.RunID == "" {
			rd.RunID = runID(key)
		}
		if e.commit(ctx, store.Change{Key: key + "/shadow", Decision: &rd}) {
			e.startRun(ctx, a, rd, inst)
		}
		e.commitAndEscalate(ctx, a, t, tr, key, "shadow mode: "+rd.Reason+"; nothing was done, paging", now)
	default:
		// Refused (hold) or escalate: page, with the reason; once per
		// group when many instances share the refusal (grouped.go).
		if rd.Group != "" {
			e.escalateGrouped(ctx, a, t, tr, key, rd, now)
			return
		}
		e.commitAndEscalate(ctx, a, t, tr, key, rd.Reason, now)
	}
}

func runID(key string) string {
	h := sha256.Sum256([]byte(key))
	return "run-" + hex.EncodeToString(h[:8])
}

func transition(in assertd.Instance, c *change, now time.Time) assertd.Transition {
	return assertd.Transition{Assert: in.Assert, Fingerprint: in.Fingerprint, Labels: in.Labels,
		From: c.from, To: c.to, At: now, Reason: c.reason, Values: in.Values}
}

// commitAndEscalate commits the transition (when there is one) with an
// escalate decision and its pages, then the move to escalated.
func (e *Engine) commitAndEscalate(ctx context.Context, a *asserts.Compiled, t *tracked, tr *assertd.Transition, key, reason string, now time.Time) {
	e.mu.Lock()
	from := t.State
	t.State, t.Since, t.Reason = assertd.Escalated, now, reason
	inst := t.Instance
	e.mu.Unlock()
	d := assertd.Decision{Key: key, Assert: a.Name, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActEscalate, Reason: reason, Policy: e.policyName(a)}
	msgs := e.messages(a, inst, assertd.NoticeTrigger, reason, now)
	e.opened(t, now, msgs, true)
	e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &d, Messages: msgs})
	if tr != nil {
		from = tr.To
	}
	esc := assertd.Transition{Assert: a.Name, Fingerprint: inst.Fingerprint, Labels: inst.Labels,
		From: from, To: assertd.Escalated, At: now, Reason: reason, Values: inst.Values}
	e.commit(ctx, store.Change{Key: esc.Key(), Instance: &inst, Transition: &esc})
}

// escalate moves an instance that is uncertain (state from) to escalated:
// blind, so that a violation found later is still acted on. While its
// assert floods (past max_instances), the page is the flood's, once for
// all its instances.
func (e *Engine) escalate(ctx context.Context, a *asserts.Compiled, t *tracked, from assertd.State, reason string, now time.Time) {
	e.mu.Lock()
	t.State, t.Since, t.Reason, t.blindEsc = assertd.Escalated, now, reason, true
	inst := t.Instance
	group := ""
	if f := e.floods[a.Name]; f != nil {
		group = f.group(a.Name)
	}
	e.mu.Unlock()
	tr := assertd.Transition{Assert: a.Name, Fingerprint: inst.Fingerprint, Labels: inst.Labels,
		From: from, To: assertd.Escalated, At: now, Reason: reason, Values: inst.Values}
	d := assertd.Decision{Assert: a.Name, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActEscalate, Reason: reason, Policy: e.policyName(a)}
	msgs := e.messages(a, inst, assertd.NoticeTrigger, reason, now)
	if group != "" {
		d.Reason += " (group " + group + ")"
		for i := range msgs {
			msgs[i].Key = group + "/" + msgs[i].Channel
			msgs[i].DedupKey = group
			msgs[i].Payload = groupPayload(msgs[i].Payload, group)
		}
	}
	e.opened(t, now, msgs, group == "")
	e.commit(ctx, store.Change{Key: tr.Key(), Instance: &inst, Transition: &tr, Decision: &d, Messages: msgs})
}

// persistClocks stores an instance whose for/clear clocks moved without a
// state change, so that a restart continues them.
func (e *Engine) persistClocks(ctx context.Context, t *tracked) {
	e.mu.Lock()
	dirty := clocksDirty(t)
	inst := t.Instance
	if dirty {
		t.savedViolated, t.savedClear, t.stored, t.saved = t.ViolatedSince, t.ClearSince, true, savedOf(inst)
	}
	e.mu.Unlock()
	if !dirty {
		return
	}
	if err := e.opts.Store.PutInstance(e.fence(ctx, inst.Assert), inst); err != nil && !e.wasFenced(inst.Assert, err) {
		e.log.Warn("storing instance clocks", "assert", inst.Assert, "err", err)
	}
}

// interrupted escalates, exactly once, the instance of a run that was left
// running when assertd stopped (the store made it uncertain).
func (e *Engine) interrupted(ctx context.Context, r assertd.Run, now time.Time) {
	e.mu.Lock()
	a := e.asserts[r.Assert]
	t := e.instancesOf(r.Assert)[r.Fingerprint]
	if t == nil {
		t = &tracked{Instance: assertd.Instance{Assert: r.Assert, Fingerprint: r.Fingerprint, Labels: r.Labels}}
		e.instancesOf(r.Assert)[r.Fingerprint] = t
	}
	reason := fmt.Sprintf("run %s of %s was interrupted: assertd stopped while it ran, so the fix is not verified", r.ID, r.Remediation)
	t.State, t.Since, t.Reason, t.blindEsc = assertd.Escalated, now, reason, false
	inst := t.Instance
	e.mu.Unlock()
	if e.rem != nil {
		e.rem.Interrupted(r)
	}
	tr := assertd.Transition{Assert: r.Assert, Fingerprint: r.Fingerprint, Labels: r.Labels,
		From: assertd.Uncertain, To: assertd.Escalated, At: now, Reason: reason}
	d := assertd.Decision{Assert: r.Assert, Fingerprint: r.Fingerprint, At: now, Action: assertd.ActEscalate, Reason: reason, RunID: r.ID}
	var msgs []assertd.Message
	if a != nil {
		d.Policy = e.policyName(a)
		msgs = e.messages(a, inst, assertd.NoticeTrigger, reason, now)
		for i := range msgs {
			msgs[i].Key = "escalate-interrupted/" + r.ID + "/" + msgs[i].Channel
		}
	}
	e.opened(t, now, msgs, true)
	// The key is the run's: a second restart finds it committed and pages no one again.
	e.commit(ctx, store.Change{Key: "escalate-interrupted/" + r.ID, Instance: &inst, Transition: &tr, Decision: &d, Messages: msgs})
}

func (e *Engine) policyName(a *asserts.Compiled) string {
	if a.Escalate != "" {
		return a.Escalate
	}
	if c := e.current().Config; c != nil {
		return c.Defaults.Escalate
	}
	return ""
}

func (e *Engine) policy(a *asserts.Compiled) *config.EscalationPolicy {
	c := e.current().Config
	if c == nil {
		return nil
	}
	name := e.policyName(a)
	for i := range c.EscalationPolicies {
		if p := &c.EscalationPolicies[i]; p.Name == name {
			return p
		}
	}
	return nil
}

// messages builds the outbox messages of a notice: pages go to the first
// level's channels (escalation.go pages the later ones), information to
// the policy's info channels.
func (e *Engine) messages(a *asserts.Compiled, in assertd.Instance, kind assertd.NoticeKind, reason string, now time.Time) []assertd.Message {
	p := e.policy(a)
	if p == nil {
		return nil
	}
	var channels []string
	switch {
	case kind == assertd.NoticeInfo:
		channels = p.Info
	case len(p.Levels) > 0:
		channels = p.Levels[0].Notify
	}
	return e.messagesTo(a, in, p.Name, kind, reason, now, channels)
}

// messagesTo builds the outbox messages of a notice on these channels.
func (e *Engine) messagesTo(a *asserts.Compiled, in assertd.Instance, policy string, kind assertd.NoticeKind, reason string, now time.Time, channels []string) []assertd.Message {
	n := assertd.Notice{Version: assertd.NoticeVersion, Kind: kind, Assert: a.Name, Description: a.Description,
		Fingerprint: in.Fingerprint, Labels: in.Labels, Values: in.Values, State: in.State, Reason: reason,
		Annotations: annotations(a, in), GeneratorURL: in.GeneratorURL, Policy: policy, At: now, Since: in.Since}
	payload, _ := json.Marshal(n)
	var out []assertd.Message
	for _, ch := range channels {
		out = append(out, assertd.Message{Channel: ch, DedupKey: a.Name + "/" + in.Fingerprint, Kind: string(kind),
			Payload: string(payload), Status: assertd.MsgPending, Created: now, NextAttempt: now})
	}
	return out
}

// annotations renders an assert's annotation templates for an instance.
// The annotations of the alert behind an alert-triggered instance come
// first; the assert's own override them.
func annotations(a *asserts.Compiled, in assertd.Instance) map[string]string {
	if len(a.Annotations) == 0 {
		return maps.Clone(in.AlertAnnotations)
	}
	data := map[string]any{"Assert": a.Name, "Description": a.Description, "State": string(in.State),
		"Labels": map[string]string(in.Labels), "Values": in.Values}
	out := maps.Clone(in.AlertAnnotations)
	if out == nil {
		out = map[string]string{}
	}
	for k, t := range a.Annotations {
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			out[k] = "(annotation failed: " + err.Error() + ")"
			continue
		}
		out[k] = b.String()
	}
	return out
}

// commit writes a change, or holds it (in order) while the store is away;
// it reports whether the change is stored now.
func (e *Engine) commit(ctx context.Context, c store.Change) bool {
	e.heldMu.Lock()
	defer e.heldMu.Unlock()
	var err error
	if len(e.held) == 0 {
		if err = e.commitOne(ctx, c); errors.Is(err, store.ErrFenced) {
			return false // another replica owns the share: nothing is acted on
		}
	}
	if len(e.held) > 0 || err != nil {
		e.held = append(e.held, c)
		e.metrics.held.Set(float64(len(e.held)))
		e.countHeld(c, 1)
		return false
	}
	return true
}

// countHeld counts the held changes of the change's instance (the API
// shows it as held while any waits).
func (e *Engine) countHeld(c store.Change, delta int) {
	if c.Instance == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.instances[c.Instance.Assert][c.Instance.Fingerprint]; t != nil {
		t.held = max(t.held+delta, 0)
	}
}

// markStored notes that the store holds in, so that its clocks are not
// written again until they move.
func (e *Engine) markStored(in assertd.Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.instances[in.Assert][in.Fingerprint]; t != nil {
		t.stored, t.savedViolated, t.savedClear, t.saved = true, in.ViolatedSince, in.ClearSince, savedOf(in)
	}
}

func commitDecision(key string, d assertd.Decision) store.Change {
	return store.Change{Key: key, Decision: &d}
}

func (e *Engine) commitOne(ctx context.Context, c store.Change) error {
	// A change is written ahead of what it causes even while assertd stops:
	// a cancelled context must not turn into a change the store "refused"
	// (and that is lost) for an evaluation already made.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(e.fence(ctx, changeAssert(c))), commitTimeout)
	defer cancel()
	_, err := e.opts.Store.Commit(wctx, c)
	switch {
	case e.wasFenced(changeAssert(c), err):
		e.log.Error("the share moved to another replica: the change is not committed", "key", c.Key, "err", err)
		return err
	case err == nil:
		e.metrics.storeUp.Set(1)
		if in := c.Instance; in != nil {
			e.markStored(*in)
		}
		if len(c.Messages) > 0 && e.opts.Enqueued != nil {
			e.opts.Enqueued()
		}
		return nil
	case errors.Is(err, store.ErrUnavailable):
		e.metrics.storeUp.Set(0)
		e.log.Error("store unavailable: holding the change and every action after it", "key", c.Key, "err", err)
		return err
	default:
		// A change the store refuses will not succeed later: record it and move on.
		e.log.Error("store refused a change", "key", c.Key, "err", err)
		return nil
	}
}

// commitTimeout bounds one write-ahead commit, also during shutdown.
const commitTimeout = 10 * time.Second

// flushHeld commits held changes once the store is back.
func (e *Engine) flushHeld(ctx context.Context) {
	e.heldMu.Lock()
	flushed := 0
	for len(e.held) > 0 {
		if err := e.commitOne(ctx, e.held[0]); err != nil && !errors.Is(err, store.ErrFenced) {
			break
		}
		e.countHeld(e.held[0], -1)
		e.held = e.held[1:]
		flushed++
		e.metrics.held.Set(float64(len(e.held)))
	}
	e.heldMu.Unlock()
	if flushed > 0 {
		e.resumeOwed(ctx) // runs decided during the outage start now, with their record
	}
}

// resumeOwed starts the runs that were decided and committed but never
// started — a crash or a store outage fell between the commit and the
// action — for instances still waiting on them. Creating a run is
// idempotent by its ID, so an action is neither lost nor doubled.
func (e *Engine) resumeOwed(ctx context.Context) {
	if e.rem == nil {
		return
	}
	owed, err := e.opts.Store.PendingDecisions(ctx)
	if err != nil {
		e.log.Warn("reading owed decisions", "err", err)
		return
	}
	for _, d := range owed {
		if d.Action != assertd.ActRemediate {
			continue
		}
		e.mu.Lock()
		a, t := e.asserts[d.Assert], e.instances[d.Assert][d.Fingerprint]
		waiting := a != nil && t != nil && t.State == assertd.Remediating
		var inst assertd.Instance
		if waiting {
			inst = t.Instance
		}
		e.mu.Unlock()
		if waiting {
			e.log.Info("starting a run that was decided but not started", "assert", d.Assert, "run", d.RunID)
			e.startRun(ctx, a, d, inst)
		}
	}
}

// Held is the number of changes waiting for the store.
func (e *Engine) Held() int {
	e.heldMu.Lock()
	defer e.heldMu.Unlock()
	return len(e.held)
}

// withStepLog adds a run's step log to a notice payload.
func withStepLog(payload, runID, log string) string {
	var n assertd.Notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return payload
	}
	n.RunID, n.StepLog = runID, log
	b, _ := json.Marshal(n)
	return string(b)
}
