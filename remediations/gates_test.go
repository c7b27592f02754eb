package remediations

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// brokenSettings is a store whose settings cannot be read.
type brokenSettings struct{ store.Store }

func (brokenSettings) Settings(context.Context) ([]assertd.Setting, error) {
	return nil, errors.New("database is locked")
}

func setting(t *testing.T, st store.Store, key, value string) {
	t.Helper()
	if err := st.PutSetting(context.Background(), assertd.Setting{Key: key, Value: value, Updated: t0, By: "alice", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

func pastRun(t *testing.T, st store.Store, id, rem, key string, started time.Time, status assertd.RunStatus) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateRun(ctx, assertd.Run{ID: id, Remediation: rem, Assert: "latency", LockKey: key, Started: started}); err != nil {
		t.Fatal(err)
	}
	if status.Final() {
		if err := st.FinishRun(ctx, id, status, started.Add(time.Second), "done"); err != nil {
			t.Fatal(err)
		}
	}
}

const keyA = "lock/api/a"

// Every gate, with injected time: each refusal is ActHold with its reason.
func TestGates(t *testing.T) {
	base := Remediation{Name: "restart", Lock: "api/{{ .Labels.instance }}", Steps: []Step{{Name: "r", Run: []string{"true"}}, verifyStep()}}
	with := func(f func(*Remediation)) Remediation { r := base; f(&r); return r }
	for _, tc := range []struct {
		name   string
		rem    Remediation
		setup  func(t *testing.T, g *rig)
		in     func(assertd.Instance) assertd.Instance
		now    time.Time
		action assertd.Action
		reason string
	}{
		{name: "allowed", rem: base, action: assertd.ActRemediate, reason: "allowed: remediation restart for lock/api/a"},
		{name: "kill switch setting on", rem: base, setup: func(t *testing.T, g *rig) { setting(t, g.st, assertd.SettingKillSwitch, "on") },
			action: assertd.ActHold, reason: "kill switch is on (set by alice: test)"},
		{name: "kill switch in the config", rem: base, setup: func(t *testing.T, g *rig) { g.host.safety.KillSwitch = true },
			action: assertd.ActHold, reason: "kill switch is on (config safety.kill_switch)"},
		{name: "kill switch setting off overrides the config", rem: base, setup: func(t *testing.T, g *rig) {
			g.host.safety.KillSwitch = true
			setting(t, g.st, assertd.SettingKillSwitch, "off")
		}, action: assertd.ActRemediate},
		{name: "kill switch unreadable fails closed", rem: base, setup: func(t *testing.T, g *rig) { g.r.o.Store = brokenSettings{g.st} },
			action: assertd.ActHold, reason: "kill switch cannot be read (database is locked): failing closed"},
		{name: "silenced", rem: base, in: func(in assertd.Instance) assertd.Instance { in.Silenced = "s1"; return in },
			action: assertd.ActHold, reason: "silenced by s1"},
		{name: "uncertain", rem: base, in: func(in assertd.Instance) assertd.Instance { in.State = assertd.Uncertain; return in },
			action: assertd.ActHold, reason: "uncertain: never remediated blindly"},
		{name: "allow: the label matches its pattern", rem: with(func(r *Remediation) { r.Allow = map[string]string{"instance": "[a-z0-9-]+"} }),
			action: assertd.ActRemediate},
		{name: "allow: the label does not match (the pattern is anchored)", rem: with(func(r *Remediation) { r.Allow = map[string]string{"instance": "[a-z0-9-]+"} }),
			in: func(in assertd.Instance) assertd.Instance {
				in.Labels = assertd.Labels{"instance": "a/../admin"}
				return in
			},
			action: assertd.ActHold, reason: `refused: allow: label instance="a/../admin" does not match [a-z0-9-]+: nothing runs for this value`},
		{name: "allow: a missing label does not match", rem: with(func(r *Remediation) { r.Allow = map[string]string{"cluster": "[a-z]+"} }),
			action: assertd.ActHold, reason: `allow: label cluster="" does not match [a-z]+`},
		{name: "guard does not hold", rem: with(func(r *Remediation) { r.Guard = `fraction_violating("latency", "zone") < 0.5` }),
			setup: func(t *testing.T, g *rig) {
				g.host.insts = []assertd.Instance{instA, {Assert: "latency", Labels: assertd.Labels{"zone": "z1"}, State: assertd.OK},
					{Assert: "latency", Labels: assertd.Labels{"zone": "z2"}, State: assertd.OK}, {Assert: "latency", Labels: assertd.Labels{"zone": "z2"}, State: assertd.OK}}
			}, action: assertd.ActHold, reason: `guard "fraction_violating(\"latency\", \"zone\") < 0.5" does not hold`},
		{name: "guard holds", rem: with(func(r *Remediation) { r.Guard = `violating("latency") < 0.3 * instances("latency")` }),
			setup: func(t *testing.T, g *rig) {
				g.host.insts = []assertd.Instance{instA}
				for range 9 {
					g.host.insts = append(g.host.insts, assertd.Instance{Assert: "latency", State: assertd.OK})
				}
			}, action: assertd.ActRemediate},
		{name: "mode shadow", rem: with(func(r *Remediation) { r.Mode = ModeShadow }), action: assertd.ActShadow, reason: "mode shadow"},
		{name: "rollout does not select", rem: with(func(r *Remediation) { r.Rollout = `{zone="z9"}` }), action: assertd.ActShadow, reason: "rollout"},
		{name: "rollout selects", rem: with(func(r *Remediation) { r.Rollout = `{zone=~"z1|z2"}` }), action: assertd.ActRemediate},
		{name: "the lock key renders empty: no target, no action", rem: with(func(r *Remediation) { r.Lock = "{{ .Labels.missing }}" }),
			action: assertd.ActHold, reason: "lock key renders empty"},
		{name: "max_runs reached: frozen", rem: with(func(r *Remediation) { r.MaxRuns = &Limit{Count: 2, Within: assertd.Duration(time.Hour)} }),
			setup: func(t *testing.T, g *rig) {
				pastRun(t, g.st, "p1", "restart", keyA, t0.Add(-50*time.Minute), assertd.RunFailed)
				pastRun(t, g.st, "p2", "restart", keyA, t0.Add(-10*time.Minute), assertd.RunFailed)
				pastRun(t, g.st, "p3", "restart", keyA, t0.Add(-5*time.Minute), assertd.RunRefused) // refused runs do not count
			}, action: assertd.ActHold, reason: "max_runs: 2 runs of restart for lock/api/a within 1h (at most 2): the target is frozen"},
		{name: "max_runs window passed", rem: with(func(r *Remediation) { r.MaxRuns = &Limit{Count: 2, Within: assertd.Duration(time.Hour)} }),
			setup: func(t *testing.T, g *rig) {
				pastRun(t, g.st, "p1", "restart", keyA, t0.Add(-60*time.Minute-time.Microsecond), assertd.RunFailed)
				pastRun(t, g.st, "p2", "restart", keyA, t0.Add(-10*time.Minute), assertd.RunFailed)
			}, action: assertd.ActRemediate},
		{name: "rate setting overrides max_runs", rem: with(func(r *Remediation) { r.MaxRuns = &Limit{Count: 5, Within: assertd.Duration(time.Hour)} }),
			setup: func(t *testing.T, g *rig) {
				setting(t, g.st, assertd.SettingRatePrefix+"restart", "1/1h")
				pastRun(t, g.st, "p1", "restart", keyA, t0.Add(-50*time.Minute), assertd.RunSucceeded)
			}, action: assertd.ActHold, reason: "max_runs: 1 runs"},
		{name: "cooldown", rem: with(func(r *Remediation) { r.Cooldown = assertd.Duration(5 * time.Minute) }),
			setup: func(t *testing.T, g *rig) {
				pastRun(t, g.st, "p1", "restart", keyA, t0.Add(-5*time.Minute+time.Second), assertd.RunSucceeded)
			},
			action: assertd.ActHold, reason: "cooldown: the last run of restart for lock/api/a started at 2026-11-22T00:55:01Z; the next may start at 2026-11-22T01:00:01Z"},
		{name: "cooldown passed", rem: with(func(r *Remediation) { r.Cooldown = assertd.Duration(5 * time.Minute) }),
			setup: func(t *testing.T, g *rig) {
				pastRun(t, g.st, "p1", "restart", keyA, t0.Add(-5*time.Minute), assertd.RunSucceeded)
			},
			action: assertd.ActRemediate},
		{name: "lock held", rem: base, setup: func(t *testing.T, g *rig) {
			if _, ok, err := g.st.AcquireLock(context.Background(), keyA, "run-other", t0.Add(-time.Minute), 10*time.Minute); !ok || err != nil {
				t.Fatal(err)
			}
		}, action: assertd.ActHold, reason: "lock lock/api/a is held by run run-other until 2026-11-22T01:09:00Z"},
		{name: "lock expired", rem: base, setup: func(t *testing.T, g *rig) {
			g.st.AcquireLock(context.Background(), keyA, "run-other", t0.Add(-time.Hour), 10*time.Minute)
		}, action: assertd.ActRemediate},
		{name: "max concurrent runs", rem: base, setup: func(t *testing.T, g *rig) { setting(t, g.st, assertd.SettingMaxConcurrentRuns, "0") },
			action: assertd.ActHold, reason: "0 runs are in progress, the most allowed at once"},
		{name: "run budget spent", rem: base, setup: func(t *testing.T, g *rig) {
			setting(t, g.st, assertd.SettingRunBudget, "2/1h")
			pastRun(t, g.st, "p1", "other", "k1", t0.Add(-30*time.Minute), assertd.RunSucceeded)
			pastRun(t, g.st, "p2", "other", "k2", t0.Add(-20*time.Minute), assertd.RunFailed)
		}, action: assertd.ActHold, reason: "run budget is spent: 2 runs within 1h"},
		{name: "run budget from the config, window passed", rem: base, setup: func(t *testing.T, g *rig) {
			g.host.safety.Budget = &Limit{Count: 1, Within: assertd.Duration(time.Hour)}
			pastRun(t, g.st, "p1", "other", "k1", t0.Add(-61*time.Minute), assertd.RunSucceeded)
		}, action: assertd.ActRemediate},
		{name: "approval required", rem: with(func(r *Remediation) { r.Approval = Approval{Mode: "required"} }),
			action: assertd.ActRemediate, reason: "waiting up to 15m0s for an approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, compileRem(t, tc.rem))
			if tc.setup != nil {
				tc.setup(t, g)
			}
			in := instA
			if tc.in != nil {
				in = tc.in(in)
			}
			d := g.r.Decide(context.Background(), "restart", in, t0)
			if d.Action != tc.action || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision %s: %s", d.Action, d.Reason)
			}
		})
	}
}

// A run that loses the race for its lock between Decide and Start is
// recorded refused (and the engine pages for it).
func TestStartRefusedWhenLockTaken(t *testing.T) {
	g := newRig(t, compileRem(t, Remediation{Name: "restart", Lock: "api", Steps: []Step{{Name: "r", Run: []string{helper, "echo"}}, verifyStep()}}))
	g.st.AcquireLock(context.Background(), "lock/api", "run-other", t0, time.Hour)
	res := g.run(t, "restart", instA, assertd.ActRemediate, "r1")
	r, _ := g.st.Run(context.Background(), "r1")
	if res.Verified || r.Status != assertd.RunRefused || !strings.Contains(res.Outcome, "held by run run-other") {
		t.Fatalf("%+v %+v", res, r)
	}
}

// The breaker: 40 of 100 instances turn violated in one window: every one
// is refused with the same group (one page); the reason follows the fleet;
// it closes when the share of violating instances falls back, or when an
// operator closes it.
func TestBlastRadiusBreaker(t *testing.T) {
	g := newRig(t, compileRem(t, Remediation{Name: "restart", Steps: []Step{{Name: "r", Run: []string{"true"}}, verifyStep()}}))
	g.host.safety.BlastRadius = BlastRadius{By: []string{"zone"}}
	ctx := context.Background()
	insts := make([]assertd.Instance, 100)
	for i := range insts {
		zone := []string{"z1", "z2", "z3", "z4"}[i%4]
		ls := assertd.Labels{"instance": "i" + string(rune('0'+i/10)) + string(rune('0'+i%10)), "zone": zone}
		insts[i] = assertd.Instance{Assert: "latency", Fingerprint: ls.Fingerprint(), Labels: ls, State: assertd.OK, Since: t0.Add(-time.Hour)}
	}
	for i := range 40 {
		insts[i].State, insts[i].Since = assertd.Violated, t0
	}
	g.host.insts = insts
	groups := map[string]bool{}
	for i := range 40 {
		d := g.r.Decide(ctx, "restart", insts[i], t0)
		if d.Action != assertd.ActHold || d.Group == "" || !strings.Contains(d.Reason, "40 of 100 instances of latency") {
			t.Fatalf("instance %d: %+v", i, d)
		}
		groups[d.Group] = true
		g.host.insts[i].State = assertd.Escalated // as the engine moves it
	}
	if len(groups) != 1 {
		t.Fatalf("groups %v", groups)
	}
	b, err := g.st.Breaker(ctx, "latency")
	if err != nil || !b.Open || b.Violating != 40 || b.Instances != 100 || !b.OpenedAt.Equal(t0) {
		t.Fatalf("stored breaker %+v %v", b, err)
	}
	// An hour later one more violates (11 of the 25 of zone z3, the worst
	// group now): a new violation is refused with the fleet as it is now,
	// not the 40 of 100 of the trip.
	later := t0.Add(time.Hour)
	g.host.insts[50].State, g.host.insts[50].Since = assertd.Violated, later
	d := g.r.Decide(ctx, "restart", g.host.insts[50], later)
	if d.Action != assertd.ActHold || !strings.Contains(d.Reason, `11 of 25 instances of latency with zone="z3" are violating now`) || !groups[d.Group] {
		t.Fatalf("while open: %+v", d)
	}
	bs, err := g.r.Breakers(ctx, later)
	if err != nil || len(bs) != 1 || !bs[0].Open || bs[0].ViolatingNow != 11 || bs[0].InstancesNow != 25 || !strings.Contains(bs[0].Reason, "11 of 25") {
		t.Fatalf("shown: %+v %v", bs, err)
	}
	// The share falls back: automation resumes, the store says so.
	for i := range 40 {
		g.host.insts[i].State = assertd.OK
	}
	// Shown, it says so and stays open: only a decision closes it (just
	// after a start not every instance has been evaluated yet).
	if bs, _ := g.r.Breakers(ctx, later); len(bs) != 1 || !bs[0].Open || !strings.Contains(bs[0].Reason, "fell back to 1 of 100") {
		t.Fatalf("shown after the share fell back: %+v", bs)
	}
	if b, _ := g.st.Breaker(ctx, "latency"); !b.Open {
		t.Fatalf("showing the breaker closed it: %+v", b)
	}
	if d := g.r.Decide(ctx, "restart", g.host.insts[50], later); d.Action != assertd.ActRemediate {
		t.Fatalf("after the share fell back: %+v", d)
	}
	if b, _ := g.st.Breaker(ctx, "latency"); b.Open || b.ClosedBy != "" || !strings.Contains(b.CloseReason, "fell back: 1 of 100") {
		t.Fatalf("after the share fell back: %+v", b)
	}

	// A zone: 10 of the 25 instances of z2 (40%) turn violated, 10% overall.
	for i := range g.host.insts {
		g.host.insts[i].State = assertd.OK
	}
	at := later.Add(time.Hour)
	n := 0
	for i := range g.host.insts {
		if g.host.insts[i].Labels["zone"] == "z2" && n < 10 {
			g.host.insts[i].State, g.host.insts[i].Since = assertd.Violated, at
			n++
		}
	}
	z2 := g.host.insts[1]
	d = g.r.Decide(ctx, "restart", z2, at)
	if d.Action != assertd.ActHold || !strings.Contains(d.Reason, `10 of 25 instances of latency with zone="z2"`) {
		t.Fatalf("zone: %+v", d)
	}
	// A runner started afresh on the same store (a restart) sees it open.
	fresh := NewRunner(RunnerOptions{Store: g.st, Host: g.host})
	if bs, err := fresh.Breakers(ctx, at); err != nil || len(bs) != 1 || !bs[0].Open || bs[0].GroupLabel != "zone" || bs[0].GroupValue != "z2" {
		t.Fatalf("after a restart: %+v %v", bs, err)
	}
	// An operator closes it: the onsets before the close no longer count,
	// though the zone is still 40% violated; the next violation runs.
	if _, err := fresh.CloseBreaker(ctx, "latency", "alice", " ", at.Add(time.Minute)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a close without a reason: %v", err)
	}
	closed, err := fresh.CloseBreaker(ctx, "latency", "alice", "zone z2 is back", at.Add(time.Minute))
	if err != nil || closed.Open || closed.ClosedBy != "alice" || !strings.Contains(closed.Reason, "closed by alice") {
		t.Fatalf("close: %+v %v", closed, err)
	}
	if _, err := fresh.CloseBreaker(ctx, "latency", "alice", "again", at.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("closing a closed breaker: %v", err)
	}
	next := g.host.insts[5] // z2's
	next.State, next.Since = assertd.Violated, at.Add(2*time.Minute)
	g.host.insts[5] = next
	if d := g.r.Decide(ctx, "restart", next, at.Add(2*time.Minute)); d.Action != assertd.ActRemediate {
		t.Fatalf("after the close: %+v", d)
	}
	if log, _ := g.st.AuditLog(ctx, store.AuditFilter{Action: "breaker.close"}); len(log) != 1 || log[0].Actor != "alice" || log[0].Reason != "zone z2 is back" {
		t.Fatalf("audit %+v", log)
	}
	// Onsets after the close count: 40 more trip it again.
	more := 0
	for i := range g.host.insts {
		if g.host.insts[i].State == assertd.OK && more < 40 {
			g.host.insts[i].State, g.host.insts[i].Since = assertd.Violated, at.Add(3*time.Minute)
			more++
		}
	}
	if d := g.r.Decide(ctx, "restart", g.host.insts[99], at.Add(3*time.Minute)); d.Action != assertd.ActHold || d.Group == closed.Group {
		t.Fatalf("onsets after the close: %+v", d)
	}
	// A single violation never trips it, however small the fleet.
	g2 := newRig(t, compileRem(t, Remediation{Name: "restart", Steps: []Step{{Name: "r", Run: []string{"true"}}, verifyStep()}}))
	g2.host.insts = []assertd.Instance{instA, {Assert: "latency", State: assertd.OK}}
	g2.host.insts[0].Since = t0
	if d := g2.r.Decide(context.Background(), "restart", g2.host.insts[0], t0); d.Action != assertd.ActRemediate {
		t.Fatalf("one of two: %+v", d)
	}
}
