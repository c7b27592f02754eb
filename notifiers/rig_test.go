package notifiers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

const (
	slackToken = "xoxb-1111-2222-SECRETSLACKTOKEN"
	pdKey      = "R0UTINGKEYSECRET0000000000000000"
	hookSecret = "whsec-SIGNINGSECRET"
)

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// syncBuffer collects log lines from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// rig is a store, a fake Slack and PagerDuty, and a deliverer on them.
type rig struct {
	t     *testing.T
	st    store.Store
	d     *notifiers.Deliverer
	slack *testsaas.Slack
	pd    *testsaas.PagerDuty
	logs  *syncBuffer
	cfg   *config.Config
	now   time.Time
}

func env(k string) string {
	return map[string]string{"SLACK_TOKEN": slackToken, "PD_KEY": pdKey, "HOOK_SECRET": hookSecret}[k]
}

func newRig(t *testing.T, policy config.EscalationPolicy, opt func(*notifiers.Options)) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "assertd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, st: st, slack: testsaas.NewSlack(t, slackToken), pd: testsaas.NewPagerDuty(t, pdKey), logs: &syncBuffer{}, now: t0}
	if policy.Name == "" {
		policy = config.EscalationPolicy{Name: "ops", Levels: []config.Level{{Notify: []string{"slack", "pagerduty"}}}, Info: []string{"slack"}}
	}
	r.cfg = &config.Config{
		Notifiers: []config.Notifier{
			{Name: "slack", Slack: &config.Slack{TokenEnv: "SLACK_TOKEN", Channel: "#ops", APIURL: r.slack.APIURL}},
			{Name: "pagerduty", PagerDuty: &config.PagerDuty{RoutingKeyEnv: "PD_KEY", EventsURL: r.pd.URL, RatePerMinute: 6000}},
		},
		EscalationPolicies: []config.EscalationPolicy{policy},
		Web:                config.Web{ExternalURL: "https://assertd.example/"},
	}
	o := notifiers.Options{Store: st, Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Timeout: 300 * time.Millisecond, Jitter: func() float64 { return 0.5 }, Owner: "test"}
	if opt != nil {
		opt(&o)
	}
	r.d, err = notifiers.New(r.cfg, t.TempDir(), env, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.noSecrets)
	return r
}

// noSecrets fails when a secret shows in a log line or a stored error.
func (r *rig) noSecrets() {
	logs := r.logs.String()
	ms, _ := r.st.Messages(context.Background(), store.MessageFilter{Limit: 100000})
	for _, m := range ms {
		logs += "\n" + m.LastError
	}
	for _, s := range []string{slackToken, pdKey, hookSecret, "secretpart"} {
		if strings.Contains(logs, s) {
			r.t.Errorf("a secret (%.6s…) is in the logs or stored errors", s)
		}
	}
}

// step delivers at now and then moves the clock.
func (r *rig) step(d time.Duration) {
	r.t.Helper()
	if err := r.d.DeliverDue(context.Background(), r.now); err != nil {
		r.t.Logf("at %s: %v", r.now.Sub(t0), err)
	}
	r.now = r.now.Add(d)
}

// until steps by d until cond holds, at most limit of simulated time.
func (r *rig) until(d, limit time.Duration, what string, cond func() bool) time.Time {
	r.t.Helper()
	end := r.now.Add(limit)
	for r.now.Before(end) {
		at := r.now
		r.step(d)
		if cond() {
			return at
		}
	}
	r.t.Fatalf("%s: not within %s (at +%s)\nlogs:\n%s", what, limit, r.now.Sub(t0), r.logs.String())
	return time.Time{}
}

// page does what the engine does when it escalates: the instance is
// escalated and one trigger per first-level channel is in the outbox.
func (r *rig) page(assert string, labels assertd.Labels, at time.Time, channels ...string) string {
	r.t.Helper()
	in := assertd.Instance{Assert: assert, Fingerprint: labels.Fingerprint(), Labels: labels, State: assertd.Escalated, Since: at, LastEval: at}
	r.commit(in, assertd.NoticeTrigger, at, 0, 0, channels)
	return assert + "/" + in.Fingerprint
}

// later does what the engine does when a page is not acknowledged in time:
// a page of a later level (from 0) or round (from 0), on its channels.
func (r *rig) later(assert string, labels assertd.Labels, since, at time.Time, level, round int, channels ...string) {
	r.t.Helper()
	in := assertd.Instance{Assert: assert, Fingerprint: labels.Fingerprint(), Labels: labels, State: assertd.Escalated, Since: since, LastEval: at}
	r.commit(in, assertd.NoticeTrigger, at, level, round, channels)
}

// resolve does what the engine does when a paged instance recovers.
func (r *rig) resolve(assert string, labels assertd.Labels, at time.Time, channels ...string) {
	r.t.Helper()
	in := assertd.Instance{Assert: assert, Fingerprint: labels.Fingerprint(), Labels: labels, State: assertd.OK, Since: at, LastEval: at}
	r.commit(in, assertd.NoticeResolve, at, 0, 0, channels)
}

func (r *rig) commit(in assertd.Instance, kind assertd.NoticeKind, at time.Time, level, round int, channels []string) {
	n := assertd.Notice{Version: 1, Kind: kind, Assert: in.Assert, Fingerprint: in.Fingerprint, Labels: in.Labels,
		Values: map[string]float64{"ms": 80}, State: in.State, Reason: "no remediation is set for this assert: paging",
		Policy: r.cfg.EscalationPolicies[0].Name, At: at, Since: in.Since, RunID: "run-1", StepLog: "restart: exit 1\nverify: still 80ms",
		Level: level, Round: round}
	payload, _ := json.Marshal(n)
	var msgs []assertd.Message
	for _, ch := range channels {
		msgs = append(msgs, assertd.Message{Channel: ch, DedupKey: in.Assert + "/" + in.Fingerprint, Kind: string(kind),
			Payload: string(payload), Created: at, NextAttempt: at})
	}
	key := fmt.Sprintf("%s/%s/%s/%d/r%d/l%d", kind, in.Assert, in.Fingerprint, at.UnixMicro(), round, level)
	if _, err := r.st.Commit(context.Background(), store.Change{Key: key, Instance: &in, Messages: msgs}); err != nil {
		r.t.Fatal(err)
	}
}

// events counts PagerDuty events by action.
func (r *rig) events(action string) int {
	n := 0
	for _, e := range r.pd.Events() {
		if e.Action == action {
			n++
		}
	}
	return n
}

// posts counts Slack calls of a method whose text contains s.
func (r *rig) posts(method, s string) int {
	n := 0
	for _, p := range r.slack.Posts() {
		if p.Method == method && strings.Contains(p.Text, s) {
			n++
		}
	}
	return n
}
