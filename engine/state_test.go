package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
)

func compileAssert(t *testing.T, src string) *asserts.Compiled {
	t.Helper()
	set, errs := config.ParseRules("t.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set.Asserts[0]
}

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

type step struct {
	at    time.Duration // since t0
	v     string        // ok, bad, unc, clear (ok and clear holds), noclr (ok, clear does not hold), gone, down
	state assertd.State // after the step
}

// blindEscalated starts a table case escalated without a violation behind
// it (paged because it was uncertain for too long).
const blindEscalated assertd.State = "escalated (uncertain)"

func run(t *testing.T, a *asserts.Compiled, start assertd.State, steps []step) *tracked {
	t.Helper()
	tr := &tracked{Instance: assertd.Instance{State: start, Since: t0}}
	switch start {
	case assertd.Violated, assertd.Remediating, assertd.Escalated:
		// As the engine leaves them: the violation began before.
		tr.ViolatedSince = t0.Add(-time.Minute)
	case blindEscalated:
		tr.State, tr.blindEsc = assertd.Escalated, true
	}
	for i, s := range steps {
		in := input{now: t0.Add(s.at)}
		switch s.v {
		case "ok", "clear":
			in.verdict = &asserts.Verdict{State: assertd.OK, Clear: true, Reason: "holds"}
		case "noclr":
			in.verdict = &asserts.Verdict{State: assertd.OK, Clear: false, Reason: "holds"}
		case "bad":
			in.verdict = &asserts.Verdict{State: assertd.Violated, Reason: "violated"}
		case "unc":
			in.verdict = &asserts.Verdict{State: assertd.Uncertain, Reason: "no data"}
		case "down":
			in.srcErr = errors.New("connection refused")
		case "gone":
		default:
			t.Fatalf("step %d: %q", i, s.v)
		}
		tr.advance(a, in, DefaultFlap)
		if tr.State != s.state {
			t.Fatalf("step %d (%s at +%s): state %s, want %s (reason %q)", i, s.v, s.at, tr.State, s.state, tr.Reason)
		}
	}
	return tr
}

func TestStateMachine(t *testing.T) {
	const (
		ok  = assertd.OK
		pen = assertd.Pending
		vio = assertd.Violated
		unc = assertd.Uncertain
		esc = assertd.Escalated
		rem = assertd.Remediating
	)
	withFor := "asserts: [{name: a, query: {x: X}, expect: x < 1, for: 1m, clear_for: 30s}]"
	noFor := "asserts: [{name: a, query: {x: X}, expect: x < 1}]"
	uncertainMissing := "asserts: [{name: a, query: {x: X}, expect: x < 1, missing: uncertain}]"
	for _, tc := range []struct {
		name   string
		assert string
		start  assertd.State
		steps  []step
	}{
		{"ok stays ok", withFor, ok, []step{{0, "ok", ok}, {15 * time.Second, "ok", ok}}},
		{"violated without for", noFor, ok, []step{{0, "bad", vio}}},
		{"pending until for has passed, exactly", withFor, ok, []step{
			{0, "bad", pen}, {59 * time.Second, "bad", pen}, {60 * time.Second, "bad", vio}}},
		{"pending that recovers goes back to ok and the for clock restarts", withFor, ok, []step{
			{0, "bad", pen}, {30 * time.Second, "ok", ok}, {45 * time.Second, "bad", pen},
			{90 * time.Second, "bad", pen}, {105 * time.Second, "bad", vio}}},
		{"clear_for: back to ok only after clear held 30s", withFor, vio, []step{
			{0, "clear", vio}, {29 * time.Second, "clear", vio}, {30 * time.Second, "clear", ok}}},
		{"hysteresis: ok but clear does not hold keeps violated", withFor, vio, []step{
			{0, "noclr", vio}, {time.Hour, "noclr", vio}}},
		{"a relapse restarts the clear clock", withFor, vio, []step{
			{0, "clear", vio}, {20 * time.Second, "bad", vio}, {40 * time.Second, "clear", vio},
			{69 * time.Second, "clear", vio}, {70 * time.Second, "clear", ok}}},
		{"escalated recovers like violated", noFor, esc, []step{{0, "bad", esc}, {time.Second, "ok", ok}}},
		{"uncertain from no data", noFor, ok, []step{{0, "unc", unc}, {time.Minute, "unc", unc}, {2 * time.Minute, "ok", ok}}},
		{"source down is uncertain, never ok", noFor, ok, []step{{0, "down", unc}, {time.Minute, "down", unc}}},
		{"pending then source down: uncertain, the for clock is reset", withFor, ok, []step{
			{0, "bad", pen}, {30 * time.Second, "down", unc}, {60 * time.Second, "bad", pen}, {120 * time.Second, "bad", vio}}},
		{"violated then source down stays violated", noFor, vio, []step{{0, "down", vio}}},
		{"remediating is left alone: the run decides", noFor, rem, []step{{0, "ok", rem}, {time.Second, "bad", rem}}},
		{"missing resolves after two evaluations", noFor, vio, []step{{0, "gone", vio}, {time.Second, "gone", ok}}},
		{"missing: uncertain", uncertainMissing, ok, []step{{0, "gone", unc}}},
		{"escalated for a violation stays escalated while violated", noFor, esc, []step{{0, "bad", esc}, {time.Minute, "bad", esc}}},
		{"escalated while uncertain, then really violated: violated, so the policy acts", noFor, blindEscalated, []step{
			{0, "unc", esc}, {time.Minute, "bad", vio}}},
		{"escalated while uncertain, then violated: violated once for has held", withFor, blindEscalated, []step{
			{0, "bad", esc}, {59 * time.Second, "bad", esc}, {60 * time.Second, "bad", vio}}},
		{"escalated while uncertain: uncertain again restarts the for clock", withFor, blindEscalated, []step{
			{0, "bad", esc}, {30 * time.Second, "down", esc}, {60 * time.Second, "bad", esc}, {119 * time.Second, "bad", esc}, {120 * time.Second, "bad", vio}}},
		{"escalated while uncertain recovers once clear held", withFor, blindEscalated, []step{
			{0, "clear", esc}, {30 * time.Second, "clear", ok}}},
		{"escalated while uncertain: a source outage keeps it escalated", noFor, blindEscalated, []step{
			{0, "down", esc}, {time.Minute, "down", esc}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(t, compileAssert(t, tc.assert), tc.start, tc.steps)
		})
	}
}

func TestTransitionTimesAndReasons(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: a, query: {x: X}, expect: x < 1, for: 1m}]")
	tr := &tracked{Instance: assertd.Instance{State: assertd.OK}}
	c := tr.advance(a, input{now: t0, verdict: &asserts.Verdict{State: assertd.Violated, Reason: "violated: x < 1 is false with x=3"}}, DefaultFlap)
	if c == nil || c.from != assertd.OK || c.to != assertd.Pending || !strings.Contains(c.reason, "(for 1m)") || !tr.Since.Equal(t0) || !tr.ViolatedSince.Equal(t0) {
		t.Fatalf("%+v %+v", c, tr.Instance)
	}
	c = tr.advance(a, input{now: t0.Add(time.Minute), verdict: &asserts.Verdict{State: assertd.Violated, Reason: "violated"}}, DefaultFlap)
	if c == nil || c.to != assertd.Violated || !tr.Since.Equal(t0.Add(time.Minute)) || !tr.ViolatedSince.Equal(t0) {
		t.Fatalf("%+v %+v", c, tr.Instance)
	}
}

func TestFlapping(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: a, query: {x: X}, expect: x < 1}]")
	tr := &tracked{Instance: assertd.Instance{State: assertd.OK}}
	seq := ""
	for i := range 30 {
		v := assertd.OK
		if i%2 == 1 {
			v = assertd.Violated
		}
		tr.advance(a, input{now: t0.Add(time.Duration(i) * time.Minute), verdict: &asserts.Verdict{State: v, Clear: true}}, DefaultFlap)
		seq += fmt.Sprint(map[bool]int{false: 0, true: 1}[tr.flapping])
	}
	if !tr.flapping || !strings.HasPrefix(seq, "000000000") {
		t.Fatalf("alternating results should flap, not at once: %s", seq)
	}
	for i := range 30 {
		tr.advance(a, input{now: t0.Add(time.Hour + time.Duration(i)*time.Minute), verdict: &asserts.Verdict{State: assertd.OK, Clear: true}}, DefaultFlap)
	}
	if tr.flapping {
		t.Fatal("steady results should stop flapping")
	}
	if p := flapPercent([]bool{false, true, false, true}); p != 100 {
		t.Errorf("flapPercent alternating = %v", p)
	}
	if p := flapPercent([]bool{false, false, false}); p != 0 {
		t.Errorf("flapPercent steady = %v", p)
	}
}

// The reason of an instance escalated while uncertain follows what is known
// now, and the move to violated carries the violation's reason.
func TestBlindEscalationReason(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: a, query: {x: X}, expect: x < 1, for: 1m}]")
	tr := &tracked{Instance: assertd.Instance{State: assertd.Escalated, Since: t0, Reason: "uncertain for 5m: never pinged"}, blindEsc: true}
	if c := tr.advance(a, input{now: t0.Add(time.Second), verdict: &asserts.Verdict{State: assertd.Violated, Reason: "violated: x < 1 is false with x=3"}}, DefaultFlap); c != nil {
		t.Fatalf("moved before for: %+v", c)
	}
	if tr.Reason != "violated: x < 1 is false with x=3 (for 1m)" {
		t.Fatalf("stale reason %q", tr.Reason)
	}
	c := tr.advance(a, input{now: t0.Add(time.Minute + time.Second), verdict: &asserts.Verdict{State: assertd.Violated, Reason: "violated: x < 1 is false with x=4"}}, DefaultFlap)
	if c == nil || c.from != assertd.Escalated || c.to != assertd.Violated || c.reason != "violated: x < 1 is false with x=4" || !tr.ViolatedSince.Equal(t0.Add(time.Second)) {
		t.Fatalf("%+v %+v", c, tr.Instance)
	}
}

// The engine's view overlays silences and held changes on the state; the
// state underneath is kept.
func TestInstanceView(t *testing.T) {
	stored := assertd.Instance{State: assertd.OK, Since: t0, Reason: "holds"}
	for _, tc := range []struct {
		name                 string
		t                    tracked
		state, under, heldTo assertd.State
		held                 bool
		reason               string
	}{
		{"plain", tracked{Instance: assertd.Instance{State: assertd.Violated, Reason: "x"}, saved: savedOf(stored)}, assertd.Violated, "", "", false, "x"},
		{"silenced", tracked{Instance: assertd.Instance{State: assertd.Violated, Silenced: "s-1", Reason: "x"}}, assertd.Silenced, assertd.Violated, "", false, "x"},
		{"held: the stored state, and the state to come", tracked{Instance: assertd.Instance{State: assertd.Remediating, Reason: "allowed: restart"}, saved: savedOf(stored), held: 2},
			assertd.OK, "", assertd.Remediating, true, "holds"},
		{"held and silenced", tracked{Instance: assertd.Instance{State: assertd.Violated, Silenced: "s-1"}, saved: savedOf(stored), held: 1},
			assertd.Silenced, assertd.OK, assertd.Violated, true, "holds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.t.view()
			if v.State != tc.state || v.Underlying != tc.under || v.Held != tc.held || v.HeldState != tc.heldTo || v.Reason != tc.reason {
				t.Fatalf("view %+v", v)
			}
			if tc.t.State == assertd.Silenced || tc.t.State == "" {
				t.Fatalf("the state underneath changed: %s", tc.t.State)
			}
		})
	}
}
