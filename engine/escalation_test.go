package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// escalationConfig pages slack first, pager 5m later, and both again every
// 30m. The assert is evaluated hourly, so every Tick in between happens
// only because the engine asked for it (its wake).
const escalationConfig = `files: [rules.yaml]
notifiers:
  - {name: slack, console: {}}
  - {name: pager, console: {}}
escalation_policies:
  - name: ops
    repeat: 30m
    levels:
      - {after: 0s, notify: [slack]}
      - {after: 5m, notify: [pager]}
defaults: {escalate: ops}
`

const escalationRules = `asserts: [{name: latency, every: 1h, query: {ms: latency_ms}, expect: ms < 50}]`

func loadEscalationSet(t *testing.T) *config.Set {
	t.Helper()
	return loadConfig(t, escalationConfig, escalationRules)
}

func loadConfig(t *testing.T, cfg, rules string) *config.Set {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

// event happens to a timeline at its time; it returns the engine that
// carries on (nil: the same).
type event func(e *Engine, src *source, st store.Store, now time.Time) *Engine

// timeline runs an engine from t0 to until: the instance is violated (and
// paged) at t0; the engine ticks at each wake it returns, and at the times
// of the events, which run before the tick at their time.
func timeline(t *testing.T, st store.Store, until time.Duration, events map[time.Duration]event) {
	t.Helper()
	ctx := context.Background()
	set := loadEscalationSet(t)
	src := &source{}
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}})
	if err != nil {
		t.Fatal(err)
	}
	src.set(map[string]float64{"a": 80}, nil)
	if err := e.EvaluateNow(ctx, "latency", t0); err != nil {
		t.Fatal(err)
	}
	var at []time.Duration
	for d := range events {
		at = append(at, d)
	}
	slices.Sort(at)
	now := t0
	for ticks := 0; now.Sub(t0) <= until; ticks++ {
		if ticks > 100 {
			t.Fatalf("more than 100 ticks by %s: the wake does not move on", now.Sub(t0))
		}
		for len(at) > 0 && !t0.Add(at[0]).After(now) {
			if next := events[at[0]](e, src, st, now); next != nil {
				e = next
			}
			at = at[1:]
		}
		wake := e.Tick(ctx, now)
		if !wake.After(now) {
			t.Fatalf("Tick at %s wakes at %s", now.Sub(t0), wake.Sub(t0))
		}
		now = wake
		if len(at) > 0 && t0.Add(at[0]).Before(now) {
			now = t0.Add(at[0])
		}
	}
}

// decided lists the decisions that do something, oldest first, as
// "at action: reason".
func decided(t *testing.T, st store.Store) []string {
	t.Helper()
	ds, err := st.Decisions(context.Background(), store.DecisionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ds, func(a, b assertd.Decision) int { return int(a.ID - b.ID) })
	var out []string
	for _, d := range ds {
		if d.Action != assertd.ActNone || strings.HasPrefix(d.Reason, "silenced") {
			out = append(out, fmt.Sprintf("%s %s: %s", d.At.Sub(t0), d.Action, d.Reason))
		}
	}
	return out
}

// outbox lists the messages, oldest first, as "at kind channel level/round".
func outbox(t *testing.T, st store.Store) []string {
	t.Helper()
	ms := messages(t, st)
	slices.SortFunc(ms, func(a, b assertd.Message) int { return int(a.ID - b.ID) })
	var out []string
	for _, m := range ms {
		var n assertd.Notice
		if err := json.Unmarshal([]byte(m.Payload), &n); err != nil {
			t.Fatal(err)
		}
		if m.DedupKey != "latency/"+n.Fingerprint || n.Policy != "ops" {
			t.Errorf("message %s: dedup key %q, policy %q: not the incident's", m.Key, m.DedupKey, n.Policy)
		}
		out = append(out, fmt.Sprintf("%s %s %s l%d/r%d", m.Created.Sub(t0), m.Kind, m.Channel, n.Level, n.Round))
	}
	return out
}

// The events of a timeline.

func ack(e *Engine, _ *source, _ store.Store, now time.Time) *Engine {
	fp := assertd.Labels{"instance": "a"}.Fingerprint()
	if err := e.Acknowledge(context.Background(), "latency", fp, "alice", "on it", now); err != nil {
		panic(err)
	}
	return nil
}

func recovers(e *Engine, src *source, _ store.Store, now time.Time) *Engine {
	src.set(map[string]float64{"a": 10}, nil)
	if err := e.EvaluateNow(context.Background(), "latency", now); err != nil {
		panic(err)
	}
	return nil
}

// silence silences the instance from t0 to 40m; the engine sees it from
// the next evaluation on.
func silence(e *Engine, _ *source, st store.Store, now time.Time) *Engine {
	ctx := context.Background()
	if err := st.PutSilence(ctx, assertd.Silence{ID: "s1", Matchers: []assertd.Matcher{{Name: "instance", Op: assertd.MatchEqual, Value: "a"}},
		Start: t0, End: t0.Add(40 * time.Minute), Author: "alice", Comment: "maintenance", Created: now}); err != nil {
		panic(err)
	}
	if err := e.EvaluateNow(ctx, "latency", now); err != nil {
		panic(err)
	}
	return nil
}

func evaluate(e *Engine, _ *source, _ store.Store, now time.Time) *Engine {
	if err := e.EvaluateNow(context.Background(), "latency", now); err != nil {
		panic(err)
	}
	return nil
}

const (
	paged   = "0s escalate: no remediation is set for this assert: paging"
	level2  = "5m0s level: not acknowledged after 5m0s: level 2 of ops pages pager"
	repeat1 = "30m0s repeat: not acknowledged after 30m0s: repeat 1 of ops pages level 1 again (slack)"
	repeat2 = "35m0s repeat: not acknowledged after 35m0s: repeat 1 of ops pages level 2 again (pager)"
	acked   = "ack: acknowledged by alice: on it; no further level or repeat is paged, the resolve still goes out"
)

// The escalation timeline is the engine's: each level, repeat,
// acknowledgement and resolve is a decision with its reason, and its
// messages are in the outbox, at the time the policy says.
func TestEscalationTimeline(t *testing.T) {
	for _, tc := range []struct {
		name      string
		until     time.Duration
		events    map[time.Duration]event
		decisions []string
		outbox    []string
	}{
		{
			name: "level 1 at once, level 2 after its wait", until: 29 * time.Minute,
			decisions: []string{paged, level2},
			outbox:    []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0"},
		},
		{
			name: "not acknowledged: every level again each repeat", until: 66 * time.Minute,
			decisions: []string{paged, level2, repeat1, repeat2,
				"1h0m0s repeat: not acknowledged after 1h0m0s: repeat 2 of ops pages level 1 again (slack)",
				"1h5m0s repeat: not acknowledged after 1h5m0s: repeat 2 of ops pages level 2 again (pager)"},
			outbox: []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "30m0s trigger slack l0/r1", "35m0s trigger pager l1/r1",
				"1h0m0s trigger slack l0/r2", "1h5m0s trigger pager l1/r2"},
		},
		{
			name: "an acknowledgement stops levels and repeats", until: 2 * time.Hour,
			events:    map[time.Duration]event{2 * time.Minute: ack},
			decisions: []string{paged, "2m0s " + acked},
			outbox:    []string{"0s trigger slack l0/r0", "2m0s ack slack l0/r0"}, // the channels paged are told
		},
		{
			name: "acknowledged after level 2: no repeat", until: 2 * time.Hour,
			events:    map[time.Duration]event{6 * time.Minute: ack},
			decisions: []string{paged, level2, "6m0s " + acked},
			outbox:    []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "6m0s ack pager l0/r0", "6m0s ack slack l0/r0"},
		},
		{
			name: "the resolve goes to every channel paged, and nothing follows", until: 2 * time.Hour,
			events: map[time.Duration]event{7 * time.Minute: recovers},
			decisions: []string{paged, level2,
				"7m0s resolve: recovered: resolving the page on slack, pager"},
			outbox: []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "7m0s resolve slack l0/r0", "7m0s resolve pager l0/r0"},
		},
		{
			name: "a silence mutes the steps due while it holds, recorded", until: 61 * time.Minute,
			events: map[time.Duration]event{2 * time.Minute: silence, 45 * time.Minute: evaluate},
			decisions: []string{paged,
				"5m0s none: silenced by s1: not acknowledged after 5m0s: level 2 of ops pages pager — not paged",
				"30m0s none: silenced by s1: not acknowledged after 30m0s: repeat 1 of ops pages level 1 again (slack) — not paged",
				"35m0s none: silenced by s1: not acknowledged after 35m0s: repeat 1 of ops pages level 2 again (pager) — not paged",
				"1h0m0s repeat: not acknowledged after 1h0m0s: repeat 2 of ops pages level 1 again (slack)"},
			outbox: []string{"0s trigger slack l0/r0", "1h0m0s trigger slack l0/r2"},
		},
		{
			name: "resolved before level 2: only level 1 is resolved", until: time.Hour,
			events:    map[time.Duration]event{3 * time.Minute: recovers},
			decisions: []string{paged, "3m0s resolve: recovered: resolving the page on slack"},
			outbox:    []string{"0s trigger slack l0/r0", "3m0s resolve slack l0/r0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			timeline(t, st, tc.until, tc.events)
			if got := decided(t, st); !slices.Equal(got, tc.decisions) {
				t.Errorf("decisions\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.decisions, "\n     "))
			}
			if got := outbox(t, st); !slices.Equal(got, tc.outbox) {
				t.Errorf("outbox\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.outbox, "\n     "))
			}
		})
	}
}

// A restart neither replays nor loses a step: the new engine reads the
// incident from the store (its pages, its acknowledgement), writes each
// step once, and still resolves every channel that was paged.
func TestEscalationAcrossRestarts(t *testing.T) {
	restart := func(e *Engine, _ *source, st store.Store, _ time.Time) *Engine {
		n, err := New(context.Background(), Options{Set: e.current(), Store: st, Sources: e.opts.Sources})
		if err != nil {
			panic(err)
		}
		return n
	}
	for _, tc := range []struct {
		name      string
		until     time.Duration
		events    map[time.Duration]event
		decisions []string
		outbox    []string
	}{
		{
			name: "restarted after level 2: the repeat comes once", until: 31 * time.Minute,
			events: map[time.Duration]event{
				6 * time.Minute: restart, 30 * time.Minute: restart},
			decisions: []string{paged, level2, repeat1},
			outbox:    []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "30m0s trigger slack l0/r1"},
		},
		{
			name: "restarted after the acknowledgement: still acknowledged", until: 2 * time.Hour,
			events: map[time.Duration]event{
				6 * time.Minute: ack, 7 * time.Minute: restart},
			decisions: []string{paged, level2, "6m0s " + acked},
			outbox:    []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "6m0s ack pager l0/r0", "6m0s ack slack l0/r0"},
		},
		{
			name: "restarted, then resolved: every channel paged before the restart", until: time.Hour,
			events: map[time.Duration]event{
				6 * time.Minute: restart, 8 * time.Minute: recovers},
			decisions: []string{paged, level2, "8m0s resolve: recovered: resolving the page on slack, pager"},
			outbox:    []string{"0s trigger slack l0/r0", "5m0s trigger pager l1/r0", "8m0s resolve slack l0/r0", "8m0s resolve pager l0/r0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			timeline(t, st, tc.until, tc.events)
			if got := decided(t, st); !slices.Equal(got, tc.decisions) {
				t.Errorf("decisions\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.decisions, "\n     "))
			}
			if got := outbox(t, st); !slices.Equal(got, tc.outbox) {
				t.Errorf("outbox\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.outbox, "\n     "))
			}
		})
	}
}

func TestDueSteps(t *testing.T) {
	p := &config.EscalationPolicy{Name: "ops", Repeat: assertd.Duration(30 * time.Minute), Levels: []config.Level{
		{Notify: []string{"slack"}}, {After: assertd.Duration(5 * time.Minute), Notify: []string{"pager"}}}}
	once := &config.EscalationPolicy{Name: "once", Levels: []config.Level{{Notify: []string{"slack"}}}}
	for _, tc := range []struct {
		p      *config.EscalationPolicy
		at     time.Duration
		round  int
		levels []int
		next   time.Duration // -1: never
	}{
		{p, 0, 0, nil, 5 * time.Minute},
		{p, 5*time.Minute - time.Second, 0, nil, 5 * time.Minute},
		{p, 5 * time.Minute, 0, []int{1}, 30 * time.Minute},
		{p, 30 * time.Minute, 1, []int{0}, 35 * time.Minute},
		{p, 36 * time.Minute, 1, []int{0, 1}, 60 * time.Minute},
		{p, 95 * time.Minute, 3, []int{0, 1}, 120 * time.Minute}, // a missed round is not replayed
		{once, time.Hour, 0, nil, -1},
	} {
		round, levels, next := dueSteps(tc.p, t0, t0.Add(tc.at))
		want := t0.Add(tc.next)
		if tc.next < 0 {
			want = time.Time{}
		}
		if round != tc.round || !slices.Equal(levels, tc.levels) || !next.Equal(want) {
			t.Errorf("%s at %s: round %d levels %v next %v; want %d %v %v", tc.p.Name, tc.at, round, levels, next, tc.round, tc.levels, want)
		}
	}
}

// heldRuns are remediation runs that end when the test says so.
type heldRuns struct {
	noOperator
	mu   sync.Mutex
	done map[string]func(RunResult) // by instance label
}

func (h *heldRuns) Decide(context.Context, string, assertd.Instance, time.Time) assertd.Decision {
	return assertd.Decision{Action: assertd.ActRemediate, Reason: "allowed"}
}

func (h *heldRuns) Start(_ context.Context, _ assertd.Decision, in assertd.Instance, done func(RunResult)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done[in.Labels["instance"]] == nil {
		h.done[in.Labels["instance"]] = done
	}
}

func (h *heldRuns) fail(instance string) {
	h.mu.Lock()
	done := h.done[instance]
	h.mu.Unlock()
	done(RunResult{RunID: "run-" + instance, Outcome: "verify failed", At: t0})
}

// A run that does not fix it opens an incident between two ticks: Run
// plans its later levels at once, not at the next evaluation (an hour away).
func TestRunPlansAnIncidentOpenedBetweenTicks(t *testing.T) {
	set := loadConfig(t, `files: [rules.yaml]
notifiers:
  - {name: slack, console: {}}
  - {name: pager, console: {}}
escalation_policies:
  - {name: ops, levels: [{after: 0s, notify: [slack]}, {after: 1s, notify: [pager]}]}
defaults: {escalate: ops}
`, `asserts: [{name: latency, every: 1h, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}]
remediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]`)
	st, src, runs := openStore(t), &source{}, &heldRuns{done: map[string]func(RunResult){}}
	committed := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src},
		Now: func() time.Time { return t0.Add(time.Minute) }, NewRemediator: fixed(runs), Enqueued: func() { committed <- "" }})
	if err != nil {
		t.Fatal(err)
	}
	src.set(map[string]float64{"a": 80, "b": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	if got := states(e); got != "a=remediating b=remediating" && got != "b=remediating a=remediating" {
		t.Fatalf("states %s", got)
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-committed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no commit of %s within 10s", what)
		}
	}
	runs.fail("b") // before Run: its level 2 is due at Run's first tick
	wait("b's page")
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	wait("b's level 2, at Run's first tick")
	// Run has taken stock and sleeps until the next evaluation, an hour on.
	runs.fail("a")
	wait("a's page")
	wait("a's level 2")
	var got []string
	for _, m := range messages(t, st) {
		got = append(got, m.DedupKey[len("latency/"):]+" "+m.Channel)
	}
	a, b := assertd.Labels{"instance": "a"}.Fingerprint(), assertd.Labels{"instance": "b"}.Fingerprint()
	want := []string{a + " pager", a + " slack", b + " pager", b + " slack"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
}
