package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
)

func touchRules(helper, marker, extra string) string {
	return `asserts:
  - {name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}
remediations:
  - name: restart
` + extra + `    steps:
      - {name: restart, run: [` + helper + `, touch, ` + marker + `]}
      - {name: verify, verify: latency}
`
}

// 40 of 100 instances violating at once produce zero runs and
// one grouped page.
func TestBreakerZeroRunsOneGroupedPage(t *testing.T) {
	helper := helperProgram(t)
	marker := filepath.Join(t.TempDir(), "ran")
	set := loadRunnerSet(t, touchRules(helper, marker, ""), "")
	st, src := openStore(t), &source{}
	e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: src}, remediations.RunnerOptions{})
	vals := map[string]float64{}
	for i := range 100 {
		vals[fmt.Sprintf("i%02d", i)] = 10
	}
	src.set(vals, nil)
	ctx := context.Background()
	e.EvaluateNow(ctx, "latency", t0)
	for i := range 40 {
		vals[fmt.Sprintf("i%02d", i)] = 80
	}
	src.set(vals, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(10*time.Second))
	settle(t, e)
	if rs := runs(t, st); len(rs) != 0 {
		t.Fatalf("%d runs", len(rs))
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("something ran")
	}
	ms := messages(t, st)
	if len(ms) != 1 || ms[0].Kind != "trigger" || !strings.Contains(notice(t, ms[0]).Reason, "blast-radius breaker open: 40 of 100 instances of latency") {
		t.Fatalf("want one grouped page: %d messages %+v", len(ms), ms)
	}
	if v, n := e.Counts("latency", "", ""); v != 40 || n != 100 {
		t.Fatalf("counts %d/%d", v, n)
	}
	ds, _ := st.Decisions(ctx, store.DecisionFilter{Action: assertd.ActEscalate})
	if len(ds) != 40 {
		t.Fatalf("%d escalate decisions, want one per instance, recorded", len(ds))
	}
	if bs, err := e.Breakers(ctx, t0.Add(10*time.Second)); err != nil || len(bs) != 1 || !bs[0].Open || bs[0].ViolatingNow != 40 {
		t.Fatalf("automation is not suspended: %+v %v", bs, err)
	}
}

// errSettings makes the kill switch unreadable.
type errSettings struct{ store.Store }

func (errSettings) Settings(context.Context) ([]assertd.Setting, error) {
	return nil, fmt.Errorf("%w: database is locked", store.ErrUnavailable)
}

// Kill switch on (or unreadable) produces zero runs.
func TestKillSwitchZeroRuns(t *testing.T) {
	helper := helperProgram(t)
	for _, tc := range []struct{ name, reason string }{{"on", "the kill switch is on"}, {"unreadable", "kill switch cannot be read"}} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			set := loadRunnerSet(t, touchRules(helper, marker, ""), "")
			st, src := openStore(t), &source{}
			var rst remediations.Store = st
			if tc.name == "on" {
				st.PutSetting(context.Background(), assertd.Setting{Key: assertd.SettingKillSwitch, Value: "on", Updated: t0, By: "alice", Reason: "AZ outage"})
			} else {
				rst = errSettings{st}
			}
			var r *remediations.Runner
			e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src},
				NewRemediator: func(h remediations.Host) Remediator {
					r = remediations.NewRunner(remediations.RunnerOptions{Store: rst, Host: h})
					return r
				}})
			if err != nil {
				t.Fatal(err)
			}
			src.set(map[string]float64{"a": 80, "b": 90}, nil)
			e.EvaluateNow(context.Background(), "latency", t0)
			r.Wait()
			if rs := runs(t, st); len(rs) != 0 {
				t.Fatalf("%d runs", len(rs))
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("something ran")
			}
			ms := messages(t, st)
			if got := states(e); len(ms) != 2 || !strings.Contains(notice(t, ms[0]).Reason, tc.reason) || got != "a=escalated b=escalated" && got != "b=escalated a=escalated" {
				t.Fatalf("%s, messages %+v", got, ms)
			}
		})
	}
}

// approval: required: the run waits for an approval through the engine API;
// an approval that expires pages instead of running; an approved one runs.
func TestApproval(t *testing.T) {
	helper := helperProgram(t)
	for _, approve := range []bool{false, true} {
		t.Run(map[bool]string{false: "expires and pages", true: "approved runs"}[approve], func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			set := loadRunnerSet(t, touchRules(helper, marker, "    approval: {mode: required, expire: 15m}\n"), "")
			st, src := openStore(t), &source{}
			clock := fakeclock.New(t0)
			e, r := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: src}, remediations.RunnerOptions{Clock: clock})
			ctx := context.Background()
			src.set(map[string]float64{"a": 80}, nil)
			e.EvaluateNow(ctx, "latency", t0)
			// The run has asked for its approval once it waits on the clock.
			if err := clock.Settle(r.InFlight, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			pending, _ := st.PendingApprovals(ctx)
			if rs := runs(t, st); len(pending) != 1 || len(rs) != 1 || rs[0].Status != assertd.RunWaiting || states(e) != "a=remediating" {
				t.Fatalf("approvals %+v, runs %+v, %s", pending, rs, states(e))
			}
			runID := pending[0].RunID
			// The policy's first level is asked, once, with an
			// informational message naming the run.
			asked := messages(t, st)
			if len(asked) != 1 || asked[0].Kind != string(assertd.NoticeInfo) || notice(t, asked[0]).Approval != runID ||
				!notice(t, asked[0]).Expires.Equal(t0.Add(15*time.Minute)) {
				t.Fatalf("approval request messages %+v", asked)
			}
			if approve {
				src.set(map[string]float64{"a": 10}, nil) // the fix will verify
				if err := e.Approve(ctx, runID, "", true, "", t0.Add(time.Minute)); err == nil {
					t.Fatal("an approval without who was accepted")
				}
				if err := e.Approve(ctx, runID, "alice", true, "go ahead", t0.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				settle(t, e)
				if _, err := os.Stat(marker); err != nil || states(e) != "a=ok" {
					t.Fatalf("approved run did not run: %s", states(e))
				}
				if err := e.Approve(ctx, runID, "bob", false, "", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("a second answer: %v", err)
				}
				if log, _ := st.AuditLog(ctx, store.AuditFilter{Action: "run.approve"}); len(log) != 1 || log[0].Actor != "alice" {
					t.Fatalf("audit %+v", log)
				}
				return
			}
			clock.Add(15*time.Minute - time.Second)
			// Before the expiry the run's one wait has not fired: nothing can have moved.
			if n := clock.Waiters(); n != 1 || r.InFlight() != 1 || states(e) != "a=remediating" {
				t.Fatalf("before expiry: %d waits, %d runs in flight, %s", n, r.InFlight(), states(e))
			}
			clock.Add(time.Second)
			settle(t, e)
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("an expired approval ran")
			}
			run, _ := st.Run(ctx, runID)
			var ms []assertd.Message
			for _, m := range messages(t, st) {
				if m.Kind == string(assertd.NoticeTrigger) {
					ms = append(ms, m)
				}
			}
			if states(e) != "a=escalated" || run.Status != assertd.RunRefused || len(ms) != 1 ||
				!strings.Contains(notice(t, ms[0]).Reason, "no approval before it expired at 2026-11-22T01:15:00Z: paging instead of running") {
				t.Fatalf("%s, run %+v, messages %+v", states(e), run, ms)
			}
			if err := e.Approve(ctx, runID, "alice", true, "too late", t0.Add(16*time.Minute)); err == nil {
				t.Fatal("approved after expiry")
			}
		})
	}
}

// Break glass: a reason is mandatory, it is audited, and a dry run makes
// no external call.
func TestBreakGlass(t *testing.T) {
	helper := helperProgram(t)
	marker := filepath.Join(t.TempDir(), "ran")
	set := loadRunnerSet(t, touchRules(helper, marker, ""), "")
	st, src := openStore(t), &source{}
	st.PutSetting(context.Background(), assertd.Setting{Key: assertd.SettingKillSwitch, Value: "on", Updated: t0, By: "alice"})
	e, r := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: src}, remediations.RunnerOptions{})
	ctx := context.Background()
	src.set(map[string]float64{"a": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	a := assertd.Labels{"instance": "a"}
	for _, bad := range []BreakGlassRequest{
		{Remediation: "restart", Assert: "latency", Labels: a},
		{Remediation: "nope", Assert: "latency", Labels: a, Reason: "x"},
		{Remediation: "restart", Assert: "nope", Labels: a, Reason: "x"},
		{Remediation: "restart", Reason: "x"},
	} {
		if _, err := e.BreakGlass(ctx, bad); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
	run, err := e.BreakGlass(ctx, BreakGlassRequest{Remediation: "restart", Assert: "latency", Labels: a, Reason: "checking the plan", DryRun: true, By: "alice", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if ran, _ := st.Run(ctx, run.ID); !ran.Status.Final() {
		t.Fatalf("the dry run has not ended: %+v", ran)
	}
	if _, err := os.Stat(marker); err == nil || !run.Shadow {
		t.Fatalf("a dry run ran: %+v", run)
	}
	// By hand, the kill switch (an automation gate) does not apply.
	run, err = e.BreakGlass(ctx, BreakGlassRequest{Remediation: "restart", Assert: "latency", Labels: a, Reason: "restart by hand", By: "alice", At: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if ran, _ := st.Run(ctx, run.ID); !ran.Status.Final() {
		t.Fatalf("the run has not ended: %+v", ran)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the break-glass run did not run")
	}
	log, _ := st.AuditLog(ctx, store.AuditFilter{Action: "run.break_glass"})
	if len(log) != 2 || log[0].Reason != "restart by hand" || log[1].Detail != "run "+log[1].Detail[4:] || !strings.Contains(log[1].Detail, "dry run") {
		t.Fatalf("audit %+v", log)
	}
}
