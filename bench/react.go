package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
)

// Reaction is what row 3 measured, each a p99 over Rounds.
type Reaction struct {
	Rounds int
	// Confirm: start of the evaluation that confirms a violation → the
	// engine calls Remediator.Start. EvalOnly: the same evaluation when it
	// changes nothing (the baseline: the evaluation alone).
	Confirm, EvalOnly time.Duration
	// Page: the run reports failure → the fake PagerDuty server receives
	// the page. Post: one POST to the same server (the baseline).
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

// reactRemediations declares the remediation the stub stands in for.
const reactRemediations = `remediations:
  - name: fix
    steps:
      - name: restart
        run: ["true"]
        timeout: 10s
        on_failure: page
      - name: verify
        verify: react
        on_failure: page
`

const reactConfig = `files: [asserts.yaml, remediations.yaml]
data_dir: data
notifiers:
  - {name: pager, console: {}}
escalation_policies:
  - name: ops
    levels: [{after: 0s, notify: [pager]}]
defaults: {escalate: ops}
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

// stubRemediator stands in for the remediation runner: it allows every
// run, timestamps Start and reports the run failed when told to.
type stubRemediator struct {
	started chan time.Time
	mu      sync.Mutex
	done    func(engine.RunResult)
}

func (r *stubRemediator) Decide(_ context.Context, _ string, _ assertd.Instance, _ time.Time) assertd.Decision {
	return assertd.Decision{Action: assertd.ActRemediate, Reason: "bench: always allowed"}
}

func (r *stubRemediator) Start(_ context.Context, d assertd.Decision, _ assertd.Instance, done func(engine.RunResult)) {
	at := time.Now()
	r.mu.Lock()
	r.done = done
	r.mu.Unlock()
	r.started <- at
}

func (r *stubRemediator) fail(runID string) {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	done(engine.RunResult{RunID: runID, Outcome: "bench: the step failed", StepLog: "exit 1", At: time.Now()})
}

// MeasureReaction runs rounds of: an instance turns violated, its for
// passes, the confirming evaluation starts the (stub) remediation, the run
// fails and the page goes through the outbox to a fake PagerDuty server.
// The deliverer is a stand-in that polls the outbox every poll.
func MeasureReaction(ctx context.Context, rounds int, poll time.Duration) (Reaction, error) {
	dir, err := os.MkdirTemp("", "assertd-bench-react-")
	if err != nil {
		return Reaction{}, err
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(reactConfig), 0o644)
	os.WriteFile(filepath.Join(dir, "asserts.yaml"), []byte(reactRules), 0o644)
	os.WriteFile(filepath.Join(dir, "remediations.yaml"), []byte(reactRemediations), 0o644)
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		return Reaction{}, fmt.Errorf("react config: %w", errs)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "assertd.db"))
	if err != nil {
		return Reaction{}, err
	}
	defer st.Close()

	// The fake PagerDuty Events API v2: it timestamps each event it receives.
	received := make(chan time.Time, 16)
	pd, stopPD, err := Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"bench"}`))
		if r.URL.Path == "/v2/enqueue" {
			received <- at
		}
	}))
	if err != nil {
		return Reaction{}, err
	}
	defer stopPD()
	pdURL := "http://" + pd + "/v2/enqueue"
	client := &http.Client{Timeout: 5 * time.Second}

	// The deliverer stand-in: claim due messages, POST them, ack.
	dctx, stopDeliver := context.WithCancel(ctx)
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() {
		defer dwg.Done()
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-t.C:
			}
			msgs, err := st.Claim(dctx, "bench", time.Now(), time.Minute, 16)
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if m.Kind != string(assertd.NoticeTrigger) {
					_ = st.Ack(dctx, m.ID, "bench", time.Now(), "")
					continue
				}
				resp, err := client.Post(pdURL, "application/json", bytes.NewReader([]byte(m.Payload)))
				if err == nil {
					resp.Body.Close()
					_ = st.Ack(dctx, m.ID, "bench", time.Now(), m.DedupKey)
				}
			}
		}
	}()
	defer func() { stopDeliver(); dwg.Wait() }()

	src := &oneSeries{}
	rem := &stubRemediator{started: make(chan time.Time, 1)}
	eng, err := engine.New(ctx, engine.Options{Set: set, Store: st, Remediator: rem,
		Sources: map[string]asserts.Querier{config.EmbeddedName: src}})
	if err != nil {
		return Reaction{}, err
	}
	var confirm, evalOnly, page, post []time.Duration
	timeout := func() error { return fmt.Errorf("reaction round timed out") }
	// The engine's clock: in the past, so that the messages it writes are
	// due for the deliverer at once, and 20s later each round.
	base := time.Now().Add(-time.Duration(rounds+3) * 20 * time.Second)
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
		case at := <-rem.started:
			confirm = append(confirm, at.Sub(t1))
		case <-time.After(5 * time.Second):
			return Reaction{}, timeout()
		}
		runs, _ := st.Decisions(ctx, store.DecisionFilter{Assert: "react", Action: assertd.ActRemediate, Limit: 1})
		runID := ""
		if len(runs) > 0 {
			runID = runs[0].RunID
		}
		t2 := time.Now()
		rem.fail(runID)
		select {
		case at := <-received:
			page = append(page, at.Sub(t2))
		case <-time.After(5 * time.Second):
			return Reaction{}, timeout()
		}
		// The baseline: one POST straight to the fake server.
		t3 := time.Now()
		resp, err := client.Post("http://"+pd+"/bare", "application/json", nil)
		if err == nil {
			resp.Body.Close()
		}
		post = append(post, time.Since(t3))
	}
	p99 := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[min(len(d)-1, len(d)*99/100)]
	}
	return Reaction{Rounds: rounds, Confirm: p99(confirm), EvalOnly: p99(evalOnly), Page: p99(page), Post: p99(post)}, nil
}
