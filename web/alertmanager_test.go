package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

const amRules = `asserts:
  - name: postgres-down
    trigger: {alertmanager: '{alertname="PostgresqlDown"}'}
    verify: {query: {up: pg_up}, expect: up == 1, resolved_within: 1m}
    remediate: restart-postgres
remediations:
  - name: restart-postgres
    steps:
      - {name: restart, run: [systemctl, restart, "postgresql@{{ .Labels.instance }}"]}
      - {name: verify, verify: postgres-down, timeout: 2m}
`

// amPayload is an Alertmanager webhook notification (version 4) of these alerts.
func amPayload(status string, starts time.Time, insts ...string) string {
	var as []string
	for _, inst := range insts {
		as = append(as, fmt.Sprintf(`{"status": %q, "labels": {"alertname": "PostgresqlDown", "instance": %q, "severity": "page"},
  "annotations": {"summary": "PostgreSQL %s is down"}, "startsAt": %q, "endsAt": "0001-01-01T00:00:00Z",
  "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_up+%%3D%%3D+0", "fingerprint": "x"}`, status, inst, inst, starts.Format(time.RFC3339Nano)))
	}
	return fmt.Sprintf(`{"version": "4", "groupKey": "{}:{alertname=\"PostgresqlDown\"}", "truncatedAlerts": 0, "status": %q,
  "receiver": "assertd", "groupLabels": {"alertname": "PostgresqlDown"}, "commonLabels": {}, "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093", "alerts": [%s]}`, status, strings.Join(as, ","))
}

func (e *env) feedAlerts() string {
	e.t.Helper()
	as, err := e.app.Alerts().Select(alerts.SenderAlertmanager, nil, e.clock.Now())
	switch {
	case errors.Is(err, alerts.ErrNotHeard):
		return "" // nothing reached the feed
	case err != nil:
		e.t.Fatal(err)
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, a.Labels["alertname"]+"/"+a.Labels["instance"]+"="+string(a.State))
	}
	return strings.Join(parts, " ")
}

// A notification is applied whole or not at all: without the write role,
// malformed, or over the bound, nothing reaches the feed.
func TestAlertmanagerWebhookRefuses(t *testing.T) {
	e := newEnvWith(t, harnessConfig, amRules)
	good := amPayload("firing", start0, "db1")
	for _, tc := range []struct {
		name, tok, body string
		code            int
		msg             string
	}{
		{"anonymous", "", good, 401, ""},
		{"read token", readSecret, good, 403, ""},
		{"not JSON", adminSecret, `{"version": "4", "alerts": [`, 400, "not an Alertmanager webhook payload"},
		{"another version", adminSecret, strings.Replace(good, `"version": "4"`, `"version": "3"`, 1), 400, "payload version 4"},
		{"one bad alert of two", adminSecret, strings.Replace(amPayload("firing", start0, "db1", "db2"), `"status": "firing", "labels": {"alertname": "PostgresqlDown", "instance": "db2"`,
			`"status": "burning", "labels": {"alertname": "PostgresqlDown", "instance": "db2"`, 1), 400, `alerts[1] has status \"burning\"`},
		{"no startsAt", adminSecret, strings.Replace(good, start0.Format(time.RFC3339Nano), "0001-01-01T00:00:00Z", 1), 400, "alerts[0] has no startsAt"},
		{"oversized", adminSecret, strings.Replace(good, "is down", "is down"+strings.Repeat(" ", web.MaxBody), 1), 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.do("POST", "/api/v1/alertmanager", tc.tok, tc.body)
			if code != tc.code || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %s", code, body)
			}
			if got := e.feedAlerts(); got != "" {
				t.Fatalf("applied: %s", got)
			}
		})
	}
	if m := metricsText(t, e.base); !strings.Contains(m, `assertd_alertmanager_notifications_total{result="invalid"} 5`) {
		t.Fatalf("invalid notifications not counted:\n%s", grepLines(m, "assertd_alertmanager"))
	}
	e.eval()
	if n := len(e.eng.Instances()); n != 0 {
		t.Fatalf("%d instances from refused notifications", n)
	}
}

type webhookAnswer struct {
	New, Repeated, Resolved, Ignored, Unmatched int
	Asserts                                     []string
}

func (e *env) postAM(body string) webhookAnswer {
	e.t.Helper()
	code, out := e.do("POST", "/api/v1/alertmanager", adminSecret, body)
	if code != 200 {
		e.t.Fatalf("webhook: %d %s", code, out)
	}
	var a webhookAnswer
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// A firing alert remediates; repeats change nothing; alerts no assert
// selects are counted and ignored; the fix is verified by the query and by
// the alert resolving, and the info message goes out.
func TestAlertmanagerWebhookRemediates(t *testing.T) {
	e := newEnvWith(t, harnessConfig, amRules)
	e.sample("pg_up", 0, "instance", "db1")
	other := strings.ReplaceAll(amPayload("firing", start0, "db9"), `"alertname": "PostgresqlDown"`, `"alertname": "DiskFull"`)
	if a := e.postAM(other); a.New != 1 || a.Unmatched != 1 || len(a.Asserts) != 0 {
		t.Fatalf("unmatched: %+v", a)
	}
	fired := start0.Add(-time.Minute)
	if a := e.postAM(amPayload("firing", fired, "db1")); a.New != 1 || a.Unmatched != 0 || strings.Join(a.Asserts, ",") != "postgres-down" {
		t.Fatalf("first: %+v", a)
	}
	e.clock.Add(10 * time.Second)
	if a := e.postAM(amPayload("firing", fired, "db1")); a.New != 0 || a.Repeated != 1 {
		t.Fatalf("repeat: %+v", a)
	}
	// The restart brings PostgreSQL back; Prometheus sees it, Alertmanager
	// resolves the alert.
	e.fx.onRun("restart-postgres", "restart", func() string {
		if err := e.write("pg_up", 1, "instance", "db1"); err != nil {
			return err.Error()
		}
		e.app.Alerts().Update(alerts.SenderAlertmanager, []alerts.Alert{{Labels: assertd.Labels{"alertname": "PostgresqlDown", "instance": "db1", "severity": "page"},
			State: alerts.Resolved, StartsAt: fired}}, e.clock.Now())
		return ""
	})
	e.eval()
	if in := e.instance("postgres-down", "db1"); in.State != assertd.OK {
		t.Fatalf("after the run: %s %s", in.State, in.Reason)
	}
	rs := e.runsOf(t)
	if len(rs) != 1 || rs[0].Status != assertd.RunSucceeded || !strings.Contains(rs[0].Outcome, "alert resolved within 1m; verify of postgres-down holds") {
		t.Fatalf("runs %+v", rs)
	}
	ms := e.messagesOf(t)
	if len(ms) != 1 || ms[0].Kind != "info" || ms[0].Channel != "slack" {
		t.Fatalf("messages %+v", ms)
	}
	m := metricsText(t, e.base)
	for _, want := range []string{`assertd_alertmanager_alerts_unmatched_total 1`, `assertd_alertmanager_alerts_total{result="repeated"} 1`,
		`assertd_alertmanager_alerts_total{result="new"} 2`, `assertd_alertmanager_notifications_total{result="applied"} 3`} {
		if !strings.Contains(m, want) {
			t.Errorf("no %s in\n%s", want, grepLines(m, "assertd_alertmanager"))
		}
	}
}

func (e *env) runsOf(t *testing.T) []assertd.Run {
	t.Helper()
	rs, err := e.st.Runs(e.ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (e *env) messagesOf(t *testing.T) []assertd.Message {
	t.Helper()
	ms, err := e.st.Messages(e.ctx, store.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
