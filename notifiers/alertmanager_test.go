package notifiers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testam"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// amAlerts returns the active alerts of a real Alertmanager as
// "alertname/instance" strings.
func amAlerts(t *testing.T, am *testam.Process) []string {
	t.Helper()
	resp, err := http.Get(am.URL + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var as []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Labels["alertname"]+"/"+a.Labels["instance"]+": "+a.Annotations["summary"])
	}
	return out
}

// The alertmanager channel delivers a page to a real Alertmanager through
// the outbox: one made while it is down arrives once it is back; the
// resolve ends the alert there.
func TestAlertmanagerChannelRealAlertmanager(t *testing.T) {
	am := testam.StartAlertmanager(t, testam.AlertmanagerOptions{Webhook: testam.Receiver{URL: "http://127.0.0.1:9/unused"}})
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "assertd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, st: st, logs: &syncBuffer{}, now: time.Now().UTC()}
	r.cfg = &config.Config{
		Notifiers:          []config.Notifier{{Name: "am", Alertmanager: &config.AlertmanagerNotifier{URLs: []string{am.URL}}}},
		EscalationPolicies: []config.EscalationPolicy{{Name: "ops", Levels: []config.Level{{Notify: []string{"am"}}}}},
	}
	r.d, err = notifiers.New(r.cfg, t.TempDir(), env, notifiers.Options{Store: st, Logger: slog.New(slog.NewTextHandler(r.logs, nil)),
		Timeout: time.Second, Jitter: func() float64 { return 0.5 }, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}

	am.Stop()
	labels := assertd.Labels{"instance": "db1", "team": "dba"}
	r.page("pg-connections", labels, r.now, "am")
	r.until(time.Second, 5*time.Minute, "tried while Alertmanager is down", func() bool {
		ms, _ := st.Messages(context.Background(), store.MessageFilter{})
		if len(ms) == 1 && ms[0].Status == assertd.MsgDelivered {
			t.Fatalf("delivered to a stopped Alertmanager: %+v", ms)
		}
		return strings.Contains(r.logs.String(), `msg="notification failed: will retry" channel=am`)
	})
	am.Restart(t)
	r.until(5*time.Second, 10*time.Minute, "delivered after the restart", func() bool {
		ms, _ := st.Messages(context.Background(), store.MessageFilter{})
		return len(ms) == 1 && ms[0].Status == assertd.MsgDelivered
	})
	got := amAlerts(t, am)
	if len(got) != 1 || got[0] != "pg-connections/db1: no remediation is set for this assert: paging" {
		t.Fatalf("Alertmanager holds %q", got)
	}
	r.now = time.Now().UTC().Add(-time.Second)
	r.resolve("pg-connections", labels, r.now, "am")
	r.step(time.Second)
	testprom.Eventually(t, 10*time.Second, func() error {
		if got := amAlerts(t, am); len(got) != 0 {
			return fmt.Errorf("still active: %q", got)
		}
		return nil
	})
	if strings.Contains(r.logs.String(), "panic") {
		t.Fatal(r.logs.String())
	}
}
