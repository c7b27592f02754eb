package notifiers_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
)

// Each send attempt is counted by channel, notice kind and result: a
// refused page is dead, a garbled answer failed (tried again), then
// delivered.
func TestNotificationCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, config.EscalationPolicy{}, func(o *notifiers.Options) { o.Registerer = reg })
	count := func(channel, result string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "assertd_notifications_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["channel"] == channel && l["kind"] == string(assertd.NoticeTrigger) && l["result"] == result {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	r.pd.SetFault(testsaas.Refuse400)
	r.slack.SetFault(testsaas.Garbage)
	r.page("disk", assertd.Labels{"instance": "db-1"}, t0, "slack", "pagerduty")
	r.until(time.Second, time.Minute, "both attempted", func() bool { return count("pagerduty", "dead") == 1 && count("slack", "failed") == 1 })
	if d, f := count("slack", "delivered"), count("pagerduty", "failed"); d != 0 || f != 0 {
		t.Fatalf("slack delivered %v, pagerduty failed %v: want 0 and 0", d, f)
	}
	r.slack.SetFault(testsaas.OK)
	r.until(time.Second, 2*time.Minute, "Slack after the garbage", func() bool { return count("slack", "delivered") == 1 })
	if n := len(r.slack.TopLevel()); n != 1 {
		t.Fatalf("%d Slack messages, want 1", n)
	}
	if f, d, pd := count("slack", "failed"), count("slack", "dead"), count("pagerduty", "delivered"); f != 1 || d != 0 || pd != 0 {
		t.Errorf("slack failed %v dead %v, pagerduty delivered %v: want 1, 0, 0", f, d, pd)
	}
}
