package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// ErrNotEscalated is returned when an acknowledgement names an instance that is not paged.
var ErrNotEscalated = errors.New("not escalated")

// Acknowledge records that a human (by) took the page of one escalated
// instance: a decision with action ack, plus an audit entry, and an ack
// message to every channel the incident paged (PagerDuty acknowledges its
// incident, Slack says who took it in the page's thread). The engine
// pages no later level and no repeat of that incident; the resolve still
// goes out when the instance recovers. Acknowledging the same incident
// again changes nothing and is no error.
func (e *Engine) Acknowledge(ctx context.Context, assert, fingerprint, by, comment string, now time.Time) error {
	if by == "" {
		return fmt.Errorf("acknowledge %s/%s: who acknowledges is required", assert, fingerprint)
	}
	e.mu.Lock()
	t := e.instances[assert][fingerprint]
	var inst assertd.Instance
	if t != nil {
		inst = t.Instance
	}
	e.mu.Unlock()
	if t == nil {
		return fmt.Errorf("acknowledge %s/%s: no such instance: %w", assert, fingerprint, store.ErrNotFound)
	}
	if inst.State != assertd.Escalated {
		return fmt.Errorf("acknowledge %s/%s: the instance is %s, nobody is paged: %w", assert, fingerprint, inst.State, ErrNotEscalated)
	}
	// One acknowledgement per incident: the key carries the escalation's start.
	key := fmt.Sprintf("ack/%s/%s/%d", assert, fingerprint, inst.Since.UnixMicro())
	reason := "acknowledged by " + by
	if comment != "" {
		reason += ": " + comment
	}
	policy := e.policyOfIncident(t, inst.Since)
	reason += "; no further level or repeat is paged, the resolve still goes out"
	d := assertd.Decision{Key: key, Assert: assert, Fingerprint: fingerprint, At: now, Action: assertd.ActAck, Reason: reason, Policy: policy}
	msgs := e.ackMessages(ctx, t, inst, key, by, comment, now)
	res, err := e.opts.Store.Commit(ctx, store.Change{Key: key, Decision: &d, Messages: msgs})
	if err != nil {
		return fmt.Errorf("acknowledge %s/%s: %w", assert, fingerprint, err)
	}
	e.acknowledged(t, inst.Since)
	if !res.Applied {
		return nil
	}
	if len(msgs) > 0 && e.opts.Enqueued != nil {
		e.opts.Enqueued()
	}
	if _, err := e.opts.Store.Audit(ctx, assertd.AuditEntry{At: now, Actor: by, Action: "incident.ack",
		Target: assert + "/" + fingerprint, Reason: comment}); err != nil {
		return fmt.Errorf("acknowledge %s/%s: the ack is recorded, its audit entry is not: %w", assert, fingerprint, err)
	}
	e.log.Info("page acknowledged", "assert", assert, "fingerprint", fingerprint, "by", by)
	return nil
}

// ackMessages are the ack messages of t's incident that started at
// inst.Since: one per channel it paged, committed with the decision under
// its key, so an acknowledgement made twice (or from PagerDuty after
// assertd sent it there) writes them once.
func (e *Engine) ackMessages(ctx context.Context, t *tracked, inst assertd.Instance, key, by, comment string, now time.Time) []assertd.Message {
	e.mu.Lock()
	inc := t.inc
	loaded := inc == nil || inc.loaded
	e.mu.Unlock()
	if inc == nil || !inc.start.Equal(inst.Since) {
		return nil
	}
	if !loaded {
		if err := e.load(ctx, inst.Assert, inst.Fingerprint, inc); err != nil {
			e.log.Warn("acknowledge: reading the pages of the incident; no channel is told", "err", err)
			return nil
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc.dedup == "" {
		return nil
	}
	channels := make([]string, 0, len(inc.paged))
	for ch := range inc.paged {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	n := inc.first
	n.Kind, n.At, n.By, n.Level, n.Round = assertd.NoticeAck, now, by, 0, 0
	n.Reason = "acknowledged by " + by
	if comment != "" {
		n.Reason += ": " + comment
	}
	payload, _ := json.Marshal(n)
	var out []assertd.Message
	for _, ch := range channels {
		out = append(out, assertd.Message{Key: key + "/" + ch, Channel: ch, DedupKey: inc.dedup, Kind: string(assertd.NoticeAck),
			Payload: string(payload), Status: assertd.MsgPending, Created: now, NextAttempt: now})
	}
	return out
}
