package notifiers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
)

// With PagerDuty failing (500, 429 + Retry-After, slow answers,
// reset connections) for 10 simulated minutes, the page reaches Slack at
// once and PagerDuty after recovery — one incident, no duplicate — and the
// resolve follows. Slack hears that PagerDuty is failing, then that it
// works again.
func TestPagerDutyOutageTenMinutes(t *testing.T) {
	start := time.Now()
	r := newRig(t, config.EscalationPolicy{}, nil)
	r.pd.Delay = time.Second // slower than the 300ms timeout
	r.pd.RetryAfter = 45
	r.pd.Cycle(testsaas.Fail500, testsaas.Limit429, testsaas.Slow, testsaas.Reset)
	api := assertd.Labels{"instance": "api-1", "severity": "page"}
	key := r.page("latency", api, t0, "slack", "pagerduty")

	slackAt := r.until(time.Second, time.Minute, "page on Slack", func() bool { return len(r.slack.TopLevel()) == 1 })
	if d := slackAt.Sub(t0); d > notifiers.DefaultGroupWait {
		t.Fatalf("Slack got the page after %s; want at once (within the %s group wait)", d, notifiers.DefaultGroupWait)
	}
	r.until(time.Second, 2*time.Minute, "Slack told that PagerDuty fails", func() bool { return r.posts("chat.postMessage", "channel pagerduty failing since") == 1 })
	outageEnd := t0.Add(10 * time.Minute)
	for r.now.Before(outageEnd) {
		r.step(time.Second)
	}
	if n := r.events("trigger"); n != 0 {
		t.Fatalf("%d PagerDuty events accepted during the outage", n)
	}
	failed := r.pd.Failed()
	m, _ := r.st.Messages(context.Background(), store.MessageFilter{Channel: "pagerduty"})
	if len(m) != 1 || m[0].Status != assertd.MsgPending || !strings.Contains(m[0].LastError, "pagerduty") {
		t.Fatalf("the page on PagerDuty during the outage: %+v", m)
	}
	r.pd.SetFault(testsaas.OK)
	pdAt := r.until(time.Second, 2*time.Minute, "page on PagerDuty after the outage", func() bool { return r.events("trigger") == 1 })
	r.until(time.Second, time.Minute, "Slack told that PagerDuty works again", func() bool {
		return r.posts("chat.postMessage", "channel pagerduty works again") == 1
	})

	r.resolve("latency", api, r.now, "slack", "pagerduty")
	r.until(time.Second, time.Minute, "resolve on PagerDuty", func() bool { return r.events("resolve") == 1 })
	r.until(time.Second, time.Minute, "resolve on Slack", func() bool { return r.posts("chat.update", "RESOLVED: latency") == 1 })
	for range 30 {
		r.step(time.Second)
	}
	if n := r.pd.Incidents(); n != 1 || r.events("trigger") != 1 || r.pd.Open(notifiers.DedupKey(key)) {
		t.Fatalf("PagerDuty: %d incidents, %d triggers, open %v; want one incident, resolved", n, r.events("trigger"), r.pd.Open(notifiers.DedupKey(key)))
	}
	top := r.slack.TopLevel()
	if len(top) != 2 || !strings.Contains(top[0].Text, "FIRING: latency") || !strings.Contains(top[1].Text, "failing since") {
		t.Fatalf("Slack top-level posts (want the page and the failing notice): %+v", top)
	}
	for _, p := range r.slack.Posts() {
		if p.Method == "chat.update" && p.TS != top[0].TS && strings.Contains(p.Text, "latency") {
			t.Errorf("resolve updated another message: %+v", p)
		}
	}
	ms, _ := r.st.Messages(context.Background(), store.MessageFilter{})
	for _, m := range ms {
		if m.Status != assertd.MsgDelivered {
			t.Errorf("undelivered: %+v", m)
		}
	}
	t.Logf("PagerDuty answered %d failing requests; page on Slack after %s, on PagerDuty %s after the outage ended; %s of wall time",
		failed, slackAt.Sub(t0), pdAt.Sub(outageEnd), time.Since(start).Round(time.Millisecond))
}
