package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// labelSource answers with series that carry arbitrary labels.
type labelSource struct {
	mu     sync.Mutex
	series []assertd.Sample
}

func (s *labelSource) set(ss ...assertd.Sample) { s.mu.Lock(); s.series = ss; s.mu.Unlock() }

func (s *labelSource) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return assertd.Vector{Samples: append([]assertd.Sample(nil), s.series...)}, nil
}

func TestLifecycle(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &labelSource{}
	e, err := New(context.Background(), Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	up := assertd.Labels{"instance": "a", "lifecycle": "upgrading"}
	src.set(assertd.Sample{Labels: up, Value: 80})
	e.EvaluateNow(ctx, "latency", t0)
	if got := states(e); got != "a=violated" || len(messages(t, st)) != 0 {
		t.Fatalf("an upgrading target is recorded, not paged: %s, %d messages", got, len(messages(t, st)))
	}
	e.EvaluateNow(ctx, "latency", t0.Add(29*time.Minute))
	if len(messages(t, st)) != 0 {
		t.Fatal("paged within the expected disruption")
	}
	e.EvaluateNow(ctx, "latency", t0.Add(30*time.Minute))
	if got := states(e); got != "a=escalated" || len(messages(t, st)) != 2 {
		t.Fatalf("still violated after 30m of upgrading must page: %s", got)
	}

	// An engine API override: another target goes into restart, then back.
	b := assertd.Labels{"instance": "b"}
	if err := e.SetLifecycle(ctx, assertd.Labels{"instance": "b"}, "restart", "ops", "rolling restart", t0); err != nil {
		t.Fatal(err)
	}
	src.set(assertd.Sample{Labels: up, Value: 80}, assertd.Sample{Labels: b, Value: 80})
	e.EvaluateNow(ctx, "latency", t0.Add(31*time.Minute))
	if n := len(messages(t, st)); n != 2 {
		t.Fatalf("a restarting target was paged: %d messages", n)
	}
	e.SetLifecycle(ctx, assertd.Labels{"instance": "b"}, "", "ops", "done", t0)
	e.EvaluateNow(ctx, "latency", t0.Add(32*time.Minute))
	if n := len(messages(t, st)); n != 4 {
		t.Fatalf("after the restart, the held-back violation must page: %d messages", n)
	}
	ds, _ := st.Decisions(ctx, store.DecisionFilter{Fingerprint: b.Fingerprint()})
	found := false
	for _, d := range ds {
		found = found || d.Reason == "lifecycle: restart → (none)"
	}
	if !found {
		t.Fatalf("lifecycle change not recorded: %+v", ds)
	}
	if _, err := st.AuditLog(ctx, store.AuditFilter{Action: "lifecycle.set"}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetLifecycle(ctx, b, "exploded", "ops", "", t0); err == nil {
		t.Fatal("unknown lifecycle state accepted")
	}

	// A retired target is no longer evaluated.
	src.set(assertd.Sample{Labels: assertd.Labels{"instance": "a", "lifecycle": "retired"}, Value: 80}, assertd.Sample{Labels: b, Value: 10})
	e.EvaluateNow(ctx, "latency", t0.Add(33*time.Minute))
	if got := states(e); got != "b=ok" {
		t.Fatalf("after retiring a: %s", got)
	}
	// a was paged: retiring it resolves the page on every channel paged.
	fp := assertd.Labels{"instance": "a"}.Fingerprint()
	var resolves []string
	for _, m := range messages(t, st) {
		if m.Kind == string(assertd.NoticeResolve) && m.DedupKey == "latency/"+fp {
			resolves = append(resolves, m.Channel)
		}
	}
	slices.Sort(resolves)
	if want := []string{"pager", "slack"}; !slices.Equal(resolves, want) {
		t.Fatalf("resolves %v, want %v", resolves, want)
	}
	ds, _ = st.Decisions(ctx, store.DecisionFilter{Fingerprint: fp, Action: assertd.ActResolve})
	if len(ds) != 1 || ds[0].Reason != "the target is retired: no longer evaluated: resolving the page on slack, pager" {
		t.Fatalf("resolve decisions %+v", ds)
	}
}
