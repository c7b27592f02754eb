package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

const testConfig = `files: [rules.yaml]
notifiers:
  - {name: slack, console: {}}
  - {name: pager, console: {}}
escalation_policies:
  - name: ops
    info: [slack]
    levels: [{after: 0s, notify: [slack, pager]}]
defaults: {escalate: ops}
`

func loadSet(t *testing.T, rules string) (*config.Set, string) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(testConfig), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set, dir
}

// source is a fake source whose answers the test sets.
type source struct {
	mu   sync.Mutex
	vals map[string]float64 // instance label → value
	err  error
}

func (s *source) set(vals map[string]float64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals, s.err = vals, err
}

func (s *source) Query(_ context.Context, _ string, _ time.Time) (assertd.Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return assertd.Vector{}, s.err
	}
	var v assertd.Vector
	for inst, x := range s.vals {
		v.Samples = append(v.Samples, assertd.Sample{Labels: assertd.Labels{"instance": inst}, Value: x})
	}
	return v, nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "assertd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEngine(t *testing.T, set *config.Set, st store.Store, src asserts.Querier) *Engine {
	t.Helper()
	e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const latencyRules = `asserts:
  - name: latency
    every: 10s
    for: 30s
    query: {ms: latency_ms}
    expect: ms < 50
    annotations: {summary: "{{ .Labels.instance }} at {{ .Values.ms }}ms"}
`

// heldStates is states with the held changes: "a=ok held:remediating".
func heldStates(e *Engine) string {
	var parts []string
	for _, in := range e.Instances() {
		p := in.Labels["instance"] + "=" + string(in.State)
		if in.Held {
			p += " held:" + string(in.HeldState)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func states(e *Engine) string {
	var parts []string
	for _, in := range e.Instances() {
		parts = append(parts, in.Labels["instance"]+"="+string(in.State))
	}
	return strings.Join(parts, " ")
}

func transitions(t *testing.T, st store.Store) string {
	t.Helper()
	trs, err := st.Transitions(context.Background(), store.TransitionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i := len(trs) - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%s>%s@%s", trs[i].From, trs[i].To, trs[i].At.Sub(t0)))
	}
	return strings.Join(parts, " ")
}

func messages(t *testing.T, st store.Store) []assertd.Message {
	t.Helper()
	ms, err := st.Messages(context.Background(), store.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestViolationIsPagedAndResolved(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 80, "b": 10}, nil)
	for _, dt := range []time.Duration{0, 10, 20, 30} {
		if err := e.EvaluateNow(ctx, "latency", t0.Add(dt*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := states(e); got != "a=escalated b=ok" {
		t.Fatalf("states %s", got)
	}
	if got := transitions(t, st); got != "ok>pending@0s pending>violated@30s violated>escalated@30s" {
		t.Fatalf("transitions %s", got)
	}
	ms := messages(t, st)
	if len(ms) != 2 {
		t.Fatalf("%d messages, want a page on each of the 2 channels", len(ms))
	}
	var n assertd.Notice
	if err := json.Unmarshal([]byte(ms[0].Payload), &n); err != nil {
		t.Fatal(err)
	}
	if n.Kind != assertd.NoticeTrigger || n.Annotations["summary"] != "a at 80ms" || !strings.Contains(n.Reason, "no remediation") || ms[0].DedupKey != "latency/"+n.Fingerprint {
		t.Fatalf("notice %+v", n)
	}
	// Staying violated pages no one again; recovering resolves on both channels.
	e.EvaluateNow(ctx, "latency", t0.Add(40*time.Second))
	src.set(map[string]float64{"a": 10, "b": 10}, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(50*time.Second))
	ms = messages(t, st)
	if len(ms) != 4 || ms[0].Kind != "resolve" || ms[1].Kind != "resolve" {
		t.Fatalf("messages after recovery: %+v", ms)
	}
	if got := states(e); got != "b=ok a=ok" {
		t.Fatalf("states %s", got)
	}
}

// A crash while pending: the for clock continues from the stored time.
func TestRestartKeepsTheForClock(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	src.set(map[string]float64{"a": 80}, nil)
	ctx := context.Background()
	e1 := newEngine(t, set, st, src)
	e1.EvaluateNow(ctx, "latency", t0)
	e1.EvaluateNow(ctx, "latency", t0.Add(10*time.Second))
	// e1 is gone without a goodbye; a new engine loads what was stored.
	e2 := newEngine(t, set, st, src)
	if got := states(e2); got != "a=pending" {
		t.Fatalf("after restart: %s", got)
	}
	e2.EvaluateNow(ctx, "latency", t0.Add(20*time.Second))
	if got := states(e2); got != "a=pending" {
		t.Fatalf("at +20s: %s", got)
	}
	e2.EvaluateNow(ctx, "latency", t0.Add(30*time.Second))
	if got := states(e2); got != "a=escalated" {
		t.Fatalf("at +30s (the original deadline): %s", got)
	}
}

func TestInterruptedRunEscalatesOnce(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	ctx := context.Background()
	ls := assertd.Labels{"instance": "a"}
	in := assertd.Instance{Assert: "latency", Fingerprint: ls.Fingerprint(), Labels: ls, State: assertd.Remediating, Since: t0}
	if err := st.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRun(ctx, assertd.Run{ID: "run-1", Remediation: "restart", Assert: "latency", Fingerprint: in.Fingerprint, Labels: ls, Status: assertd.RunRunning, Started: t0}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // two restarts
		e := newEngine(t, set, st, src)
		if got := states(e); got != "a=escalated" {
			t.Fatalf("after restart %d: %s\n%s", i, got, transitions(t, st))
		}
	}
	r, _ := st.Run(ctx, "run-1")
	if r.Status != assertd.RunInterrupted {
		t.Fatalf("run status %s", r.Status)
	}
	if ms := messages(t, st); len(ms) != 2 || ms[0].Kind != "trigger" {
		t.Fatalf("want exactly one page (2 channels), got %d messages", len(ms))
	}
}

func TestUncertainEscalatesAfterUncertainFor(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, every: 10s, uncertain_for: 1m, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 10}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	src.set(nil, fmt.Errorf("%w: connection refused", assertd.ErrSourceUnavailable))
	for dt := 10; dt <= 120; dt += 10 {
		e.EvaluateNow(ctx, "latency", t0.Add(time.Duration(dt)*time.Second))
	}
	if got := transitions(t, st); got != "ok>uncertain@10s uncertain>escalated@1m10s" {
		t.Fatalf("transitions %s", got)
	}
	if ms := messages(t, st); len(ms) != 2 || !strings.Contains(ms[0].Payload, "uncertain for 1m0s: source unavailable") {
		t.Fatalf("messages %+v", ms)
	}
}

func TestSilencedIsNotPaged(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &source{}
	ctx := context.Background()
	err := st.PutSilence(ctx, assertd.Silence{ID: "s1", Matchers: []assertd.Matcher{{Name: "instance", Op: assertd.MatchEqual, Value: "a"}},
		Start: t0.Add(-time.Hour), End: t0.Add(time.Hour), Author: "ops", Comment: "maintenance", Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	src.set(map[string]float64{"a": 80, "b": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	// Silenced is an overlay: the instance shows as silenced, the state
	// underneath is kept (and stored), and nothing acts on it.
	if got := states(e); got != "b=escalated a=silenced" {
		t.Fatalf("states %s", got)
	}
	for _, in := range e.Instances() {
		if in.Labels["instance"] == "a" && (in.Underlying != assertd.Violated || in.Silenced != "s1") {
			t.Fatalf("silenced instance %+v", in)
		}
	}
	if stored, err := st.Instance(ctx, "latency", assertd.Labels{"instance": "a"}.Fingerprint()); err != nil || stored.State != assertd.Violated {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if got := gauge(t, reg, "assertd_instances", "state", "silenced"); got != 1 {
		t.Fatalf(`assertd_instances{state="silenced"} = %v`, got)
	}
	if got := gauge(t, reg, "assertd_instances", "state", "violated"); got != 0 {
		t.Fatalf(`assertd_instances{state="violated"} = %v: a silenced instance is counted once, as silenced`, got)
	}
	ds, _ := st.Decisions(ctx, store.DecisionFilter{})
	found := false
	for _, d := range ds {
		found = found || strings.Contains(d.Reason, "silenced by s1: no action")
	}
	if !found || len(messages(t, st)) != 2 {
		t.Fatalf("decisions %+v", ds)
	}
	// Once the silence ends the state underneath shows again, and the
	// violation held back is acted on: paged.
	e.EvaluateNow(ctx, "latency", t0.Add(time.Hour))
	if got := states(e); got != "a=escalated b=escalated" && got != "b=escalated a=escalated" {
		t.Fatalf("after the silence: %s", got)
	}
	if n := len(messages(t, st)); n != 4 {
		t.Fatalf("after the silence: %d messages, want 4", n)
	}
}

// gauge reads one labelled sample of a gathered metric.
func gauge(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// flakyStore fails commits while down is set.
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (f *flakyStore) Commit(ctx context.Context, c store.Change) (store.CommitResult, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return store.CommitResult{}, fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	}
	return f.Store.Commit(ctx, c)
}

func TestStoreOutageHoldsActionsAndResumes(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st := &flakyStore{Store: openStore(t)}
	src := &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	st.down = true
	src.set(map[string]float64{"a": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	if e.Held() != 2 || len(messages(t, st.Store)) != 0 {
		t.Fatalf("held %d; nothing may be sent without its record", e.Held())
	}
	// The evaluation goes on in memory; the instance shows what is stored,
	// held, with the state it takes once stored.
	if got := heldStates(e); got != "a=ok held:escalated" {
		t.Fatalf("during the outage: %s", got)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	e.Tick(ctx, t0.Add(time.Minute))
	if e.Held() != 0 || len(messages(t, st.Store)) != 2 || transitions(t, st.Store) != "ok>violated@0s violated>escalated@0s" {
		t.Fatalf("after the store returned: held %d, transitions %s", e.Held(), transitions(t, st.Store))
	}
	if got := heldStates(e); got != "a=escalated" {
		t.Fatalf("after the store returned: %s", got)
	}
}

func TestReloadKeepsStateAndSurvivesBrokenConfig(t *testing.T) {
	set, dir := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	// A broken file: the reload fails and the old asserts keep running.
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("asserts: [{name: latency, expect: 'ms <'}]"), 0o644)
	set2, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if err := e.Reload(set2, errs, t0.Add(time.Second)); err == nil || e.LastReload().Err == nil {
		t.Fatal("a broken reload was accepted")
	}
	e.EvaluateNow(ctx, "latency", t0.Add(30*time.Second))
	if got := states(e); got != "a=escalated" {
		t.Fatalf("after a failed reload: %s", got)
	}
	// An unchanged assert keeps its state through a good reload.
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(latencyRules+"  - {name: other, query: {x: up}, expect: x == 1}\n"), 0o644)
	set3, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if err := e.Reload(set3, errs, t0.Add(40*time.Second)); err != nil || e.LastReload().Err != nil {
		t.Fatal(err)
	}
	if got := states(e); got != "a=escalated" {
		t.Fatalf("after a good reload: %s", got)
	}
}

func TestTickFollowsTheSchedule(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	src.set(map[string]float64{"a": 10}, nil)
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	wake := e.Tick(ctx, t0)
	if !wake.After(t0) || wake.Sub(t0) > 10*time.Second {
		t.Fatalf("first wake %v", wake)
	}
	for i := 0; i < 5; i++ {
		next := e.Tick(ctx, wake)
		if next.Sub(wake) != 10*time.Second {
			t.Fatalf("tick %d: %v after %v", i, next, wake)
		}
		wake = next
	}
	if got := states(e); got != "a=ok" {
		t.Fatalf("states %s", got)
	}
	if errors.Is(nil, store.ErrUnavailable) {
		t.Fatal()
	}
}

func TestVanishedInstanceIsForgotten(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 10, "b": 10}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	src.set(map[string]float64{"a": 10}, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(time.Minute))
	if got := states(e); got != "a=ok b=ok" {
		t.Fatalf("after one evaluation without b: %s", got)
	}
	e.EvaluateNow(ctx, "latency", t0.Add(2*time.Minute))
	if got := states(e); got != "a=ok" {
		t.Fatalf("after two: %s", got)
	}
	if ins, _ := st.Instances(ctx, "latency"); len(ins) != 1 {
		t.Fatalf("stored instances: %d", len(ins))
	}
}

// Reloads while evaluations run: no data race (go test -race).
func TestReloadDuringEvaluation(t *testing.T) {
	set, dir := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	src.set(map[string]float64{"a": 80, "b": 10}, nil)
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			e.EvaluateNow(ctx, "latency", t0.Add(time.Duration(i)*10*time.Second))
		}
	}()
	for range 10 {
		next, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
		if err := e.Reload(next, errs, t0); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// fixed builds a fake Remediator that does not need its host.
func fixed(r Remediator) NewRemediator { return func(remediations.Host) Remediator { return r } }

// noOperator completes a fake Remediator: it has no run started by hand,
// no approval to wake and no breaker.
type noOperator struct{}

func (noOperator) StartManual(context.Context, assertd.Decision, assertd.Instance, func(RunResult)) {}
func (noOperator) Interrupted(assertd.Run)                                                          {}
func (noOperator) ApprovalDecided(string)                                                           {}
func (noOperator) Breakers(context.Context, time.Time) ([]assertd.Breaker, error)                   { return nil, nil }
func (noOperator) CloseBreaker(_ context.Context, assert, _, _ string, _ time.Time) (assertd.Breaker, error) {
	return assertd.Breaker{}, fmt.Errorf("this fake runner has no breaker for %s: %w", assert, store.ErrNotFound)
}

// An evaluation made while assertd stops (its context cancelled) is still
// written ahead of what it causes: the page is in the outbox, not lost.
func TestCommitsOfAnEvaluationSurviveCancellation(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	src.set(map[string]float64{"a": 80}, nil)
	if err := e.EvaluateNow(context.Background(), "latency", t0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.EvaluateNow(ctx, "latency", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := transitions(t, st); got != "ok>pending@0s pending>violated@30s violated>escalated@30s" {
		t.Fatalf("transitions %s", got)
	}
	if n := len(messages(t, st)); n != 2 {
		t.Fatalf("%d messages, want the page on each of the 2 channels", n)
	}
	if h := e.Held(); h != 0 {
		t.Fatalf("%d changes held", h)
	}
}
