package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/remediations"
)

const alertRules = `asserts:
  - name: pg-down
    trigger: {alertmanager: '{alertname="PostgresqlDown"}'}
    verify: {query: {up: pg_up}, expect: up == 1, resolved_within: 300ms}
    remediate: restart-pg
remediations:
  - name: restart-pg
    steps:
      - {name: restart, run: ['true']}
      - {name: check, verify: pg-down, timeout: 5s}
`

func pgAlert(inst string, st alerts.State, starts time.Time) alerts.Alert {
	return alerts.Alert{Labels: assertd.Labels{"alertname": "PostgresqlDown", "instance": inst}, State: st, StartsAt: starts,
		Annotations: assertd.Labels{"summary": inst + " is down", "runbook_url": "http://wiki/pg"}, GeneratorURL: "http://prom:9090/graph?g0.expr=pg_up"}
}

// effects stands in for the restart step and calls do when it runs.
type effects struct{ do func() }

func (f effects) Step(_ string, st *remediations.CompiledStep) (bool, string, bool) {
	if st.Kind != "run" {
		return false, "", false
	}
	if f.do != nil {
		f.do()
	}
	return true, "restarted", true
}

func alertEngine(t *testing.T, feed *alerts.Feed, src asserts.Querier, fx remediations.Effects) (*Engine, *remediations.Runner, func() []assertd.Message) {
	t.Helper()
	set := loadRunnerSet(t, alertRules, "")
	st := openStore(t)
	var r *remediations.Runner
	e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, Alerts: feed,
		NewRemediator: func(h remediations.Host) Remediator {
			r = remediations.NewRunner(remediations.RunnerOptions{Host: h, Store: st, Effects: fx, Grace: 200 * time.Millisecond})
			return r
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Wait)
	return e, r, func() []assertd.Message { return messages(t, st) }
}

// An alert becomes an instance that remediates; the verify trusts neither
// the alert nor the fix alone: the alert must resolve within
// resolved_within and the query must hold.
func TestAlertTriggeredRemediation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resolves bool
		up       float64
		state    string
		kinds    string // outbox messages, oldest first: channel:kind
		why      string
	}{
		{"fixed: resolved and up", true, 1, "db1=ok", "slack:info", "alert resolved within 300ms; verify of pg-down holds"},
		{"still firing: paged", false, 1, "db1=escalated", "pager:trigger", "the alert still fires 300ms after the verify began"},
		{"resolved but down: paged", true, 0, "db1=escalated", "pager:trigger", "verify of pg-down is violated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed, src := alerts.New(0), &source{}
			src.set(map[string]float64{"db1": tc.up, "db2": 1}, nil)
			now := time.Now()
			fire := pgAlert("db1", alerts.Firing, now.Add(-time.Minute))
			fx := effects{do: func() {
				if tc.resolves {
					res := fire
					res.State = alerts.Resolved
					feed.Update(alerts.SenderAlertmanager, []alerts.Alert{res}, time.Now())
				}
			}}
			e, _, msgs := alertEngine(t, feed, src, fx)
			feed.Update(alerts.SenderAlertmanager, []alerts.Alert{fire}, now)
			if err := e.EvaluateNow(context.Background(), "pg-down", now); err != nil {
				t.Fatal(err)
			}
			settle(t, e)
			if got := states(e); got != tc.state {
				t.Fatalf("states %s", got)
			}
			ms := msgs()
			var kinds []string
			for i := len(ms) - 1; i >= 0; i-- {
				kinds = append(kinds, ms[i].Channel+":"+ms[i].Kind)
			}
			if strings.Join(kinds, " ") != tc.kinds {
				t.Fatalf("messages %v", kinds)
			}
			n := notice(t, ms[0])
			if !strings.Contains(n.Reason+n.StepLog, tc.why) {
				t.Fatalf("notice reason %q log %q", n.Reason, n.StepLog)
			}
			if n.Labels["instance"] != "db1" || n.Labels["alertname"] != "PostgresqlDown" || n.Annotations["runbook_url"] != "http://wiki/pg" ||
				n.GeneratorURL != "http://prom:9090/graph?g0.expr=pg_up" {
				t.Fatalf("the notice carries the alert's labels, annotations and generator URL: %+v", n)
			}
		})
	}
}

// The instance follows the alert: pending, firing, resolved; a sender that
// failed makes it uncertain, never ok.
func TestAlertTriggeredStates(t *testing.T) {
	feed, src := alerts.New(0), &source{}
	set, _ := loadSet(t, `asserts:
  - name: pg-down
    trigger: {rules: '{alertname="PostgresqlDown"}'}
    verify: {resolved_within: 1m}
`)
	st := openStore(t)
	e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, Alerts: feed})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(at time.Duration, as []alerts.Alert, want string) {
		t.Helper()
		if as != nil {
			feed.Replace(alerts.SenderRules, as, t0.Add(at))
		}
		e.EvaluateNow(ctx, "pg-down", t0.Add(at))
		if got := states(e); got != want {
			t.Fatalf("at %s: %s, want %s", at, got, want)
		}
	}
	step(0, []alerts.Alert{pgAlert("db1", alerts.Pending, t0)}, "db1=pending")
	step(time.Minute, []alerts.Alert{pgAlert("db1", alerts.Firing, t0)}, "db1=escalated")
	feed.Fail(alerts.SenderRules, errors.New("rule group failed: query timed out"), t0.Add(2*time.Minute))
	e.EvaluateNow(ctx, "pg-down", t0.Add(2*time.Minute))
	if in := e.Instances()[0]; !strings.Contains(in.Reason, "query timed out") {
		t.Fatalf("a failed sender: %+v", in)
	}
	step(3*time.Minute, []alerts.Alert{}, "db1=ok")
	if got := transitions(t, st); got != "ok>pending@0s pending>violated@1m0s violated>escalated@1m0s escalated>ok@3m0s" {
		t.Fatalf("transitions %s", got)
	}
}

// A verify with resolved_within waits for the alert to resolve; it does
// not pass while the alert fires.
func TestVerifyWaitsForTheAlertToResolve(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - name: pg-down
    trigger: {alertmanager: '{alertname="PostgresqlDown"}'}
    verify: {resolved_within: 1m}
`)
	st := openStore(t)
	synctest.Test(t, func(t *testing.T) {
		feed := alerts.New(0)
		e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{}, Alerts: feed})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fire := pgAlert("db1", alerts.Firing, start)
		feed.Update(alerts.SenderAlertmanager, []alerts.Alert{fire}, start)
		type result struct {
			ok  bool
			why string
			err error
		}
		done := make(chan result, 1)
		go func() {
			ok, why, err := e.Verify(context.Background(), "pg-down", fire.Labels, time.Now())
			done <- result{ok, why, err}
		}()
		time.Sleep(40 * time.Second) // fake time: the verify is still waiting
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("returned while the alert fires: %+v", r)
		default:
		}
		res := fire
		res.State = alerts.Resolved
		feed.Update(alerts.SenderAlertmanager, []alerts.Alert{res}, time.Now())
		r := <-done
		if !r.ok || r.err != nil || time.Since(start) != 40*time.Second {
			t.Fatalf("after the resolve at 40s: %+v at %s", r, time.Since(start))
		}

		// Firing throughout: it fails when resolved_within is over.
		fire2 := pgAlert("db2", alerts.Firing, time.Now())
		feed.Update(alerts.SenderAlertmanager, []alerts.Alert{fire2}, time.Now())
		begin := time.Now()
		ok, why, err := e.Verify(context.Background(), "pg-down", fire2.Labels, begin)
		if ok || err != nil || !strings.Contains(why, "still fires") || time.Since(begin) != time.Minute {
			t.Fatalf("%v %q %v after %s", ok, why, err, time.Since(begin))
		}
	})
}

// An alert that arrives makes its asserts due at once, not at their next slot.
func TestEvaluateSoon(t *testing.T) {
	feed, src := alerts.New(0), &source{}
	set, _ := loadSet(t, `asserts:
  - name: pg-down
    every: 1h
    trigger: {alertmanager: '{alertname="PostgresqlDown"}'}
`)
	e, err := New(context.Background(), Options{Set: set, Store: openStore(t), Sources: map[string]asserts.Querier{config.EmbeddedName: src}, Alerts: feed})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	slot := e.Tick(ctx, t0)
	if next := e.Tick(ctx, slot); !next.Equal(slot.Add(time.Hour)) || states(e) != "" {
		t.Fatalf("next %s after the slot %s, states %q", next, slot, states(e))
	}
	at := slot.Add(time.Second)
	feed.Update(alerts.SenderAlertmanager, []alerts.Alert{pgAlert("db1", alerts.Firing, at)}, at)
	e.Tick(ctx, at)
	if states(e) != "" {
		t.Fatal("evaluated before its slot without EvaluateSoon")
	}
	e.EvaluateSoon("pg-down", "no-such-assert")
	e.Tick(ctx, at.Add(time.Second))
	if got := states(e); got != "db1=escalated" {
		t.Fatalf("after EvaluateSoon: %q", got)
	}
}

// The feed is not stored: after a restart, an instance escalated for an
// alert is uncertain until its sender speaks again, never ok.
func TestAlertInstancesAfterARestart(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - name: pg-down
    trigger: {alertmanager: '{alertname="PostgresqlDown"}'}
`)
	st := openStore(t)
	ctx := context.Background()
	feed := alerts.New(0)
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{}, Alerts: feed})
	if err != nil {
		t.Fatal(err)
	}
	feed.Update(alerts.SenderAlertmanager, []alerts.Alert{pgAlert("db1", alerts.Firing, t0)}, t0)
	e.EvaluateNow(ctx, "pg-down", t0)
	if got := states(e); got != "db1=escalated" {
		t.Fatalf("before the restart: %s", got)
	}
	again, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{}, Alerts: alerts.New(0)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		again.EvaluateNow(ctx, "pg-down", t0.Add(time.Duration(i+1)*time.Minute))
	}
	in := again.Instances()
	if len(in) != 1 || in[0].State != assertd.Escalated || !strings.Contains(in[0].Reason, "not heard from since assertd started") {
		t.Fatalf("after the restart: %+v", in)
	}
}
