package web_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// The secrets of the chat channels of the harness (by variable).
const (
	slackToken      = "xoxb-0000-test-token"
	slackSigning    = "8f742231b10e8888abcd99yyyzzz85a5"
	pdKey           = "R0UTINGKEY0123456789abcdefABCDEF"
	pdWebhookSecret = "pd-webhook-secret-0123456789abcdef"
)

// chatConfig is the harness's configuration with Slack and PagerDuty on
// the fakes: Slack interactive (a signing secret, U123 is alice), PagerDuty
// with a webhook secret, and a second level that pages the manager 10
// minutes later unless the page is acknowledged.
func chatConfig(slack *testsaas.Slack, pd *testsaas.PagerDuty) string {
	return fmt.Sprintf(`files: [rules.yaml]
data_dir: data
notifiers:
  - name: slack
    slack: {token_env: SLACK_TOKEN, channel: "#dba", api_url: %q, signing_secret_env: SLACK_SIGNING, users: {U123: alice}}
  - name: pagerduty
    pagerduty: {routing_key_env: PD_KEY, events_url: %q, webhook_secret_env: PD_WEBHOOK}
  - {name: manager, console: {}}
escalation_policies:
  - name: dba
    info: [slack]
    group_wait: 1s
    levels: [{notify: [slack, pagerduty]}, {after: 10m, notify: [manager]}]
defaults: {escalate: dba}
heartbeats:
  - {name: nightly-backup, period: 24h, grace: 2h}
  - {name: log-rotate, period: 1h, grace: 10m}
safety: {max_concurrent_runs: 4, run_budget: {count: 20, within: 1h}}
web:
  external_url: http://assertd.example:8080
  tokens:
    - {name: alice, role: admin, token_env: T_ADMIN}
    - {name: rob, role: read, token_env: T_READ}
`, slack.APIURL, pd.URL)
}

// approvalRules are the harness's rules with terminate-idle-connections
// waiting for a human's approval.
var approvalRules = strings.Replace(harnessRules, "    max_runs: {count: 3, within: 1h}\n",
	"    max_runs: {count: 3, within: 1h}\n    approval: {mode: required, expire: 15m}\n", 1)

// deliver moves the clock past the group wait and delivers what is due.
func (e *env) deliver() {
	e.t.Helper()
	for range 2 {
		e.clock.Add(2 * time.Second)
		if err := e.app.Deliverer().DeliverDue(e.ctx, e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// send posts a signed request of a fake to path.
func (e *env) send(path, body string, h http.Header) (int, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, "POST", e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// counts is what a refused request must leave as it was.
type counts struct{ audit, acks, silences int }

func (e *env) counts() counts {
	e.t.Helper()
	log, err := e.st.AuditLog(e.ctx, storeAuditAll)
	if err != nil {
		e.t.Fatal(err)
	}
	acks, err := e.st.Decisions(e.ctx, store.DecisionFilter{Action: assertd.ActAck})
	if err != nil {
		e.t.Fatal(err)
	}
	sil, err := e.st.Silences(e.ctx, e.clock.Now(), true)
	if err != nil {
		e.t.Fatal(err)
	}
	return counts{len(log), len(acks), len(sil)}
}

// findPost returns the one post of the fake Slack whose method is method
// and whose blocks contain every one of want.
func findPost(t *testing.T, s *testsaas.Slack, method string, want ...string) testsaas.Post {
	t.Helper()
	var found []testsaas.Post
	for _, p := range s.Posts() {
		ok := p.Method == method
		for _, w := range want {
			ok = ok && strings.Contains(p.Blocks+p.Text, w)
		}
		if ok {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s posts with %q, want 1: %+v", len(found), method, want, s.Posts())
	}
	return found[0]
}

// TestSlackInteractions: an approval request and a page carry buttons; a
// click signed by Slack refuses the run and acknowledges the page as the
// mapped user, through the API's operations, with the same audit trail,
// and updates the message in place; PagerDuty gets the acknowledge.
// Unsigned, badly signed, stale and replayed clicks get 401 and change
// nothing, a user the channel does not map may do nothing. Slack's
// library checks the signature's timestamp against the wall clock, so the
// clicks are signed at the wall clock's time (the harness's fake clock
// drives everything else).
func TestSlackInteractions(t *testing.T) {
	slack := testsaas.NewSlack(t, slackToken)
	pd := testsaas.NewPagerDuty(t, pdKey)
	e := newEnvWith(t, chatConfig(slack, pd), approvalRules)
	t.Cleanup(func() { e.clock.Add(time.Hour) }) // a run still waiting for its approval ends before assertd stops
	e.seed()
	db3 := e.instance("pg-connections", "db3")
	pending, err := e.st.PendingApprovals(e.ctx)
	if err != nil || len(pending) != 1 || db3.State != assertd.Remediating {
		t.Fatalf("approvals %+v %v, db3 %s", pending, err, db3.State)
	}
	runID := pending[0].RunID
	e.deliver()

	// The approval request: Approve, Refuse, Open in assertd; PagerDuty
	// is not asked.
	ask := findPost(t, slack, "chat.postMessage", "APPROVAL NEEDED", `"action_id":"assertd.approve"`, `"action_id":"assertd.refuse"`,
		`"url":"http://assertd.example:8080/asserts/pg-connections?instance=`+db3.Fingerprint+`"`)
	if strings.Contains(ask.Blocks, "xoxb") || strings.Contains(ask.Blocks, slackSigning) {
		t.Fatalf("a secret in the message: %s", ask.Blocks)
	}
	key := notifiers.DedupKey("pg-connections/" + db3.Fingerprint)
	pdOf := func() []testsaas.Event {
		var out []testsaas.Event
		for _, ev := range pd.Events() {
			if ev.DedupKey == key || (ev.Payload != nil && strings.Contains(ev.Payload.Summary, "approval")) {
				out = append(out, ev)
			}
		}
		return out
	}
	if evs := pdOf(); len(evs) != 0 {
		t.Fatalf("PagerDuty got events for an approval request: %+v", evs)
	}

	// Refused clicks change nothing.
	before := e.counts()
	refuse, err := slack.Click(ask, "assertd.refuse", "U123", slackSigning, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := slack.Click(ask, "assertd.approve", "U123", "not-the-signing-secret", time.Now())
	stale, _ := slack.Click(ask, "assertd.approve", "U123", slackSigning, time.Now().Add(-6*time.Minute))
	future, _ := slack.Click(ask, "assertd.approve", "U123", slackSigning, time.Now().Add(6*time.Minute))
	tampered := testsaas.Click{Body: strings.Replace(refuse.Body, "refuse", "approve", 1), Header: refuse.Header}
	for name, c := range map[string]testsaas.Click{"unsigned": {Body: refuse.Body, Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		"bad signature": bad, "stale": stale, "future": future, "tampered": tampered} {
		if code, body := e.send(web.PathSlackInteractions, c.Body, c.Header); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	// A signed click by a user the channel does not map.
	stranger, _ := slack.Click(ask, "assertd.approve", "U999", slackSigning, time.Now())
	if code, body := e.send(web.PathSlackInteractions, stranger.Body, stranger.Header); code != http.StatusOK {
		t.Errorf("stranger: %d %s", code, body)
	}
	e.settle()
	if ap, _ := e.st.Approval(e.ctx, runID); !ap.Decided.IsZero() {
		t.Fatalf("a refused click decided the approval: %+v", ap)
	}
	if after := e.counts(); after.acks != before.acks || after.silences != before.silences || after.audit != before.audit+1 {
		t.Fatalf("refused clicks changed %+v → %+v (only the stranger's refusal is audited)", before, after)
	}
	told := findPost(t, slack, "response_url", "U999")
	if !told.Ephemeral || told.Replace {
		t.Fatalf("the stranger is not told alone: %+v", told)
	}

	// Alice refuses the run from Slack: the run does not run, db3 is
	// paged; the message shows it, without its buttons.
	if code, body := e.send(web.PathSlackInteractions, refuse.Body, refuse.Header); code != http.StatusOK {
		t.Fatalf("refuse: %d %s", code, body)
	}
	e.settle()
	if ap, _ := e.st.Approval(e.ctx, runID); ap.Decided.IsZero() || ap.Approved || ap.By != "alice" {
		t.Fatalf("approval %+v", ap)
	}
	upd := findPost(t, slack, "response_url", "Refused by alice")
	if !upd.Replace || upd.TS != ask.TS || strings.Contains(upd.Blocks, "assertd.approve") || !strings.Contains(upd.Blocks, "APPROVAL NEEDED") {
		t.Fatalf("the message is not updated in place: %+v", upd)
	}
	if code, _ := e.send(web.PathSlackInteractions, refuse.Body, refuse.Header); code != http.StatusUnauthorized {
		t.Fatalf("a replayed click: %d", code)
	}
	if got := e.instance("pg-connections", "db3"); got.State != assertd.Escalated {
		t.Fatalf("db3 after the refusal: %s", got.State)
	}
	e.deliver()

	// The page: Acknowledge, Silence 1h, Open in assertd.
	page := findPost(t, slack, "chat.postMessage", "FIRING", db3.Fingerprint, `"action_id":"assertd.ack"`, `"action_id":"assertd.silence"`, "Open in assertd")
	if evs := pdOf(); len(evs) != 1 || evs[0].Action != "trigger" {
		t.Fatalf("PagerDuty events %+v", evs)
	}
	ack, err := slack.Click(page, "assertd.ack", "U123", slackSigning, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.send(web.PathSlackInteractions, ack.Body, ack.Header); code != http.StatusOK {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, _ := e.send(web.PathSlackInteractions, ack.Body, ack.Header); code != http.StatusUnauthorized {
		t.Fatalf("a replayed ack: %d", code)
	}
	acks, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Assert: "pg-connections", Fingerprint: db3.Fingerprint, Action: assertd.ActAck})
	if len(acks) != 1 || !strings.Contains(acks[0].Reason, "acknowledged by alice: from Slack") {
		t.Fatalf("acks %+v", acks)
	}
	findPost(t, slack, "response_url", "Acknowledged by alice")
	// The same audit trail as the API: the request and what the engine did.
	for action, target := range map[string]string{"request.refuse": runID, "run.deny": runID,
		"request.acknowledge": "pg-connections/" + db3.Fingerprint, "incident.ack": "pg-connections/" + db3.Fingerprint} {
		log, _ := e.st.AuditLog(e.ctx, store.AuditFilter{Action: action})
		if len(log) != 1 || log[0].Actor != "alice" || log[0].Target != target {
			t.Errorf("audit %s: %+v", action, log)
		}
	}
	// PagerDuty acknowledges its incident; Slack's thread says who took it.
	e.deliver()
	if evs := pdOf(); len(evs) != 2 || evs[1].Action != "acknowledge" || !pd.Acknowledged(key) {
		t.Fatalf("PagerDuty events %+v", evs)
	}
	reply := findPost(t, slack, "chat.postMessage", "ACKNOWLEDGED", "db3")
	if reply.ThreadTS != page.TS {
		t.Fatalf("the ack is not in the page's thread: %+v", reply)
	}
	// Escalation stopped: the manager is never paged.
	e.clock.Add(15 * time.Minute)
	e.eval()
	if ms, _ := e.st.Messages(e.ctx, store.MessageFilter{Channel: "manager"}); len(ms) != 0 {
		t.Fatalf("the manager was paged after the ack: %+v", ms)
	}
	// Silence 1h from the page.
	sil, _ := slack.Click(page, "assertd.silence", "U123", slackSigning, time.Now())
	if code, body := e.send(web.PathSlackInteractions, sil.Body, sil.Header); code != http.StatusOK {
		t.Fatalf("silence: %d %s", code, body)
	}
	ss, _ := e.st.Silences(e.ctx, e.clock.Now(), false)
	if len(ss) != 1 || ss[0].Author != "alice" || !ss[0].End.Equal(e.clock.Now().Add(time.Hour)) || !ss[0].Matches(db3.Labels) {
		t.Fatalf("silences %+v", ss)
	}
	if got := e.instance("pg-connections", "db3"); got.State != assertd.Silenced {
		t.Fatalf("db3 is %s", got.State)
	}
	_, metrics := e.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`assertd_signed_requests_total{result="applied",sender="slack"} 3`,
		`assertd_signed_requests_total{result="forbidden",sender="slack"} 1`,
		`assertd_signed_requests_total{result="replayed",sender="slack"} 2`,
		`assertd_signed_requests_total{result="stale",sender="slack"} 2`,
		`assertd_signed_requests_total{result="unsigned",sender="slack"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "assertd_signed"))
		}
	}
}

// TestPagerDutyWebhook: an incident acknowledged in PagerDuty acknowledges
// the instance in assertd (escalation stops), audited under the agent's
// name; a bad signature is refused and changes nothing; an event delivered
// twice is applied once; an incident assertd did not open is counted and
// ignored; a resolve made in PagerDuty acknowledges too.
func TestPagerDutyWebhook(t *testing.T) {
	slack := testsaas.NewSlack(t, slackToken)
	pd := testsaas.NewPagerDuty(t, pdKey)
	e := newEnvWith(t, chatConfig(slack, pd), harnessRules)
	e.seed()
	db3 := e.instance("pg-connections", "db3")
	if db3.State != assertd.Escalated {
		t.Fatalf("db3 is %s", db3.State)
	}
	e.deliver()
	key := notifiers.DedupKey("pg-connections/" + db3.Fingerprint)
	if !pd.Open(key) {
		t.Fatalf("no PagerDuty incident for %s: %+v", key, pd.Events())
	}
	before := e.counts()
	for name, wh := range map[string]testsaas.Webhook{
		"bad signature": pd.Webhook("incident.acknowledged", key, "Alice Ops", e.clock.Now(), "not-the-secret"),
		"unsigned":      {Body: pd.Webhook("incident.acknowledged", key, "Alice Ops", e.clock.Now()).Body},
	} {
		if code, body := e.send(web.PathPagerDutyWebhook, wh.Body, wh.Header); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if after := e.counts(); after != before {
		t.Fatalf("refused webhooks changed %+v → %+v", before, after)
	}
	// Signed with the old and the new secret during a rotation.
	wh := pd.Webhook("incident.acknowledged", key, "Alice Ops", e.clock.Now(), "the-old-secret", pdWebhookSecret)
	code, body := e.send(web.PathPagerDutyWebhook, wh.Body, wh.Header)
	if code != http.StatusOK || !strings.Contains(body, "pg-connections/"+db3.Fingerprint) {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, body := e.send(web.PathPagerDutyWebhook, wh.Body, wh.Header); code != http.StatusOK || !strings.Contains(body, "already received") {
		t.Fatalf("delivered again: %d %s", code, body)
	}
	acks, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Action: assertd.ActAck})
	if len(acks) != 1 || !strings.Contains(acks[0].Reason, "acknowledged by pagerduty:Alice Ops: acknowledged in PagerDuty") {
		t.Fatalf("acks %+v", acks)
	}
	for _, action := range []string{"request.acknowledge", "incident.ack"} {
		log, _ := e.st.AuditLog(e.ctx, store.AuditFilter{Action: action})
		if len(log) != 1 || log[0].Actor != "pagerduty:Alice Ops" {
			t.Errorf("audit %s: %+v", action, log)
		}
	}
	// A resolve in PagerDuty of the same incident: already acknowledged.
	res := pd.Webhook("incident.resolved", key, "Alice Ops", e.clock.Now(), pdWebhookSecret)
	if code, body := e.send(web.PathPagerDutyWebhook, res.Body, res.Header); code != http.StatusOK {
		t.Fatalf("resolve: %d %s", code, body)
	}
	if acks, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Action: assertd.ActAck}); len(acks) != 1 {
		t.Fatalf("acks after the resolve %+v", acks)
	}
	other := pd.Webhook("incident.acknowledged", "someone-elses-incident", "Bob", e.clock.Now(), pdWebhookSecret)
	if code, body := e.send(web.PathPagerDutyWebhook, other.Body, other.Header); code != http.StatusOK || !strings.Contains(body, "unknown incident") {
		t.Fatalf("unknown incident: %d %s", code, body)
	}
	// Escalation stopped: no second level.
	e.clock.Add(15 * time.Minute)
	e.eval()
	if ms, _ := e.st.Messages(e.ctx, store.MessageFilter{Channel: "manager"}); len(ms) != 0 {
		t.Fatalf("the manager was paged after the ack: %+v", ms)
	}
	_, metrics := e.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`assertd_signed_requests_total{result="applied",sender="pagerduty"} 2`, // the ack, and the resolve (acknowledged already: no new decision)
		`assertd_signed_requests_total{result="duplicate",sender="pagerduty"} 1`,
		`assertd_signed_requests_total{result="unknown",sender="pagerduty"} 1`,
		`assertd_signed_requests_total{result="unsigned",sender="pagerduty"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "assertd_signed"))
		}
	}
}

// TestSigningSecretRotatedOnReload: a signing secret read from a file is
// read again by a reload; from then on a click signed with the old secret
// is refused and one signed with the new secret is applied.
func TestSigningSecretRotatedOnReload(t *testing.T) {
	slack := testsaas.NewSlack(t, slackToken)
	pd := testsaas.NewPagerDuty(t, pdKey)
	secretFile := filepath.Join(t.TempDir(), "slack-signing")
	if err := os.WriteFile(secretFile, []byte("old-signing-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(chatConfig(slack, pd), "signing_secret_env: SLACK_SIGNING", "signing_secret_file: "+secretFile, 1)
	e := newEnvWith(t, cfg, harnessRules)
	e.seed()
	e.deliver()
	db3 := e.instance("pg-connections", "db3")
	page := findPost(t, slack, "chat.postMessage", "FIRING", db3.Fingerprint, `"action_id":"assertd.ack"`)
	if err := os.WriteFile(secretFile, []byte("new-signing-secret-9876543210\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Reload(e.ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := slack.Click(page, "assertd.ack", "U123", "old-signing-secret-0123456789", time.Now())
	if code, body := e.send(web.PathSlackInteractions, old.Body, old.Header); code != http.StatusUnauthorized {
		t.Fatalf("signed with the old secret: %d %s", code, body)
	}
	if acks, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Action: assertd.ActAck}); len(acks) != 0 {
		t.Fatalf("acks %+v", acks)
	}
	next, _ := slack.Click(page, "assertd.ack", "U123", "new-signing-secret-9876543210", time.Now())
	if code, body := e.send(web.PathSlackInteractions, next.Body, next.Header); code != http.StatusOK {
		t.Fatalf("signed with the new secret: %d %s", code, body)
	}
	if acks, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Action: assertd.ActAck}); len(acks) != 1 {
		t.Fatalf("acks %+v", acks)
	}
}

// TestAPIAckReachesPagerDuty: an acknowledgement made through the API is
// sent to PagerDuty as the acknowledge of the incident's dedup key, once.
func TestAPIAckReachesPagerDuty(t *testing.T) {
	slack := testsaas.NewSlack(t, slackToken)
	pd := testsaas.NewPagerDuty(t, pdKey)
	e := newEnvWith(t, chatConfig(slack, pd), harnessRules)
	e.seed()
	e.deliver()
	db3 := e.instance("pg-connections", "db3")
	key := notifiers.DedupKey("pg-connections/" + db3.Fingerprint)
	if !pd.Open(key) || pd.Acknowledged(key) {
		t.Fatalf("the incident before the ack: open %v, acknowledged %v", pd.Open(key), pd.Acknowledged(key))
	}
	for range 2 {
		if code, body := e.do("POST", "/api/v1/instances/pg-connections/"+db3.Fingerprint+"/ack", adminSecret, `{"comment": "on it"}`); code != 200 {
			t.Fatalf("ack %d %s", code, body)
		}
	}
	e.deliver()
	n := 0
	for _, ev := range pd.Events() {
		if ev.Action == "acknowledge" && ev.DedupKey == key {
			n++
		}
	}
	if n != 1 || !pd.Acknowledged(key) {
		t.Fatalf("%d acknowledge events: %+v", n, pd.Events())
	}
}
