package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/sources/promrules"
)

const bindingConfig = reloadBase + `prometheus_rules:
  bindings:
    - {match: '{alertname="PgDown"}'}
    - {match: '{alertname="Other"}'}
    - {name: rest, match: '{}'}
`

// limit: 1 makes PgDown fail when two databases are down, as Prometheus
// fails a rule whose alerts exceed its group's limit.
const bindingRules = `groups:
  - name: db
    interval: 1m
    limit: 1
    rules:
      - alert: PgDown
        expr: pg_up == 0
      - alert: Other
        expr: other_up == 0
`

// TestBindingsOfImportedAlerts: a binding's assert has one instance per
// alert it matches, violated while the alert fires; an alert goes to the
// first binding that matches it; a rule that fails makes the bindings that
// could match its alerts uncertain, and only those.
func TestBindingsOfImportedAlerts(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ta := newTestApp(t, bindingConfig, clock)
	ta.write("rules-pg.yaml", bindingRules)
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	evals := make(chan promrules.Evaluation, 10)
	ta.ruleAlerts.mu.Lock()
	ta.ruleAlerts.observe = func(e promrules.Evaluation) { evals <- e }
	ta.ruleAlerts.mu.Unlock()
	first := ta.rules.Groups()[0].EvalTimestamp(clock.Now().UnixNano()).Add(time.Minute)
	app := ta.Embedded().Appendable().Appender(context.Background())
	for d := -5 * time.Minute; d <= 5*time.Minute; d += 15 * time.Second {
		app.Append(0, labels.FromStrings("__name__", "other_up", "instance", "o-1"), first.Add(d).UnixMilli(), 0)
		app.Append(0, labels.FromStrings("__name__", "pg_up", "instance", "db-1"), first.Add(d).UnixMilli(), 0)
		if d >= 2*time.Minute {
			app.Append(0, labels.FromStrings("__name__", "pg_up", "instance", "db-2"), first.Add(d).UnixMilli(), 0)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	states := func(assert string) string {
		var out []string
		for _, in := range ta.Engine().InstancesOf(assert) {
			out = append(out, fmt.Sprintf("%s:%s", in.Labels["instance"], in.State))
		}
		return strings.Join(out, " ")
	}
	step := func(k int, want map[string]string) {
		t.Helper()
		clock.Set(first.Add(time.Duration(k) * time.Minute))
		select {
		case <-evals:
		case <-time.After(10 * time.Second):
			t.Fatalf("no evaluation %d", k)
		}
		testprom.Eventually(t, 10*time.Second, func() error {
			for a, w := range want {
				if g := states(a); g != w {
					return fmt.Errorf("evaluation %d: %s is %q, want %q", k, a, g, w)
				}
			}
			return nil
		})
	}
	// One database down: each alert is its binding's; the catch-all takes
	// neither.
	step(0, map[string]string{"PgDown": "db-1:escalated", "Other": "o-1:escalated", "rest": ""})
	// Two down: PgDown fails its limit. Its paged alert stays paged (not
	// resolved: the rule's state is unknown); the catch-all, which could
	// match PgDown's alerts, turns uncertain; Other's binding does not.
	step(2, map[string]string{"PgDown": "db-1:escalated", "Other": "o-1:escalated", "rest": ":uncertain"})
	for _, in := range ta.Engine().InstancesOf("rest") {
		if !strings.Contains(in.Reason, `group "db", rule 1, "PgDown"`) || !strings.Contains(in.Reason, "exceeded limit") {
			t.Errorf("the catch-all's reason %q: want the rule and its error", in.Reason)
		}
	}
	if s := ta.Engine().InstancesOf("Other"); len(s) != 1 || s[0].State != assertd.Escalated {
		t.Fatalf("Other: %+v", s)
	}
}
