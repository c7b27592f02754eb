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

// The escalation timeline on injected time: level 2 after 5m, every level
// again after the 30m repeat, nothing after the acknowledgement, and the
// resolve goes to every channel that got the page.
func TestEscalationTimeline(t *testing.T) {
	start := time.Now()
	r := newRig(t, config.EscalationPolicy{Name: "ops", Repeat: assertd.Duration(30 * time.Minute), Levels: []config.Level{
		{Notify: []string{"slack"}}, {After: assertd.Duration(5 * time.Minute), Notify: []string{"pagerduty"}}}}, nil)
	db := assertd.Labels{"instance": "db-1"}
	r.page("replication", db, t0, "slack")

	type seen struct {
		what string
		at   time.Duration
	}
	var got []seen
	count := map[string]int{}
	watch := func() {
		now := map[string]int{"slack": len(r.slack.Posts()), "pd-trigger": r.events("trigger"), "pd-resolve": r.events("resolve")}
		for k, n := range now {
			for ; count[k] < n; count[k]++ {
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
	run(36 * time.Minute)
	// The ack arrives the way Engine.Acknowledge writes it.
	d := assertd.Decision{Key: "ack/replication", Assert: "replication", Fingerprint: db.Fingerprint(), At: t0.Add(36 * time.Minute),
		Action: assertd.ActAck, Reason: "acknowledged by alice"}
	if _, err := r.st.Commit(context.Background(), store.Change{Key: d.Key, Decision: &d}); err != nil {
		t.Fatal(err)
	}
	run(70 * time.Minute)
	r.resolve("replication", db, t0.Add(70*time.Minute), "slack")
	run(72 * time.Minute)

	want := []seen{
		{"slack", 5 * time.Second},                    // level 1 after the group wait
		{"pd-trigger", 5*time.Minute + 5*time.Second}, // level 2 after 5m (+ group wait)
		{"slack", 30*time.Minute + 5*time.Second},     // repeat: level 1 again, in the thread
		{"pd-trigger", 35*time.Minute + 5*time.Second},
		// acknowledged at 36m: no repeat at 60m/65m
		// The resolve (written at 70m, after that round) updates the page
		// and replies in its thread, and is fanned out to PagerDuty, which
		// got the page at level 2: one round (5s here, 1s in Run) later.
		{"slack", 70*time.Minute + 5*time.Second},
		{"slack", 70*time.Minute + 5*time.Second},
		{"pd-resolve", 70*time.Minute + 10*time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("timeline\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("timeline step %d\n got %v\nwant %v", i, got, want)
		}
	}
	posts := r.slack.Posts()
	if posts[1].ThreadTS != posts[0].TS || !strings.Contains(posts[1].Text, "round 2") {
		t.Errorf("the repeat is not a reply in the page's thread: %+v", posts[1])
	}
	if posts[2].Method != "chat.update" || posts[2].TS != posts[0].TS || posts[3].ThreadTS != posts[0].TS {
		t.Errorf("the resolve does not update the page and reply in its thread: %+v", posts[2:])
	}
	if r.pd.Incidents() != 1 {
		t.Errorf("%d PagerDuty incidents; the repeat must add to the same one", r.pd.Incidents())
	}
	t.Logf("72 simulated minutes in %s", time.Since(start).Round(time.Millisecond))
}
