package asserts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
)

const triggerYAML = `
asserts:
  - name: pg-down
    trigger: {alertmanager: '{alertname="PostgresqlDown", severity=~"page|critical"}'}
    for: 30s
    labels: {team: dba}
    verify:
      query: {up: 'pg_up'}
      expect: up == 1
      resolved_within: 2m
    remediate: restart-pg
`

func TestTriggerCompiles(t *testing.T) {
	c, errs := compileYAML(t, triggerYAML)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tr := c.Trigger
	if tr == nil || tr.Sender != alerts.SenderAlertmanager || tr.StaleAfter != DefaultStaleAfterAlertmanager || tr.ResolvedWithin != 2*time.Minute {
		t.Fatalf("trigger %+v", tr)
	}
	if len(tr.Matchers) != 2 || tr.Matchers[1] != (assertd.Matcher{Name: "severity", Op: assertd.MatchRegexp, Value: "page|critical"}) {
		t.Fatalf("matchers %+v", tr.Matchers)
	}
	if tr.Check == nil || len(tr.Check.Queries) != 1 || tr.Check.NoData != NoDataViolated {
		t.Fatalf("check %+v", tr.Check)
	}
	if len(c.Queries) != 0 || c.Expect != nil {
		t.Fatal("an alert-triggered assert has no queries of its own")
	}
}

func TestTriggerErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"remediates without verify", "asserts:\n  - name: a\n    trigger: {alertmanager: '{alertname=\"X\"}'}\n    remediate: fix\n",
			"a.yaml:4:16: assert \"a\" remediates but has no verify"},
		{"expect beside trigger", "asserts:\n  - name: a\n    trigger: {rules: '{alertname=\"X\"}'}\n    expect: up == 1\n    verify: {resolved_within: 1m}\n",
			"a.yaml:4:13: an assert with trigger: is violated while its alert fires: remove expect:"},
		{"bad selector", "asserts:\n  - name: a\n    trigger: {alertmanager: 'alertname=\"X\"'}\n    verify: {resolved_within: 1m}\n",
			"a.yaml:3:29: trigger alertmanager: not a selector"},
		{"two senders", "asserts:\n  - name: a\n    trigger: {alertmanager: '{a=\"b\"}', rules: '{a=\"b\"}'}\n    verify: {resolved_within: 1m}\n",
			"set alertmanager: or rules:, not both"},
		{"no sender", "asserts:\n  - name: a\n    trigger: {stale_after: 5m}\n    verify: {resolved_within: 1m}\n",
			"a.yaml:3:14: trigger needs the alerts it reads"},
		{"empty verify", "asserts:\n  - name: a\n    trigger: {rules: '{a=\"b\"}'}\n    verify: {}\n",
			"verify needs query: and expect:, or resolved_within:"},
		{"query without expect", "asserts:\n  - name: a\n    trigger: {rules: '{a=\"b\"}'}\n    verify: {query: {up: up}}\n",
			"verify has query: but no expect"},
		{"bad verify PromQL", "asserts:\n  - name: a\n    trigger: {rules: '{a=\"b\"}'}\n    verify: {query: {up: 'up{'}, expect: up == 1}\n",
			"a.yaml:4:26: verify: query up is not valid PromQL"},
		{"verify expect typed", "asserts:\n  - name: a\n    trigger: {rules: '{a=\"b\"}'}\n    verify: {query: {up: up}, expect: down == 1}\n",
			"a.yaml:4:39: verify: expect: unknown name down"},
		{"verify without trigger", "asserts:\n  - name: a\n    query: {up: up}\n    expect: up == 1\n    verify: {resolved_within: 1m}\n",
			"a.yaml:5:13: verify: belongs to an assert with trigger:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := compileYAML(t, tc.src)
			if !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", errs, tc.want)
			}
		})
	}
}

// feedQuerier is a querier with the alert feed beside it, as the engine
// gives an alert-triggered assert.
type feedQuerier struct {
	Querier
	*alerts.Feed
}

var tt0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestTriggerEvaluates(t *testing.T) {
	c, errs := compileYAML(t, triggerYAML)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c.Trigger.StaleAfter = 10 * time.Minute
	f := alerts.New(0)
	mk := func(inst, sev string, st alerts.State) alerts.Alert {
		return alerts.Alert{Labels: assertd.Labels{"alertname": "PostgresqlDown", "instance": inst, "severity": sev, "team": "db"},
			Annotations: assertd.Labels{"summary": inst + " is down"}, State: st, StartsAt: tt0, GeneratorURL: "http://prom/g"}
	}
	f.Update(alerts.SenderAlertmanager, []alerts.Alert{mk("db1", "page", alerts.Firing), mk("db2", "page", alerts.Pending),
		mk("db3", "page", alerts.Resolved), mk("db4", "info", alerts.Firing)}, tt0)
	f.Update(alerts.SenderAlertmanager, []alerts.Alert{mk("db5", "critical", alerts.Firing)}, tt0.Add(5*time.Minute))
	ev := c.Evaluate(context.Background(), feedQuerier{nil, f}, nil, tt0.Add(11*time.Minute))
	if ev.SourceErr != nil {
		t.Fatal(ev.SourceErr)
	}
	got := map[string]Verdict{}
	for _, v := range ev.Verdicts {
		got[v.Labels["instance"]] = v
	}
	want := map[string]assertd.State{"db1": assertd.Uncertain, "db2": assertd.Pending, "db3": assertd.OK, "db5": assertd.Violated}
	if len(got) != len(want) {
		t.Fatalf("verdicts %+v", ev.Verdicts)
	}
	for inst, st := range want {
		if got[inst].State != st {
			t.Errorf("%s: %s (%s), want %s", inst, got[inst].State, got[inst].Reason, st)
		}
	}
	v := got["db5"]
	if v.Labels["team"] != "dba" || v.Annotations["summary"] != "db5 is down" || v.GeneratorURL != "http://prom/g" ||
		!strings.Contains(v.Reason, "alert PostgresqlDown firing since 2026-12-01T10:00:00Z (alertmanager): db5 is down") {
		t.Fatalf("db5: %+v", v)
	}
	if !strings.Contains(got["db1"].Reason, "longer ago than stale_after 10m: the sender may be down") {
		t.Fatal(got["db1"].Reason)
	}

	f.Fail(alerts.SenderAlertmanager, errors.New("boom"), tt0.Add(12*time.Minute))
	if ev := c.Evaluate(context.Background(), feedQuerier{nil, f}, nil, tt0.Add(12*time.Minute)); !errors.Is(ev.SourceErr, assertd.ErrSourceUnavailable) {
		t.Fatalf("a failed sender: %v", ev.SourceErr)
	}
	if ev := c.Evaluate(context.Background(), nil, nil, tt0); !errors.Is(ev.SourceErr, assertd.ErrSourceUnavailable) {
		t.Fatalf("without a feed: %v", ev.SourceErr)
	}
}

type vecQuerier map[string]float64 // instance → pg_up

func (v vecQuerier) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	var out assertd.Vector
	for inst, x := range v {
		out.Samples = append(out.Samples, assertd.Sample{Labels: assertd.Labels{"__name__": "pg_up", "instance": inst}, Value: x})
	}
	return out, nil
}

func TestCheckFix(t *testing.T) {
	c, errs := compileYAML(t, triggerYAML)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	in := assertd.Labels{"alertname": "PostgresqlDown", "instance": "db1", "team": "dba"}
	for _, tc := range []struct {
		name string
		q    vecQuerier
		ok   bool
		why  string
	}{
		{"up", vecQuerier{"db1": 1, "db2": 0}, true, "verify of pg-down holds"},
		{"down", vecQuerier{"db1": 0, "db2": 1}, false, "verify of pg-down is violated"},
		{"nothing for the instance", vecQuerier{"db2": 1}, false, "its queries return nothing"},
		{"no data", vecQuerier{}, false, "no data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why, err := c.CheckFix(context.Background(), tc.q, nil, in, tt0)
			if err != nil || ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Fatalf("%v %q %v", ok, why, err)
			}
		})
	}
}

// An alert-triggered assert that only pages needs no verify.
func TestTriggerThatPagesNeedsNoVerify(t *testing.T) {
	c, errs := compileYAML(t, "asserts:\n  - name: a\n    trigger: {rules: '{alertname=\"X\"}'}\n    escalate: ops\n")
	if len(errs) > 0 || c.Trigger == nil || c.Trigger.Sender != alerts.SenderRules || c.Trigger.StaleAfter != 0 {
		t.Fatalf("%v %+v", errs, c.Trigger)
	}
}
