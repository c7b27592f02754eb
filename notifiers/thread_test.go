package notifiers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// The pages of one incident as the engine writes them — the page, a later
// level on PagerDuty, a repeat on Slack, the resolves on both — are
// delivered each once, in the incident's thread: the repeat replies to the
// page, the resolve updates it and replies, PagerDuty keeps one incident.
// The deliverer adds no page of its own: when to page is the engine's.
func TestIncidentPagesThread(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{Name: "ops", Repeat: assertd.Duration(30 * time.Minute), Levels: []config.Level{
		{Notify: []string{"slack"}}, {After: assertd.Duration(5 * time.Minute), Notify: []string{"pagerduty"}}}}, nil)
	db := assertd.Labels{"instance": "db-1"}

	type seen struct {
		what string
		at   time.Duration
	}
	var got []seen
	count := map[string]int{}
	watch := func() {
		now := map[string]int{"slack": len(r.slack.Posts()), "pd-trigger": r.events("trigger"), "pd-resolve": r.events("resolve")}
		for _, k := range []string{"slack", "pd-trigger", "pd-resolve"} {
			for ; count[k] < now[k]; count[k]++ {
				got = append(got, seen{k, r.now.Sub(t0)})
			}
		}
	}
	run := func(until time.Duration) {
		for r.now.Sub(t0) <= until {
			r.step(0)
			watch()
			r.now = r.now.Add(5 * time.Second)
		}
	}
	r.page("replication", db, t0, "slack")
	run(5 * time.Minute)
	r.later("replication", db, t0, r.now, 1, 0, "pagerduty")
	run(30 * time.Minute)
	r.later("replication", db, t0, r.now, 0, 1, "slack")
	run(40 * time.Minute)
	r.resolve("replication", db, r.now, "slack", "pagerduty")
	run(72 * time.Minute)

	want := []seen{
		{"slack", 5 * time.Second},                     // the page, after the group wait
		{"pd-trigger", 5*time.Minute + 10*time.Second}, // level 2, after its own group wait
		{"slack", 30*time.Minute + 10*time.Second},     // the repeat
		{"slack", 40*time.Minute + 5*time.Second},      // the resolve: an update of the page…
		{"slack", 40*time.Minute + 5*time.Second},      // …and a reply in its thread
		{"pd-resolve", 40*time.Minute + 5*time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("deliveries\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivery %d\n got %v\nwant %v", i, got, want)
		}
	}
	posts := r.slack.Posts()
	if posts[1].ThreadTS != posts[0].TS || !strings.Contains(posts[1].Text, "level 1, round 2") {
		t.Errorf("the repeat is not a reply in the page's thread: %+v", posts[1])
	}
	if posts[2].Method != "chat.update" || posts[2].TS != posts[0].TS || posts[3].ThreadTS != posts[0].TS {
		t.Errorf("the resolve does not update the page and reply in its thread: %+v", posts[2:])
	}
	if r.pd.Incidents() != 1 {
		t.Errorf("%d PagerDuty incidents; the resolve must close the one of the page", r.pd.Incidents())
	}
	ms, err := r.st.Messages(context.Background(), store.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, m := range ms {
		if m.Status == assertd.MsgDelivered {
			delivered++
		}
	}
	if len(ms) != 5 || delivered != 5 {
		t.Errorf("%d messages in the outbox (%d delivered), want the 5 written, all delivered: %+v", len(ms), delivered, ms)
	}
}

// A resolve written while the page on its channel still waits (here in its
// group_wait) goes after it: PagerDuty sees the trigger, then the resolve,
// and the incident is closed.
func TestResolveFollowsItsPage(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{Name: "ops", Levels: []config.Level{
		{Notify: []string{"slack"}}, {After: assertd.Duration(5 * time.Minute), Notify: []string{"pagerduty"}}}}, nil)
	db := assertd.Labels{"instance": "db-1"}
	key := r.page("replication", db, t0, "slack")
	r.until(time.Second, time.Minute, "the page on Slack", func() bool { return len(r.slack.Posts()) == 1 })
	r.now = t0.Add(5 * time.Minute)
	r.later("replication", db, t0, r.now, 1, 0, "pagerduty")
	r.now = r.now.Add(time.Second)
	r.resolve("replication", db, r.now, "slack", "pagerduty")
	r.step(time.Second) // the level 2 page waits for its group; its resolve waits for it
	if n := len(r.pd.Events()); n != 0 {
		t.Fatalf("%d PagerDuty events before the page's group_wait ended: %+v", n, r.pd.Events())
	}
	r.until(time.Second, time.Minute, "the resolve on PagerDuty", func() bool { return r.events("resolve") == 1 })
	ev := r.pd.Events()
	if len(ev) != 2 || ev[0].Action != "trigger" || ev[1].Action != "resolve" || r.pd.Open(key) {
		t.Fatalf("PagerDuty events %+v (open: %v); want the trigger, then the resolve", ev, r.pd.Open(key))
	}
}
