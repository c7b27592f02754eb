package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// An instance paged while it could not be told (a heartbeat never pinged),
// then really violated and remediated: whatever ends the incident resolves
// the page on every channel paged since the last resolve — the fix, or the
// recovery after a second page.
func TestPagedWhileUncertainIsResolved(t *testing.T) {

	for _, tc := range []struct {
		name     string
		verified bool
		restart  bool // a restart between the first page and the end
		outbox   []string
		resolve  string // the reason of the decision that resolves
	}{
		{name: "the fix resolves the page", verified: true,
			outbox:  []string{"trigger pager", "trigger slack", "info slack", "resolve pager", "resolve slack"},
			resolve: "fixed by remediation rerun (run ",
		},
		{name: "after a restart, the fix resolves the page paged before it", verified: true, restart: true,
			outbox:  []string{"trigger pager", "trigger slack", "info slack", "resolve pager", "resolve slack"},
			resolve: "fixed by remediation rerun (run ",
		},
		{name: "not fixed: paged again, and the recovery resolves once", verified: false,
			outbox:  []string{"trigger pager", "trigger slack", "trigger pager", "trigger slack", "resolve pager", "resolve slack"},
			resolve: "recovered: resolving the page on slack, pager",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := loadSet(t, backupRules)
			st, hb := openStore(t), &heartbeats{}
			ctx := context.Background()
			rem := &fakeRemediator{action: assertd.ActRemediate, verified: tc.verified}
			o := Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: &source{}}, Heartbeats: hb, NewRemediator: fixed(rem)}
			e, err := New(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			hb.set(asserts.HeartbeatStatus{State: "new"})
			for dt := time.Duration(0); dt <= 40*time.Second; dt += 10 * time.Second {
				e.EvaluateNow(ctx, "backup", t0.Add(dt))
			}
			if got := states(e); got != "=escalated" {
				t.Fatalf("never pinged: %s", got)
			}
			if tc.restart {
				if e, err = New(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			// The job ran and failed: violated, remediated (the fake's run
			// ends at t0+1m).
			hb.set(asserts.HeartbeatStatus{State: "down", LastExit: 3, LastPing: t0.Add(45 * time.Second)})
			e.EvaluateNow(ctx, "backup", t0.Add(50*time.Second))
			if !tc.verified {
				// The job runs again and pings: the second page resolves.
				hb.set(asserts.HeartbeatStatus{State: "up", Up: true, LastPing: t0.Add(2 * time.Minute)})
				e.EvaluateNow(ctx, "backup", t0.Add(2*time.Minute))
			}
			if got := states(e); got != "=ok" {
				t.Fatalf("at the end: %s", got)
			}
			ms := messages(t, st)
			slices.SortFunc(ms, func(a, b assertd.Message) int { return int(a.ID - b.ID) })
			var got []string
			for _, m := range ms {
				got = append(got, m.Kind+" "+m.Channel)
			}
			// Within one commit the order of the channels is the policy's.
			if !slices.Equal(sortedWithin(got), sortedWithin(tc.outbox)) {
				t.Fatalf("outbox %v, want %v", got, tc.outbox)
			}
			ds, _ := st.Decisions(ctx, store.DecisionFilter{Assert: "backup"})
			found := false
			for _, d := range ds {
				found = found || (strings.HasPrefix(d.Reason, tc.resolve) && strings.HasSuffix(d.Reason, "resolving the page on slack, pager"))
			}
			if !found {
				t.Fatalf("no decision resolving the page on slack, pager (%q…): %+v", tc.resolve, ds)
			}
		})
	}
}

// sortedWithin sorts the runs of messages of the same kind, so that the
// order of channels within one notice does not matter.
func sortedWithin(ms []string) []string {
	out := slices.Clone(ms)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.Fields(out[j])[0] == strings.Fields(out[i])[0] {
			j++
		}
		slices.Sort(out[i:j])
		i = j
	}
	return out
}
