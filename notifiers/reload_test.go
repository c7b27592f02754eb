package notifiers_test

import (
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
)

// A swapped channel sends the next message to its new URL; a Prepare that
// fails changes nothing.
func TestSwapSendsToTheNewURL(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{}, nil)
	pd2 := testsaas.NewPagerDuty(t, pdKey)
	next := *r.cfg
	next.Notifiers = []config.Notifier{r.cfg.Notifiers[0],
		{Name: "pagerduty", PagerDuty: &config.PagerDuty{RoutingKeyEnv: "UNSET", EventsURL: pd2.URL, RatePerMinute: 6000}}}
	if _, err := r.d.Prepare(&next, t.TempDir(), env); err == nil {
		t.Fatal("Prepare took a channel whose key is unset")
	}
	r.page("a", assertd.Labels{"x": "1"}, r.now, "pagerduty")
	r.until(time.Second, time.Minute, "the first page on the first PagerDuty", func() bool { return r.events("trigger") == 1 })

	next.Notifiers[1].PagerDuty.RoutingKeyEnv = "PD_KEY"
	n, err := r.d.Prepare(&next, t.TempDir(), env)
	if err != nil {
		t.Fatal(err)
	}
	r.d.Swap(n)
	r.page("b", assertd.Labels{"x": "2"}, r.now, "pagerduty")
	r.until(time.Second, time.Minute, "the next page on the new PagerDuty", func() bool { return len(pd2.Events()) == 1 })
	if got := r.events("trigger"); got != 1 {
		t.Errorf("the first PagerDuty got %d triggers, want only the one before the swap", got)
	}
	if hs := r.d.Health(); len(hs) != 2 || hs[0].Name != "slack" || hs[1].Name != "pagerduty" {
		t.Errorf("health %+v", hs)
	}
}
