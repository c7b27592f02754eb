package notifiers_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store/sqlite"
)

type fixedSource struct{ v float64 }

func (s fixedSource) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"instance": "api-1"}, Value: s.v}}}, nil
}

// healer runs every remediation and reports it verified (or not); it
// has no run started by hand, no approval and no breaker.
type healer struct{ verified bool }

func (healer) StartManual(context.Context, assertd.Decision, assertd.Instance, func(engine.RunResult)) {
}
func (healer) Interrupted(assertd.Run)                                        {}
func (healer) ApprovalDecided(string)                                         {}
func (healer) Breakers(context.Context, time.Time) ([]assertd.Breaker, error) { return nil, nil }
func (healer) CloseBreaker(context.Context, string, string, string, time.Time) (assertd.Breaker, error) {
	return assertd.Breaker{}, nil
}

func (h healer) Decide(_ context.Context, rem string, _ assertd.Instance, _ time.Time) assertd.Decision {
	return assertd.Decision{Action: assertd.ActRemediate, Reason: "allowed: " + rem}
}

func (h healer) Start(_ context.Context, d assertd.Decision, _ assertd.Instance, done func(engine.RunResult)) {
	done(engine.RunResult{RunID: d.RunID, Verified: h.verified, Outcome: "verify", StepLog: "restart: exit 0", At: d.At.Add(time.Minute)})
}

// An auto-healed violation sends one informational Slack
// message and zero PagerDuty events; a failed fix pages both. The engine
// writes the outbox, the deliverer sends it.
func TestAutoHealedIsInformationOnly(t *testing.T) {
	for _, verified := range []bool{true, false} {
		t.Run(map[bool]string{true: "healed", false: "not healed"}[verified], func(t *testing.T) {
			sl, pd := testsaas.NewSlack(t, slackToken), testsaas.NewPagerDuty(t, pdKey)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(`files: [rules.yaml]
notifiers:
  - {name: slack, slack: {token_env: SLACK_TOKEN, channel: "#ops", api_url: "`+sl.APIURL+`"}}
  - {name: pagerduty, pagerduty: {routing_key_env: PD_KEY, events_url: "`+pd.URL+`"}}
escalation_policies:
  - {name: ops, info: [slack], levels: [{notify: [slack, pagerduty]}]}
defaults: {escalate: ops}
`), 0o644)
			os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}]
remediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]
`), 0o644)
			set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			st, err := sqlite.Open(context.Background(), filepath.Join(dir, "assertd.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			e, err := engine.New(context.Background(), engine.Options{Set: set, Store: st,
				NewRemediator: func(remediations.Host) engine.Remediator { return healer{verified: verified} },
				Sources:       map[string]asserts.Querier{config.EmbeddedName: fixedSource{80}}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			d, err := notifiers.New(set.Config, dir, env, notifiers.Options{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.EvaluateNow(context.Background(), "latency", t0); err != nil {
				t.Fatal(err)
			}
			for i := range 120 { // the run ends at t0+1m
				d.DeliverDue(context.Background(), t0.Add(time.Duration(i)*time.Second))
			}
			posts, events := sl.Posts(), pd.Events()
			if verified {
				if len(posts) != 1 || len(events) != 0 || posts[0].Method != "chat.postMessage" {
					t.Fatalf("auto-healed: %d Slack posts, %d PagerDuty events; want 1 informational post, 0 events: %+v", len(posts), len(events), posts)
				}
				if want := "INFO: latency"; !strings.Contains(posts[0].Text, want) {
					t.Fatalf("post %q, want %q", posts[0].Text, want)
				}
				return
			}
			if len(posts) != 1 || len(events) != 1 || events[0].Action != "trigger" || events[0].Payload.Details["step_log"] != "restart: exit 0" {
				t.Fatalf("not healed: %d Slack posts, %+v", len(posts), events)
			}
		})
	}
}
