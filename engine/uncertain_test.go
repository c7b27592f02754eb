package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// backupRules: a heartbeat assert that pages while uncertain and has a
// remediation that reruns the job.
const backupRules = `asserts:
  - name: backup
    every: 10s
    uncertain_for: 30s
    expect: heartbeat("backup").up
    remediate: rerun
heartbeats: [{name: backup, period: 1h, public: true}]
remediations: [{name: rerun, steps: [{name: r, run: ['true']}, {name: v, verify: backup}]}]
`

// heartbeats is a fake heartbeat tracker whose status the test sets.
type heartbeats struct {
	mu sync.Mutex
	st asserts.HeartbeatStatus
}

func (h *heartbeats) set(st asserts.HeartbeatStatus) { h.mu.Lock(); h.st = st; h.mu.Unlock() }

func (h *heartbeats) Status(name string, _ time.Time) (asserts.HeartbeatStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	st.Name = name
	return st, true
}

// An instance escalated because it could not be told (a heartbeat never
// pinged) and then really violated (its job failed) is no longer stuck:
// its remediation is considered — run when allowed, the refusal recorded
// and paged when not — and its reason is the violation's.
func TestUncertainEscalatedThenViolated(t *testing.T) {

	for _, tc := range []struct {
		name     string
		rem      *fakeRemediator
		state    assertd.State
		action   assertd.Action
		reason   string
		started  int
		messages int // the uncertain page, then the refusal's
	}{
		{"allowed: the remediation runs", &fakeRemediator{action: assertd.ActRemediate, verified: false}, assertd.Escalated, assertd.ActRemediate, "allowed: rerun", 1, 4},
		{"refused: the refusal is recorded and paged", &fakeRemediator{action: assertd.ActHold}, assertd.Escalated, assertd.ActEscalate, "allowed: rerun", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := loadSet(t, backupRules)
			st, hb := openStore(t), &heartbeats{}
			ctx := context.Background()
			e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: &source{}}, Heartbeats: hb, NewRemediator: fixed(tc.rem)})
			if err != nil {
				t.Fatal(err)
			}
			hb.set(asserts.HeartbeatStatus{State: "new"})
			for dt := time.Duration(0); dt <= 40*time.Second; dt += 10 * time.Second {
				e.EvaluateNow(ctx, "backup", t0.Add(dt))
			}
			in := e.Instances()[0]
			if in.State != assertd.Escalated || !strings.Contains(in.Reason, "never been pinged") || len(messages(t, st)) != 2 {
				t.Fatalf("never pinged: %+v, %d messages", in, len(messages(t, st)))
			}
			// The job ran and failed: the heartbeat is down with an exit code.
			hb.set(asserts.HeartbeatStatus{State: "down", LastExit: 3, LastPing: t0.Add(45 * time.Second)})
			e.EvaluateNow(ctx, "backup", t0.Add(50*time.Second))

			ds, err := st.Decisions(ctx, store.DecisionFilter{Assert: "backup"})
			if err != nil {
				t.Fatal(err)
			}
			var considered *assertd.Decision
			for i := range ds {
				if ds[i].At.Equal(t0.Add(50*time.Second)) && ds[i].Action == tc.action {
					considered = &ds[i]
				}
			}
			if considered == nil || !strings.Contains(considered.Reason, tc.reason) {
				t.Fatalf("the remediation was not considered after the violation: decisions %+v", ds)
			}
			if len(tc.rem.started) != tc.started {
				t.Fatalf("runs started: %d, want %d", len(tc.rem.started), tc.started)
			}
			in = e.Instances()[0]
			if in.State != tc.state || strings.Contains(in.Reason, "never been pinged") {
				t.Fatalf("after the violation: %+v (the reason must be the violation's)", in)
			}
			if got := transitions(t, st); !strings.Contains(got, "uncertain>escalated@30s escalated>violated@50s") {
				t.Fatalf("transitions %s", got)
			}
			if n := len(messages(t, st)); n != tc.messages {
				t.Fatalf("%d messages, want %d", n, tc.messages)
			}
			// Still violated: nothing more happens.
			e.EvaluateNow(ctx, "backup", t0.Add(60*time.Second))
			if len(tc.rem.started) != tc.started || len(messages(t, st)) != tc.messages {
				t.Fatalf("acted twice: %d runs, %d messages", len(tc.rem.started), len(messages(t, st)))
			}
		})
	}
}

// After a restart, an instance stored escalated without a violation is
// still told apart from one escalated for a violation.
func TestBlindEscalationAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    assertd.Instance
		blind bool
	}{
		{"escalated while uncertain", assertd.Instance{State: assertd.Escalated, Since: t0}, true},
		{"escalated while uncertain, violation clock started since", assertd.Instance{State: assertd.Escalated, Since: t0, ViolatedSince: t0.Add(time.Second)}, true},
		{"escalated for a violation", assertd.Instance{State: assertd.Escalated, Since: t0, ViolatedSince: t0.Add(-time.Minute)}, false},
		{"escalated for a violation at once (no for)", assertd.Instance{State: assertd.Escalated, Since: t0, ViolatedSince: t0}, false},
		{"violated", assertd.Instance{State: assertd.Violated, Since: t0}, false},
	} {
		if got := blindStored(tc.in); got != tc.blind {
			t.Errorf("%s: blind %v, want %v", tc.name, got, tc.blind)
		}
	}
}
