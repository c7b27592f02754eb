package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/remediations"
)

// Reaction is what row 3 measured, each a p99 over Rounds.
type Reaction struct {
	Rounds int
	Poll   time.Duration // the deliverer's poll interval
	// Confirm: start of the evaluation that confirms a violation → the
	// remediation's first step (an http step) reaches its target server.
	// EvalOnly: the same evaluation when it changes nothing (the baseline:
	// the evaluation alone).
	Confirm, EvalOnly time.Duration
	// Page: the run's last step, a verify that fails, starts → the fake
	// PagerDuty server receives the page. Post: one POST to the
	// same server (the baseline).
	Page, Post time.Duration
}

const reactRules = `asserts:
  - name: react
    every: 10s
    for: 10s
    query: {v: react_metric}
    expect: v < 50
    remediate: fix
    annotations: {summary: "{{ .Labels.instance }} is at {{ .Values.v }}"}
`

// reactRemediations: an http step to the bench's target server (it
// answers 200), then a verify that fails (the series stays at 80), so the
// run fails and pages. %s is the target's address.
const reactRemediations = `remediations:
  - name: fix
    steps:
      - name: restart
        http: {method: POST, url: "http://%s/restart/{{ .Labels.instance }}"}
        timeout: 10s
        on_failure: page
      - name: verify
        verify: react
        on_failure: page
`

// reactConfig: PagerDuty with a rate limit far above the bench's rate, and
// group_wait 1ms, the smallest the config allows (0 means the default 5s);
// group_by instance, so every round's page is its own group. The blast
// radius breaker is off: each round's new instance would otherwise count
// as a mass failure with the ones before it.
const reactConfig = `files: [asserts.yaml, remediations.yaml]
data_dir: data
notifiers:
  - name: pager
    pagerduty: {routing_key_env: BENCH_PD_KEY, events_url: %q, rate_per_minute: 600000}
escalation_policies:
  - name: ops
    levels: [{after: 0s, notify: [pager]}]
    group_by: [instance]
    group_wait: 1ms
defaults: {escalate: ops}
safety:
  blast_radius: {disabled: true}
`

// oneSeries is a source that answers one series, whose instance label the
// bench changes to make a new instance.
type oneSeries struct {
	mu    sync.Mutex
	inst  string
	value float64
}

func (s *oneSeries) set(inst string, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inst, s.value = inst, v
}

func (s *oneSeries) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"instance": s.inst}, Value: s.value}}}, nil
}

// verifyStarts lets every step of the real runner run for real; it only
// timestamps the moment the verify step, the run's last, starts.
type verifyStarts chan time.Time

func (v verifyStarts) Step(_ string, st *remediations.CompiledStep) (bool, string, bool) {
	if st.Kind == "verify" {
		select {
		case v <- time.Now():
		default: // a round that timed out left its stamp unread
		}
	}
	return false, "", false
}

// MeasureReaction runs rounds of: an instance turns violated, its for
// passes, the confirming evaluation starts the remediation on the real
// runner, whose http step reaches a local server and whose verify fails;
// the engine writes the page to the outbox and the real notifiers
// deliverer (Run, polling every poll; 0: its default, as assertd runs it)
// sends it to a fake PagerDuty Events API v2 server. Everything is built by
// app.New, as assertd run builds it; the bench drives the engine's
// evaluations itself and runs the deliverer, not the listener.
func MeasureReaction(ctx context.Context, t testing.TB, rounds int, poll time.Duration) (Reaction, error) {
	dir, err := os.MkdirTemp("", "assertd-bench-react-")
	if err != nil {
		return Reaction{}, err
	}
	defer os.RemoveAll(dir)

	// The remediation's target: it timestamps each step that reaches it.
	stepped := make(chan time.Time, 16)
	target, stopTarget, err := Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		w.WriteHeader(http.StatusOK)
		if strings.HasPrefix(r.URL.Path, "/restart/") {
			stepped <- at
		}
	}))
	if err != nil {
		return Reaction{}, err
	}
	defer stopTarget()
	const pdKey = "bench-routing-key"
	pd := testsaas.NewPagerDuty(t, pdKey)

	for name, text := range map[string]string{
		"assertd.yaml":      fmt.Sprintf(reactConfig, pd.URL),
		"asserts.yaml":      reactRules,
		"remediations.yaml": fmt.Sprintf(reactRemediations, target),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return Reaction{}, err
		}
	}
	src := &oneSeries{}
	verify := make(verifyStarts, 1)
	a, err := app.New(ctx, app.Options{
		ConfigPath: filepath.Join(dir, "assertd.yaml"),
		Logger:     slog.New(slog.DiscardHandler),
		Getenv: func(k string) string {
			if k == "BENCH_PD_KEY" {
				return pdKey
			}
			return ""
		},
		Effects:      verify,
		DeliveryPoll: poll,
		Sources:      map[string]asserts.Querier{config.EmbeddedName: src},
	})
	if err != nil {
		return Reaction{}, err
	}
	eng := a.Engine()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Deliverer().Run(runCtx) })
	defer func() { stop(); wg.Wait(); _ = a.Stop(context.WithoutCancel(ctx)) }()

	client := &http.Client{Timeout: 5 * time.Second}
	baseline := `{"routing_key":"` + pdKey + `","event_action":"resolve","dedup_key":"bench-baseline"}`
	var confirm, evalOnly, page, post []time.Duration
	timeout := func(what string, i int) error { return fmt.Errorf("reaction round %d: %s timed out", i, what) }
	// The evaluations' time: in the past, 20s later each round (a new
	// instance each round, so no gate holds a run back). The runner and
	// the deliverer run on the real clock.
	base := time.Now().Add(-time.Duration(rounds+3) * 20 * time.Second)
	seen := 0
	for i := range rounds {
		src.set(fmt.Sprintf("host-%04d", i), 80)
		tv := base.Add(time.Duration(i) * 20 * time.Second)
		t0 := time.Now()
		if err := eng.EvaluateNow(ctx, "react", tv); err != nil { // a new instance, pending: nothing to act on
			return Reaction{}, err
		}
		evalOnly = append(evalOnly, time.Since(t0))
		t1 := time.Now()
		if err := eng.EvaluateNow(ctx, "react", tv.Add(10*time.Second)); err != nil { // confirms: violated → remediate
			return Reaction{}, err
		}
		select {
		case at := <-stepped:
			confirm = append(confirm, at.Sub(t1))
		case <-time.After(5 * time.Second):
			return Reaction{}, timeout("first step", i)
		}
		var ended time.Time
		select {
		case ended = <-verify:
		case <-time.After(15 * time.Second):
			return Reaction{}, timeout("verify step", i)
		}
		// Wait for this round's page (the only trigger; resolves of earlier
		// instances may come too). The fake stamps when it received it.
		var got time.Time
		deadline := time.Now().Add(10 * time.Second)
		for got.IsZero() {
			evs := pd.Events()
			for _, e := range evs[seen:] {
				if e.Action == "trigger" && got.IsZero() {
					got = e.At
				}
			}
			seen = len(evs)
			if got.IsZero() {
				if time.Now().After(deadline) {
					return Reaction{}, timeout("page", i)
				}
				time.Sleep(time.Millisecond)
			}
		}
		page = append(page, got.Sub(ended))
		// The baseline: one POST of an event straight to the fake server.
		t3 := time.Now()
		resp, err := client.Post(pd.URL, "application/json", strings.NewReader(baseline))
		if err != nil {
			return Reaction{}, err
		}
		resp.Body.Close()
		post = append(post, time.Since(t3))
	}
	p99 := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[min(len(d)-1, len(d)*99/100)]
	}
	return Reaction{Rounds: rounds, Poll: poll, Confirm: p99(confirm), EvalOnly: p99(evalOnly), Page: p99(page), Post: p99(post)}, nil
}
