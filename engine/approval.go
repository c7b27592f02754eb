package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
)

var _ remediations.ApprovalAsker = (*Engine)(nil)

// ApprovalRequested tells the first level of the instance's escalation
// policy that a run waits for a human's approval until expires: an
// informational message (it pages nobody) naming the run, on which a
// channel may offer to approve or refuse it. It is a decision with action
// notify, committed with its messages under the run's key, so it is
// written once.
func (e *Engine) ApprovalRequested(ctx context.Context, run assertd.Run, in assertd.Instance, expires time.Time) {
	e.mu.Lock()
	a := e.asserts[run.Assert]
	e.mu.Unlock()
	if a == nil {
		return
	}
	p := e.policy(a)
	if p == nil || len(p.Levels) == 0 {
		return
	}
	now := e.opts.Now()
	if in.Fingerprint == "" {
		in.Fingerprint = run.Fingerprint
	}
	if in.Labels == nil {
		in.Labels = run.Labels
	}
	reason := fmt.Sprintf("remediation %s (run %s) waits for an approval until %s: approve to run it, refuse to page instead",
		run.Remediation, run.ID, expires.UTC().Format(time.RFC3339))
	n := assertd.Notice{Version: assertd.NoticeVersion, Kind: assertd.NoticeInfo, Assert: a.Name, Description: a.Description,
		Fingerprint: in.Fingerprint, Labels: in.Labels, Values: in.Values, State: in.State, Reason: reason,
		Annotations: annotations(a, in), Policy: p.Name, At: now, Since: in.Since, RunID: run.ID, Approval: run.ID, Expires: expires}
	payload, _ := json.Marshal(n)
	key := "approval/" + run.ID
	var msgs []assertd.Message
	for _, ch := range p.Levels[0].Notify {
		msgs = append(msgs, assertd.Message{Key: key + "/" + ch, Channel: ch, DedupKey: key, Kind: string(assertd.NoticeInfo),
			Payload: string(payload), Status: assertd.MsgPending, Created: now, NextAttempt: now})
	}
	d := assertd.Decision{Key: key, Assert: a.Name, Fingerprint: in.Fingerprint, At: now, Action: assertd.ActNotify, Policy: p.Name,
		Reason: reason, RunID: run.ID}
	e.commit(ctx, store.Change{Key: key, Decision: &d, Messages: msgs})
}
