package remediations

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
)

// counter reads one counter of reg by its labels; -1 when it is absent.
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// Runs are counted when they end, by final status; refusals when a gate
// refuses, by kind.
func TestRunAndRefusalCounters(t *testing.T) {
	ok := compileRem(t, Remediation{Name: "restart", Cooldown: assertd.Duration(5 * time.Minute),
		Steps: []Step{{Name: "restart", Run: []string{helper, "echo", "ok"}}, verifyStep()}})
	bad := compileRem(t, Remediation{Name: "drain", Steps: []Step{{Name: "drain", Run: []string{helper, "exit", "3"}}, verifyStep()}})
	g := newRig(t, ok, bad)
	runs := func(rem, outcome string) float64 {
		return counter(t, g.reg, "assertd_remediation_runs_total", map[string]string{"remediation": rem, "outcome": outcome})
	}
	refusals := func(reason string) float64 {
		return counter(t, g.reg, "assertd_refusals_total", map[string]string{"reason": reason})
	}
	if n := runs("restart", "succeeded"); n != -1 {
		t.Fatalf("a run counted before any ran: %v", n)
	}
	if n := refusals("cooldown"); n != 0 {
		t.Fatalf(`assertd_refusals_total{reason="cooldown"} = %v before any refusal, want 0`, n)
	}
	if res := g.run(t, "restart", instA, assertd.ActRemediate, "r1"); !res.Verified {
		t.Fatalf("restart: %+v", res)
	}
	if res := g.run(t, "drain", instA, assertd.ActRemediate, "r2"); res.Verified {
		t.Fatalf("drain verified: %+v", res)
	}
	if n := runs("restart", "succeeded"); n != 1 {
		t.Errorf(`runs{restart,succeeded} = %v, want 1`, n)
	}
	if n := runs("drain", "failed"); n != 1 {
		t.Errorf(`runs{drain,failed} = %v, want 1`, n)
	}
	if n := runs("restart", "failed"); n != -1 {
		t.Errorf(`runs{restart,failed} = %v, want none`, n)
	}
	// Starting the same run again does not run it, nor count it.
	g.run(t, "restart", instA, assertd.ActRemediate, "r1")
	if n := runs("restart", "succeeded"); n != 1 {
		t.Errorf(`runs{restart,succeeded} = %v after a repeated start, want 1`, n)
	}

	d := g.r.Decide(context.Background(), "restart", instA, g.clock.Now())
	if d.Action != assertd.ActHold {
		t.Fatalf("within the cooldown: %+v", d)
	}
	if n := refusals("cooldown"); n != 1 {
		t.Errorf(`refusals{cooldown} = %v, want 1`, n)
	}
	if d := g.r.Decide(context.Background(), "drain", instA, g.clock.Now()); d.Action != assertd.ActRemediate {
		t.Fatalf("drain: %+v", d)
	}
	g.host.mu.Lock()
	g.host.safety.KillSwitch = true
	g.host.mu.Unlock()
	g.r.Decide(context.Background(), "drain", instA, g.clock.Now())
	if n, c := refusals("kill_switch"), refusals("cooldown"); n != 1 || c != 1 {
		t.Errorf(`refusals{kill_switch} = %v, {cooldown} = %v, want 1 and 1`, n, c)
	}
}
