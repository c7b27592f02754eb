package web_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

var storeAuditAll = store.AuditFilter{}

type instancesAnswer struct {
	Instances []assertd.Instance    `json:"instances"`
	Counts    map[assertd.State]int `json:"counts"`
	Problems  int                   `json:"problems"`
}

func TestAPIReads(t *testing.T) {
	e := newEnv(t)
	e.seed()

	var as struct{ Asserts []web.AssertView }
	e.getJSON("/api/v1/asserts", &as)
	if len(as.Asserts) != 3 || as.Asserts[0].Name != "pg-connections" || as.Asserts[0].Position != "rules.yaml:2:5" ||
		as.Asserts[0].Queries["free"] != "pg_free_connections" || as.Asserts[0].Counts[assertd.Escalated] != 1 {
		t.Fatalf("asserts %+v", as.Asserts)
	}
	var one struct {
		Assert    web.AssertView
		Instances []assertd.Instance
	}
	e.getJSON("/api/v1/asserts/pg-replication-lag", &one)
	if one.Assert.For != "1m" || len(one.Instances) != 1 {
		t.Fatalf("assert %+v", one)
	}
	if code, body := e.do("GET", "/api/v1/asserts/nope", readSecret, ""); code != 404 || !strings.Contains(body, `"field": "name"`) {
		t.Errorf("unknown assert %d %s", code, body)
	}

	// Instances: worst first, and filtered by state, assert and matchers.
	var all instancesAnswer
	e.getJSON("/api/v1/instances", &all)
	if len(all.Instances) != 5 || all.Instances[0].State != assertd.Escalated || all.Instances[4].State != assertd.OK || all.Problems != 2 {
		t.Fatalf("instances %+v", all)
	}
	for q, want := range map[string]int{
		"state=escalated":       2,
		"state=ok,escalated":    5,
		"assert=pg-connections": 3,
		"match=" + url.QueryEscape(`{instance=~"db[12]"}`):                                            3,
		"match=" + url.QueryEscape(`{instance="db2", cluster!="reports"}`) + "&assert=pg-connections": 1,
		"match=" + url.QueryEscape(`instance!~"db.*"`):                                                1,
	} {
		var got instancesAnswer
		e.getJSON("/api/v1/instances?"+q, &got)
		if len(got.Instances) != want {
			t.Errorf("%s: %d instances, want %d", q, len(got.Instances), want)
		}
	}

	// One instance with its history, decisions and messages.
	db3 := e.instance("pg-connections", "db3")
	var det web.InstanceDetail
	e.getJSON("/api/v1/instances/pg-connections/"+db3.Fingerprint, &det)
	if det.Instance.State != assertd.Escalated || len(det.Transitions) < 2 || len(det.Decisions) == 0 || len(det.Messages) != 2 {
		t.Fatalf("detail %+v", det)
	}
	if det.Transitions[0].Values["free"] != 10 && det.Transitions[0].Values["free"] != 3 {
		t.Errorf("transition values %+v", det.Transitions[0])
	}
	if code, _ := e.do("GET", "/api/v1/instances/pg-connections/nope", readSecret, ""); code != 404 {
		t.Errorf("unknown instance %d", code)
	}

	// Messages and their delivery status.
	var msgs struct{ Messages []assertd.Message }
	e.getJSON("/api/v1/messages?channel=pagerduty", &msgs)
	if len(msgs.Messages) != 2 || msgs.Messages[0].Status != assertd.MsgPending {
		t.Fatalf("messages %+v", msgs)
	}

	// Heartbeats with their pings and next deadline.
	var hbs struct{ Heartbeats []web.HeartbeatView }
	e.getJSON("/api/v1/heartbeats?limit=5", &hbs)
	if len(hbs.Heartbeats) != 2 || hbs.Heartbeats[1].Name != "nightly-backup" || len(hbs.Heartbeats[1].Pings) != 1 ||
		!hbs.Heartbeats[1].NextDeadline.Equal(start0.Add(24*time.Hour)) || hbs.Heartbeats[1].Status.State != "up" {
		t.Fatalf("heartbeats %+v", hbs)
	}

	var st struct {
		Counts      map[assertd.State]int
		Problems    int
		KillSwitch  bool `json:"kill_switch"`
		Reload      web.ReloadView
		HeldChanges int `json:"held_changes"`
	}
	e.getJSON("/api/v1/status", &st)
	if st.Problems != 2 || st.KillSwitch || !st.Reload.OK || len(st.Reload.ConfigHash) != 16 {
		t.Fatalf("status %+v", st)
	}

	var sets struct{ Settings []web.SettingView }
	e.getJSON("/api/v1/settings", &sets)
	if len(sets.Settings) != 5 || sets.Settings[0].Value != "off" || sets.Settings[2].Value != "20/1h" ||
		sets.Settings[3].Key != "remediation.rate/terminate-idle-connections" || sets.Settings[3].Value != "3/1h" {
		t.Fatalf("settings %+v", sets)
	}

	for _, p := range []string{"/api/v1/runs", "/api/v1/runs?status=running&limit=3", "/api/v1/silences", "/api/v1/silences?expired=true",
		"/api/v1/approvals", "/api/v1/audit", "/api/v1/openapi.json"} {
		var v map[string]any
		e.getJSON(p, &v)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.seed()
	db3 := e.instance("pg-connections", "db3")
	cases := []struct {
		method, path, tok, body string
		code                    int
		want                    string
	}{
		{"GET", "/api/v1/nope", readSecret, "", 404, `"error": "no route GET /api/v1/nope"`},
		{"GET", "/no/such/page", "", "", 404, `no route`},
		{"DELETE", "/api/v1/instances", readSecret, "", 405, `use GET, HEAD`},
		{"PATCH", "/api/v1/silences", adminSecret, "{}", 405, `use GET, HEAD, POST`},
		{"GET", "/api/v1/instances?match=" + url.QueryEscape(`{instance~"x"}`), readSecret, "", 400, `"field": "match"`},
		{"GET", "/api/v1/instances?match=" + url.QueryEscape(`{instance=~"("}`), readSecret, "", 400, `invalid regular expression`},
		{"GET", "/api/v1/instances?match=" + url.QueryEscape(`{instance=db1}`), readSecret, "", 400, `must be double-quoted`},
		{"GET", "/api/v1/instances?state=broken", readSecret, "", 400, `"field": "state"`},
		{"GET", "/api/v1/runs?limit=x", readSecret, "", 400, `"field": "limit"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": `, 400, `"field": "body"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"}", "comment": "x"} {}`, 400, `"field": "body"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matcher": "{}"}`, 400, `"field": "matcher"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"}", "comment": 3}`, 400, `"field": "comment"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"", "comment": "x", "duration": "1h"}`, 400, `"field": "matchers"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"}", "comment": "", "duration": "1h"}`, 400, `"field": "comment"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"}", "comment": "x", "duration": "soon"}`, 400, `"field": "duration"`},
		{"POST", "/api/v1/silences", adminSecret, `{"matchers": "{a=\"b\"}", "comment": "x"}`, 400, `"field": "duration"`},
		{"PUT", "/api/v1/settings/automation.kill_switch", adminSecret, `{"value": "maybe"}`, 400, `"field": "value"`},
		{"PUT", "/api/v1/settings/colour", adminSecret, `{"value": "red"}`, 400, `"field": "key"`},
		{"POST", "/api/v1/break-glass", adminSecret, `{"remediation": "terminate-idle-connections", "labels": {"instance": "db3"}}`, 400, `"field": "reason"`},
		{"POST", "/api/v1/break-glass", adminSecret, `{"remediation": "nope", "reason": "x"}`, 400, `"field": "remediation"`},
		{"POST", "/api/v1/break-glass", adminSecret, `{"remediation": "rerun-backup", "assert": "nope", "reason": "x"}`, 400, `"field": "assert"`},
		{"POST", "/api/v1/break-glass", adminSecret, `{"remediation": "rerun-backup", "labels": {"__x": "1"}, "reason": "x"}`, 400, `"field": "labels"`},
		{"POST", "/api/v1/break-glass", adminSecret, `{"remediation": "rerun-backup", "dry_run": "yes", "reason": "x"}`, 400, `"field": "dry_run"`},
		{"POST", "/api/v1/approvals/run-x", adminSecret, `{"comment": "ok"}`, 400, `"field": "approved"`},
		{"POST", "/api/v1/instances/pg-connections/nope/ack", adminSecret, `{}`, 404, `not found`},
		{"POST", "/api/v1/silences/s-nope/expire", adminSecret, ``, 404, `not found`},
		{"POST", "/api/v1/instances/pg-connections/" + db3.Fingerprint + "/ack", adminSecret, ``, 400, `"field": "body"`},
	}
	for _, c := range cases {
		code, body := e.do(c.method, c.path, c.tok, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s\nwant %d with %s", c.method, c.path, c.body, code, body, c.code, c.want)
		}
		if !strings.HasPrefix(strings.TrimSpace(body), "{") {
			t.Errorf("%s %s: not JSON: %s", c.method, c.path, body)
		}
	}
	// Oversized bodies: 413, on the API and on a form.
	big := `{"comment": "` + strings.Repeat("x", web.MaxBody+10) + `"}`
	if code, body := e.do("POST", "/api/v1/silences", adminSecret, big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than") {
		t.Errorf("big body: %d %s", code, body)
	}
	jar := signIn(t, e, adminSecret)
	form := url.Values{"csrf": {csrfOf(t, e, jar)}, "comment": {strings.Repeat("x", web.MaxBody)}}
	if code, _ := postForm(t, jar, e.base+"/silences", form, ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big form: %d", code)
	}
}

// TestChangesAreAudited: silences, settings and the operator actions, each
// with the token's name in the audit trail; a silence silences.
func TestChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	e.seed()
	db3 := e.instance("pg-connections", "db3")
	code, body := e.do("POST", "/api/v1/silences", adminSecret, `{"matchers": "{instance=\"db3\"}", "duration": "2h", "comment": "reindexing reports"}`)
	if code != 201 {
		t.Fatalf("create silence %d %s", code, body)
	}
	var si web.SilenceView
	json.Unmarshal([]byte(body), &si)
	if !si.Active || si.Author != "alice" || !si.End.Equal(e.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("silence %+v", si)
	}
	e.clock.Add(15 * time.Second)
	e.eval()
	if got := e.instance("pg-connections", "db3"); got.Silenced != si.ID {
		t.Fatalf("not silenced: %+v", got)
	}
	var all instancesAnswer
	e.getJSON("/api/v1/instances", &all)
	if all.Problems != 1 {
		t.Errorf("a silenced instance is not a problem: %d", all.Problems)
	}
	// Silenced is the state the API, its filter and the metrics show; the
	// state underneath is kept.
	var silenced instancesAnswer
	e.getJSON("/api/v1/instances?state=silenced", &silenced)
	if len(silenced.Instances) != 1 || silenced.Instances[0].Fingerprint != db3.Fingerprint || silenced.Instances[0].State != assertd.Silenced ||
		silenced.Instances[0].Underlying != db3.State || all.Counts[assertd.Silenced] != 1 {
		t.Fatalf("?state=silenced: %+v, counts %v (db3 was %s)", silenced.Instances, all.Counts, db3.State)
	}
	if _, body := e.do("GET", "/metrics", "", ""); !strings.Contains(body, `assertd_instances{state="silenced"} 1`) {
		t.Errorf("metrics: %s", grepLines(body, "assertd_instances"))
	}
	if code, body := e.do("POST", "/api/v1/silences/"+si.ID+"/expire", adminSecret, ""); code != 200 || !strings.Contains(body, `"active": false`) {
		t.Fatalf("expire %d %s", code, body)
	}
	// The silence's end restores the state underneath at once.
	if got := e.instance("pg-connections", "db3"); got.State != db3.State || got.Silenced != "" {
		t.Fatalf("after the silence: %+v, want %s", got, db3.State)
	}
	if _, body := e.do("GET", "/metrics", "", ""); !strings.Contains(body, `assertd_instances{state="silenced"} 0`) {
		t.Errorf("metrics after the silence: %s", grepLines(body, "assertd_instances"))
	}
	if code, body := e.do("PUT", "/api/v1/settings/automation.kill_switch", adminSecret, `{"value": "on", "reason": "AZ outage"}`); code != 200 {
		t.Fatalf("kill switch %d %s", code, body)
	}
	var st struct {
		KillSwitch bool `json:"kill_switch"`
	}
	e.getJSON("/api/v1/status", &st)
	if !st.KillSwitch {
		t.Error("kill switch not on")
	}
	if code, body := e.do("DELETE", "/api/v1/settings/automation.kill_switch?reason=over", adminSecret, ""); code != 200 {
		t.Fatalf("reset %d %s", code, body)
	}
	if code, body := e.do("PUT", "/api/v1/settings/remediation.rate/terminate-idle-connections", adminSecret, `{"value": "1/1h"}`); code != 200 {
		t.Fatalf("rate %d %s", code, body)
	}
	code, body = e.do("POST", "/api/v1/break-glass", adminSecret, `{"remediation": "terminate-idle-connections", "labels": {"instance": "db3", "cluster": "reports", "team": "dba"}, "reason": "connections exhausted", "dry_run": true}`)
	var bg assertd.Run
	if err := json.Unmarshal([]byte(body), &bg); code != 202 || err != nil || !strings.HasPrefix(bg.ID, "bg-") || !bg.Shadow {
		t.Fatalf("break glass %d %s", code, body)
	}
	e.settle()
	var dry web.RunDetail
	e.getJSON("/api/v1/runs/"+bg.ID, &dry)
	if dry.Run.Status != assertd.RunSucceeded || !dry.Run.Shadow || dry.Run.Fingerprint != db3.Fingerprint || len(dry.Steps) != 2 {
		t.Fatalf("the dry run %+v", dry)
	}
	for _, st := range dry.Steps {
		if st.Outcome != assertd.StepSkipped {
			t.Errorf("a dry run did step %s: %+v", st.Name, st)
		}
	}
	if got := e.instance("pg-connections", "db3"); got.State != assertd.Escalated {
		t.Fatalf("db3 is not paged: %+v", got)
	}
	if code, body := e.do("POST", "/api/v1/instances/pg-connections/"+db3.Fingerprint+"/ack", adminSecret, `{"comment": "on it"}`); code != 200 {
		t.Fatalf("ack %d %s", code, body)
	}
	// A run waiting for an approval (no remediation of the harness asks
	// for one: the run is put in the store as the runner would).
	run := assertd.Run{ID: "run-approve", Remediation: "rerun-backup", Assert: "nightly-backup", Labels: assertd.Labels{}, Status: assertd.RunWaiting, Started: e.clock.Now()}
	e.st.CreateRun(e.ctx, run)
	e.st.RequestApproval(e.ctx, assertd.Approval{RunID: run.ID, Requested: e.clock.Now(), Expires: e.clock.Now().Add(time.Hour)})
	var aps struct{ Approvals []web.ApprovalView }
	e.getJSON("/api/v1/approvals", &aps)
	if len(aps.Approvals) != 1 || aps.Approvals[0].Run == nil {
		t.Fatalf("approvals %+v", aps)
	}
	if code, body := e.do("POST", "/api/v1/approvals/run-approve", adminSecret, `{"approved": true, "comment": "go"}`); code != 200 {
		t.Fatalf("approve %d %s", code, body)
	}
	if code, _ := e.do("POST", "/api/v1/approvals/run-approve", adminSecret, `{"approved": true}`); code != http.StatusConflict {
		t.Errorf("approve twice: %d", code)
	}
	if ap, err := e.st.Approval(e.ctx, "run-approve"); err != nil || ap.By != "alice" || !ap.Approved {
		t.Errorf("approval %+v %v", ap, err)
	}
	log, err := e.st.AuditLog(e.ctx, storeAuditAll)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range log {
		if a.Actor != "alice" {
			t.Errorf("audit entry by %q: %+v", a.Actor, a)
		}
		actions = append(actions, a.Action)
	}
	// The web layer's requests and what the engine did with them.
	for _, a := range []string{"silence.put", "silence.expire", "setting.put", "setting.delete", "request.break_glass", "request.acknowledge", "request.approve",
		"run.break_glass", "incident.ack"} {
		if !slices.Contains(actions, a) {
			t.Errorf("no %s in the audit trail: %v", a, actions)
		}
	}
	var audit struct{ Audit []assertd.AuditEntry }
	e.getJSON("/api/v1/audit?actor=alice&action=setting.put", &audit)
	if len(audit.Audit) != 2 {
		t.Errorf("audit filter: %+v", audit)
	}
}

// TestEvents: the stream starts with the state and follows a change.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	e.seed()
	req, _ := http.NewRequestWithContext(e.ctx, "GET", e.base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	events := make(chan web.EventState, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var st web.EventState
				json.Unmarshal([]byte(d), &st)
				events <- st
			}
		}
		close(events)
	}()
	first := <-events
	if first.Problems != 2 {
		t.Fatalf("first event %+v", first)
	}
	e.sample("pg_free_connections", 70, "instance", "db3", "cluster", "reports")
	e.eval()
	select {
	case st := <-events:
		if st.Problems != 1 || st.Version == first.Version || st.Counts[assertd.OK] != 4 {
			t.Fatalf("after recovery %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after a state change")
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.seed()
	if code, body := e.do("POST", "/api/v1/break-glass", adminSecret, `{"remediation": "rerun-backup", "reason": "backup looked short"}`); code != 202 {
		t.Fatalf("break glass %d %s", code, body)
	}
	e.settle() // the run ends (the backup's heartbeat holds: verified)
	code, body := e.do("GET", "/metrics", "", "")
	if code != 200 {
		t.Fatal(code)
	}
	for _, want := range []string{
		`assertd_evaluations_total{assert="pg-connections"}`, `assertd_evaluation_duration_seconds_bucket`,
		`assertd_instances{state="escalated"} 2`, `assertd_remediation_runs_total{outcome="succeeded",remediation="rerun-backup"} 1`,
		`assertd_remediation_runs_total{outcome="failed",remediation="terminate-idle-connections"} 1`,
		`assertd_config_info{hash="`, `assertd_config_last_reload_successful 1`, `assertd_http_requests_total{code="202",handler="api"} 1`,
		`assertd_http_request_duration_seconds_count{code="202",handler="/api/v1/break-glass",method="post"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, grepLines(body, "assertd_"))
		}
	}
	// The gauges of store rows are gone: runs and refusals are counters.
	for _, absent := range []string{"assertd_runs{", "assertd_refusals{", "assertd_outbox_failed_messages"} {
		if strings.Contains(body, absent) {
			t.Errorf("%s in\n%s", absent, grepLines(body, "assertd_"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestOpenAPIMatchesRoutes: the document lists exactly the API's routes,
// with their roles.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("assets/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.OpenAPI == "" {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]string{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			documented[strings.ToUpper(m)+" "+p], _ = op["x-role"].(string)
		}
	}
	served := map[string]string{}
	for _, rt := range web.Routes() {
		if rt.API {
			served[rt.Method+" "+strings.ReplaceAll(rt.Path, "...}", "}")] = rt.Role
		}
	}
	for k, role := range served {
		if d, ok := documented[k]; !ok {
			t.Errorf("%s is served but not in openapi.json", k)
		} else if d != role {
			t.Errorf("%s: openapi.json says role %s, the route needs %s", k, d, role)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			t.Errorf("%s is in openapi.json but not served", k)
		}
	}
	// And it is served.
	e := newEnv(t)
	if code, body := e.do("GET", "/api/v1/openapi.json", "", ""); code != 200 || !strings.Contains(body, `"openapi": "3.1.0"`) {
		t.Errorf("served: %d", code)
	}
}
