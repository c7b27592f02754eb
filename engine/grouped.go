package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/store"
)

// escalateGrouped escalates an instance whose remediation was refused for a
// reason many instances share (rd.Group, the blast-radius breaker): each
// instance's decision and move to escalated are recorded, but the page goes
// out once per group: its messages are keyed by the group, so the store
// enqueues them for the first instance only.
func (e *Engine) escalateGrouped(ctx context.Context, a *asserts.Compiled, t *tracked, tr *assertd.Transition, key string, rd assertd.Decision, now time.Time) {
	e.mu.Lock()
	from := t.State
	t.State, t.Since, t.Reason = assertd.Escalated, now, rd.Reason
	inst := t.Instance
	e.mu.Unlock()
	d := assertd.Decision{Key: key, Assert: a.Name, Fingerprint: inst.Fingerprint, At: now, Action: assertd.ActEscalate,
		Remediation: rd.Remediation, Reason: rd.Reason + " (group " + rd.Group + ")", Policy: e.policyName(a)}
	msgs := e.messages(a, inst, assertd.NoticeTrigger, rd.Reason, now)
	for i := range msgs {
		msgs[i].Key = rd.Group + "/" + msgs[i].Channel
		msgs[i].DedupKey = rd.Group
		msgs[i].Payload = groupPayload(msgs[i].Payload, rd.Group)
	}
	e.opened(t, now, msgs, false)
	e.commit(ctx, store.Change{Key: key, Instance: &inst, Transition: tr, Decision: &d, Messages: msgs})
	if tr != nil {
		from = tr.To
	}
	esc := assertd.Transition{Assert: a.Name, Fingerprint: inst.Fingerprint, Labels: inst.Labels,
		From: from, To: assertd.Escalated, At: now, Reason: rd.Reason, Values: inst.Values}
	e.commit(ctx, store.Change{Key: esc.Key(), Instance: &inst, Transition: &esc})
}

// groupPayload turns an instance's notice into the group's: no instance
// labels or values, the group as fingerprint.
func groupPayload(payload, group string) string {
	var n assertd.Notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return payload
	}
	n.Fingerprint, n.Labels, n.Values, n.Annotations = group, assertd.Labels{}, nil, nil
	b, _ := json.Marshal(n)
	return string(b)
}

func runExpr(p *vm.Program, env map[string]any) (bool, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func valuesText(vs map[string]float64) string {
	if len(vs) == 0 {
		return ""
	}
	names := make([]string, 0, len(vs))
	for k := range vs {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%g", k, vs[k])
	}
	return " with " + strings.Join(parts, ", ")
}
