package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/sources/promrules"
)

const promRulesV1 = `groups:
  - name: db
    interval: 1m
    rules:
      - alert: PgDown
        expr: pg_up == 0
        annotations: {summary: "v1 {{ $labels.instance }}"}
`

// TestReloadPrometheusRules: a Prometheus rule file among files: is
// evaluated, reloads with the other files, keeps its alerts' state across a
// change (as Prometheus' rule manager copies it), and a broken file is
// refused at file:line:col while the rules in force keep running.
func TestReloadPrometheusRules(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ta := newTestApp(t, reloadBase, clock)
	ta.write("rules-pg.yaml", promRulesV1)
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	evals := make(chan promrules.Evaluation, 10)
	ta.ruleAlerts.mu.Lock()
	ta.ruleAlerts.observe = func(e promrules.Evaluation) { evals <- e }
	ta.ruleAlerts.mu.Unlock()
	groups := ta.rules.Groups()
	if len(groups) != 1 || groups[0].Name() != "db" {
		t.Fatalf("groups in force: %v", groups)
	}
	first := groups[0].EvalTimestamp(clock.Now().UnixNano()).Add(time.Minute)
	app := ta.Embedded().Appendable().Appender(context.Background())
	for d := -5 * time.Minute; d <= 10*time.Minute; d += 15 * time.Second {
		app.Append(0, labels.FromStrings("__name__", "pg_up", "instance", "db-1"), first.Add(d).UnixMilli(), 0)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	step := func(k int) promrules.Evaluation {
		t.Helper()
		clock.Set(first.Add(time.Duration(k) * time.Minute))
		select {
		case e := <-evals:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("no evaluation %d", k)
		}
		return promrules.Evaluation{}
	}
	ev := step(0)
	if len(ev.Alerts) != 1 || ev.Alerts[0].Annotations.Get("summary") != "v1 db-1" {
		t.Fatalf("first evaluation: %+v", ev)
	}
	active := ev.Alerts[0].ActiveAt
	// The rule and its alert, with the rule's identity, in the API and the UI.
	for _, path := range []string{"/api/v1/rules", "/rules"} {
		rec := httptest.NewRecorder()
		ta.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body := rec.Body.String()
		for _, want := range []string{"rules-pg.yaml", "PgDown", "v1 db-1", "firing"} {
			if rec.Code != 200 || !strings.Contains(body, want) {
				t.Errorf("GET %s: %d, want %q in\n%s", path, rec.Code, want, body)
			}
		}
	}
	{
		rec := httptest.NewRecorder()
		ta.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/rules", nil))
		var body struct {
			Data promrules.RulesView `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Data.Groups) != 1 || len(body.Data.Groups[0].Rules) != 1 {
			t.Fatalf("GET /api/v1/rules: %v\n%s", err, rec.Body.String())
		}
		id := body.Data.Groups[0].Rules[0].RuleID
		if id != (promrules.RuleID{File: filepath.Join(ta.dir, "rules-pg.yaml"), Group: "db", Index: 1, Name: "PgDown"}) {
			t.Errorf("the rule's identity: %+v", id)
		}
	}

	// A broken file: refused, with its position; v1 keeps running.
	ta.write("rules-pg.yaml", strings.Replace(promRulesV1, "pg_up == 0", "pg_up ==", 1))
	err := ta.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rules-pg.yaml:6:15: ") || !strings.Contains(err.Error(), "could not parse expression") {
		t.Fatalf("reload of a broken rule file: %v", err)
	}
	if ev := step(1); len(ev.Alerts) != 1 || ev.Alerts[0].Annotations.Get("summary") != "v1 db-1" {
		t.Fatalf("after the refused reload: %+v", ev)
	}

	// A changed rule: the new definition, the alert's state kept.
	ta.write("rules-pg.yaml", strings.Replace(promRulesV1, "v1", "v2", 1))
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev = step(2)
	if len(ev.Alerts) != 1 || ev.Alerts[0].Annotations.Get("summary") != "v2 db-1" || !ev.Alerts[0].ActiveAt.Equal(active) {
		t.Fatalf("after the change: %+v (active since %s before)", ev, active)
	}

	// The file goes: so do its groups and their alerts.
	ta.write("rules-pg.yaml", "asserts:\n  - {name: hb-b, every: 1s, expect: 'heartbeat(\"hb-a\").up'}\n")
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := ta.rules.Groups(); len(g) != 0 || len(ta.ruleAlerts.Evaluations()) != 0 {
		t.Fatalf("groups after the file went: %v, outcomes %v", g, ta.ruleAlerts.Evaluations())
	}
	// Two intervals later its ALERTS series is marked stale, as Prometheus
	// marks a removed group's series (without: it would show for the 5m of
	// the lookback).
	at := first.Add(4 * time.Minute)
	if v, err := ta.Embedded().Query(context.Background(), "ALERTS", at); err != nil || len(v.Samples) != 1 {
		t.Fatalf("ALERTS before the stale marker: %+v %v", v, err)
	}
	clock.Set(at)
	testprom.Eventually(t, 10*time.Second, func() error {
		v, err := ta.Embedded().Query(context.Background(), "ALERTS", at)
		if err != nil || len(v.Samples) != 0 {
			return fmt.Errorf("ALERTS of the removed group at %s: %+v %v", at, v, err)
		}
		return nil
	})
}
