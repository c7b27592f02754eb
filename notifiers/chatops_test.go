package notifiers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
)

// interactive gives the rig's Slack channel a signing secret (its clicks
// come back to assertd) and PagerDuty change events, as a reload would.
func (r *rig) interactive(changes bool) {
	r.t.Helper()
	sl, pd := *r.cfg.Notifiers[0].Slack, *r.cfg.Notifiers[1].PagerDuty
	sl.SigningSecretEnv, pd.ChangeEvents = "SLACK_SIGNING", changes
	r.cfg.Notifiers[0].Slack, r.cfg.Notifiers[1].PagerDuty = &sl, &pd
	n, err := r.d.Prepare(r.cfg, r.t.TempDir(), env)
	if err != nil {
		r.t.Fatal(err)
	}
	r.d.Swap(n)
}

// notice commits one message of a notice, as the engine writes it.
func (r *rig) notice(key, dedup string, n assertd.Notice, channels ...string) {
	r.t.Helper()
	payload, _ := json.Marshal(n)
	var msgs []assertd.Message
	for _, ch := range channels {
		msgs = append(msgs, assertd.Message{Key: key + "/" + ch, Channel: ch, DedupKey: dedup, Kind: string(n.Kind),
			Payload: string(payload), Created: n.At, NextAttempt: n.At})
	}
	if _, err := r.st.Commit(context.Background(), store.Change{Key: key, At: n.At, Messages: msgs}); err != nil {
		r.t.Fatal(err)
	}
}

// An interactive Slack page carries Acknowledge, Silence 1h and Open in
// assertd; an ack committed with the page follows it: PagerDuty gets the
// acknowledge of the incident it opened, Slack a reply in the page's
// thread; the resolve's update has no buttons. Without a signing secret,
// no buttons.
func TestSlackButtonsAndAck(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{}, nil)
	r.interactive(false)
	labels := assertd.Labels{"instance": "db3"}
	key := r.page("pg", labels, t0, "slack", "pagerduty")
	ack := assertd.Notice{Version: 1, Kind: assertd.NoticeAck, Assert: "pg", Fingerprint: labels.Fingerprint(), Labels: labels,
		State: assertd.Escalated, Reason: "acknowledged by alice: on it", By: "alice", At: t0, Since: t0}
	r.notice("ack/"+key, key, ack, "slack", "pagerduty")
	r.until(time.Second, time.Minute, "page and ack delivered", func() bool { return r.events("acknowledge") == 1 && r.posts("chat.postMessage", "ACKNOWLEDGED") == 1 })
	evs := r.pd.Events()
	if len(evs) != 2 || evs[0].Action != "trigger" || evs[1].Action != "acknowledge" || evs[1].DedupKey != evs[0].DedupKey ||
		evs[0].DedupKey != notifiers.DedupKey(key) || !r.pd.Acknowledged(evs[0].DedupKey) {
		t.Fatalf("PagerDuty events %+v", evs)
	}
	top := r.slack.TopLevel()
	if len(top) != 1 {
		t.Fatalf("top-level posts %+v", top)
	}
	for _, want := range []string{`"block_id":"assertd.actions"`, `"action_id":"assertd.ack"`, `"action_id":"assertd.silence"`,
		`"value":"{\"assert\":\"pg\",\"fingerprint\":\"` + labels.Fingerprint() + `\"}"`,
		`"url":"https://assertd.example/asserts/pg?instance=` + labels.Fingerprint() + `"`} {
		if !strings.Contains(top[0].Blocks, want) {
			t.Errorf("the page lacks %s: %s", want, top[0].Blocks)
		}
	}
	for _, p := range r.slack.Posts() {
		if strings.Contains(p.Text, "ACKNOWLEDGED") && (p.ThreadTS != top[0].TS || strings.Contains(p.Blocks, "assertd.actions")) {
			t.Errorf("the ack is not a reply without buttons in the page's thread: %+v", p)
		}
	}
	r.resolve("pg", labels, t0.Add(time.Minute), "slack", "pagerduty")
	r.until(time.Second, time.Minute, "resolve delivered", func() bool { return r.events("resolve") == 1 })
	for _, p := range r.slack.Posts() {
		if p.Method == "chat.update" && strings.Contains(p.Blocks, "assertd.actions") {
			t.Errorf("the resolved page keeps its buttons: %s", p.Blocks)
		}
	}

	plain := newRig(t, config.EscalationPolicy{}, nil)
	plain.page("pg", labels, t0, "slack")
	plain.until(time.Second, time.Minute, "page delivered", func() bool { return len(plain.slack.TopLevel()) == 1 })
	if b := plain.slack.TopLevel()[0].Blocks; strings.Contains(b, `"type":"actions"`) {
		t.Errorf("buttons without a signing secret: %s", b)
	}
}

// An approval request carries Approve and Refuse on Slack and is not sent
// to PagerDuty; with change_events, a run's information is a PagerDuty
// change event, not an incident.
func TestApprovalRequestAndChangeEvents(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{}, nil)
	r.interactive(true)
	labels := assertd.Labels{"instance": "db3"}
	ask := assertd.Notice{Version: 1, Kind: assertd.NoticeInfo, Assert: "pg", Fingerprint: labels.Fingerprint(), Labels: labels,
		State: assertd.Remediating, Reason: "remediation restart (run run-7) waits for an approval", At: t0, Since: t0,
		RunID: "run-7", Approval: "run-7", Expires: t0.Add(15 * time.Minute)}
	r.notice("approval/run-7", "approval/run-7", ask, "slack", "pagerduty")
	healed := assertd.Notice{Version: 1, Kind: assertd.NoticeInfo, Assert: "pg", Fingerprint: labels.Fingerprint(), Labels: labels,
		State: assertd.OK, Reason: "fixed by remediation restart (run run-8): verified", At: t0, Since: t0, RunID: "run-8"}
	r.notice("run/run-8", "pg/"+labels.Fingerprint(), healed, "pagerduty")
	r.until(time.Second, time.Minute, "delivered", func() bool {
		ms, _ := r.st.Messages(context.Background(), store.MessageFilter{Status: assertd.MsgDelivered})
		return len(ms) == 3
	})
	top := r.slack.TopLevel()
	if len(top) != 1 || !strings.Contains(top[0].Text, "APPROVAL NEEDED") {
		t.Fatalf("Slack posts %+v", r.slack.Posts())
	}
	for _, want := range []string{`"action_id":"assertd.approve"`, `"action_id":"assertd.refuse"`, `"value":"{\"run\":\"run-7\"}"`, `"style":"danger"`} {
		if !strings.Contains(top[0].Blocks, want) {
			t.Errorf("the approval request lacks %s: %s", want, top[0].Blocks)
		}
	}
	if evs := r.pd.Events(); len(evs) != 0 {
		t.Errorf("PagerDuty events %+v", evs)
	}
	ch := r.pd.ChangeEvents()
	if len(ch) != 1 || !strings.Contains(ch[0].Payload.Summary, "fixed by remediation restart") || ch[0].Payload.Source != "db3" ||
		len(ch[0].Links) != 1 || !strings.HasPrefix(ch[0].Links[0]["href"], "https://assertd.example/asserts/pg") {
		t.Errorf("change events %+v", ch)
	}
}
