package engine

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

// TestSummary: the summary counts the instances as Instances shows them
// (a silenced one as silenced), and its version changes when an instance
// changes state or silence and only then.
func TestSummary(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &source{}
	ctx := context.Background()
	e := newEngine(t, set, st, src)
	agrees := func(what string) Summary {
		t.Helper()
		s := e.Summary()
		want := map[assertd.State]int{}
		for _, in := range e.Instances() {
			want[in.State]++
		}
		if !maps.Equal(s.Counts, want) {
			t.Fatalf("%s: summary counts %v, Instances %v", what, s.Counts, want)
		}
		return s
	}
	src.set(map[string]float64{"a": 10, "b": 10, "c": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	s0 := agrees("first evaluation")
	if s0.Counts[assertd.OK] != 2 || s0.Counts[assertd.Escalated] != 1 {
		t.Fatalf("counts %v", s0.Counts)
	}
	e.EvaluateNow(ctx, "latency", t0.Add(10*time.Second))
	if s := agrees("nothing changed"); s.Version != s0.Version {
		t.Fatalf("version moved without a change: %x → %x", s0.Version, s.Version)
	}
	src.set(map[string]float64{"a": 80, "b": 10, "c": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0.Add(20*time.Second))
	s1 := agrees("a violated")
	if s1.Version == s0.Version {
		t.Fatal("version unchanged after a state change")
	}
	err := st.PutSilence(ctx, assertd.Silence{ID: "s1", Matchers: []assertd.Matcher{{Name: "instance", Op: assertd.MatchEqual, Value: "b"}},
		Start: t0, End: t0.Add(time.Hour), Author: "ops", Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	e.SilencesChanged(ctx, t0.Add(21*time.Second))
	s2 := agrees("b silenced")
	if s2.Version == s1.Version || s2.Counts[assertd.Silenced] != 1 {
		t.Fatalf("after a silence: %+v (before %+v)", s2, s1)
	}
}
