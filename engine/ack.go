package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// ErrNotEscalated is returned when an acknowledgement names an instance that is not paged.
var ErrNotEscalated = errors.New("not escalated")

// Acknowledge records that a human (by) took the page of one escalated
// instance: a decision with action ack, plus an audit entry. The engine
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
	res, err := e.opts.Store.Commit(ctx, store.Change{Key: key, Decision: &d})
	if err != nil {
		return fmt.Errorf("acknowledge %s/%s: %w", assert, fingerprint, err)
	}
	e.acknowledged(t, inst.Since)
	if !res.Applied {
		return nil
	}
	if _, err := e.opts.Store.Audit(ctx, assertd.AuditEntry{At: now, Actor: by, Action: "incident.ack",
		Target: assert + "/" + fingerprint, Reason: comment}); err != nil {
		return fmt.Errorf("acknowledge %s/%s: the ack is recorded, its audit entry is not: %w", assert, fingerprint, err)
	}
	e.log.Info("page acknowledged", "assert", assert, "fingerprint", fingerprint, "by", by)
	return nil
}
