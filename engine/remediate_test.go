package engine

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
)

// fakeRemediator decides to run and reports the outcome it is given.
type fakeRemediator struct {
	noOperator
	action   assertd.Action
	verified bool
	started  []assertd.Decision
}

func (f *fakeRemediator) Decide(_ context.Context, rem string, _ assertd.Instance, _ time.Time) assertd.Decision {
	return assertd.Decision{Action: f.action, Reason: "allowed: " + rem}
}

func (f *fakeRemediator) Start(_ context.Context, d assertd.Decision, _ assertd.Instance, done func(RunResult)) {
	f.started = append(f.started, d)
	done(RunResult{RunID: d.RunID, Verified: f.verified, Outcome: "verify " + map[bool]string{true: "passed", false: "failed"}[f.verified],
		StepLog: "restart: exit 0\nverify: latency still 80ms", At: t0.Add(time.Minute)})
}

func TestRemediationOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rem      *fakeRemediator
		state    string
		kinds    string
		contains string
	}{
		{"verified: ok, one informational message, no page", &fakeRemediator{action: assertd.ActRemediate, verified: true}, "a=ok", "info", "fixed by remediation restart"},
		{"verify failed: escalated, one page with the step log", &fakeRemediator{action: assertd.ActRemediate}, "a=escalated", "trigger trigger", "verify: latency still 80ms"},
		{"refused: paged with the reason", &fakeRemediator{action: assertd.ActHold}, "a=escalated", "trigger trigger", "allowed: restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}]\nremediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]")
			st, src := openStore(t), &source{}
			e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, NewRemediator: fixed(tc.rem)})
			if err != nil {
				t.Fatal(err)
			}
			src.set(map[string]float64{"a": 80}, nil)
			e.EvaluateNow(context.Background(), "latency", t0)
			if got := states(e); got != tc.state {
				t.Fatalf("state %s", got)
			}
			var kinds []string
			ms := messages(t, st)
			for i := len(ms) - 1; i >= 0; i-- {
				kinds = append(kinds, ms[i].Kind)
			}
			if strings.Join(kinds, " ") != tc.kinds {
				t.Fatalf("messages %v", kinds)
			}
			var n assertd.Notice
			json.Unmarshal([]byte(ms[0].Payload), &n)
			if !strings.Contains(n.Reason+n.StepLog, tc.contains) {
				t.Fatalf("notice %+v", n)
			}
			if tc.rem.action == assertd.ActRemediate {
				if len(tc.rem.started) != 1 || tc.rem.started[0].RunID == "" {
					t.Fatalf("started %+v", tc.rem.started)
				}
				if ch := ms[0].Channel; tc.rem.verified && ch != "slack" {
					t.Fatalf("information goes to the info channel only, got %s", ch)
				}
			}
		})
	}
}

func TestVerifyAndCounts(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 80, "b": 10, "c": 90}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	e.EvaluateNow(ctx, "latency", t0.Add(time.Minute))
	if v, n := e.Counts("latency", "", ""); v != 2 || n != 3 {
		t.Fatalf("counts %d/%d", v, n)
	}
	if ok, why, err := e.Verify(ctx, "latency", assertd.Labels{"instance": "b", "other": "x"}, t0); !ok || err != nil {
		t.Fatalf("verify b: %v %s %v", ok, why, err)
	}
	if ok, why, _ := e.Verify(ctx, "latency", assertd.Labels{"instance": "a"}, t0); ok || !strings.Contains(why, "violated") {
		t.Fatalf("verify a: %v %s", ok, why)
	}
	if ok, why, _ := e.Verify(ctx, "latency", assertd.Labels{"instance": "zz"}, t0); ok || !strings.Contains(why, "no instance") {
		t.Fatalf("verify zz: %v %s", ok, why)
	}
}

// recordingRemediator decides to run and records Start without finishing,
// like a process that dies before it could create the run.
type recordingRemediator struct {
	noOperator
	mu      sync.Mutex
	started []string
}

func (r *recordingRemediator) Decide(context.Context, string, assertd.Instance, time.Time) assertd.Decision {
	return assertd.Decision{Action: assertd.ActRemediate, Reason: "allowed"}
}

func (r *recordingRemediator) Start(_ context.Context, d assertd.Decision, _ assertd.Instance, _ func(RunResult)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, d.RunID)
}

func (r *recordingRemediator) runs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.started...)
}

// A run decided while the store was away starts once the decision is
// stored; a run decided but never started before a crash starts after the
// restart, under the same run ID.
func TestOwedRunsStart(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}]\nremediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]")
	ctx := context.Background()
	st := &flakyStore{Store: openStore(t)}
	src := &source{}
	rem := &recordingRemediator{}
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, NewRemediator: fixed(rem)})
	if err != nil {
		t.Fatal(err)
	}
	st.down = true
	src.set(map[string]float64{"a": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	if got := heldStates(e); got != "a=ok held:remediating" || len(rem.runs()) != 0 {
		t.Fatalf("during the outage: %s, started %v (nothing may start without its record)", got, rem.runs())
	}
	if in := e.Instances()[0]; strings.HasPrefix(in.Reason, "allowed") {
		t.Fatalf("during the outage the API shows the held decision as the instance's reason: %q", in.Reason)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	e.Tick(ctx, t0.Add(time.Second))
	first := rem.runs()
	if len(first) != 1 {
		t.Fatalf("after the store returned: started %v", first)
	}

	// The process dies before the runner could create the run: a new
	// engine over the same store starts it, with the same ID.
	rem2 := &recordingRemediator{}
	e2, err := New(ctx, Options{Set: set, Store: st.Store, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, NewRemediator: fixed(rem2)})
	if err != nil {
		t.Fatal(err)
	}
	e2.resumeOwed(ctx)
	if got := rem2.runs(); len(got) != 1 || got[0] != first[0] {
		t.Fatalf("after the restart: started %v, want %v", got, first)
	}
}
