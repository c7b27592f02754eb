package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

// silencedBy is the silence each instance shows, sorted: "db1=s1 db2=".
func silencedBy(e *Engine) string {
	var parts []string
	for _, in := range e.Instances() {
		parts = append(parts, in.Labels["instance"]+"="+in.Silenced)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// TestSilenceRegexMatchers: a silence's regular expression is anchored at
// both ends, compiled once while the silence is in force, compiled again
// when the silence is replaced with other matchers, and forgotten when it
// ends.
func TestSilenceRegexMatchers(t *testing.T) {
	set, _ := loadSet(t, "asserts: [{name: latency, query: {ms: latency_ms}, expect: ms < 50}]")
	st, src := openStore(t), &source{}
	ctx := context.Background()
	put := func(id, re string) {
		t.Helper()
		err := st.PutSilence(ctx, assertd.Silence{ID: id, Matchers: []assertd.Matcher{{Name: "instance", Op: assertd.MatchRegexp, Value: re}},
			Start: t0.Add(-time.Hour), End: t0.Add(time.Hour), Author: "ops", Created: t0})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("s1", "db[0-9]|x")
	e := newEngine(t, set, st, src)
	src.set(map[string]float64{"db1": 80, "db10": 80, "xdb1": 80, "x": 80, "web1": 80}, nil)
	e.EvaluateNow(ctx, "latency", t0)
	if got, want := silencedBy(e), "db10= db1=s1 web1= x=s1 xdb1="; got != want {
		t.Fatalf("silenced %q, want %q", got, want)
	}
	compiled := e.matchers["s1"]
	e.EvaluateNow(ctx, "latency", t0.Add(10*time.Second))
	e.SilencesChanged(ctx, t0.Add(10*time.Second))
	if e.matchers["s1"] != compiled || len(e.matchers) != 1 {
		t.Fatalf("the silence's matchers were compiled again: %v", e.matchers)
	}

	put("s1", "web.*") // replaced: same ID, other matchers
	e.SilencesChanged(ctx, t0.Add(20*time.Second))
	if got, want := silencedBy(e), "db10= db1= web1=s1 x= xdb1="; got != want {
		t.Fatalf("after the silence was replaced: silenced %q, want %q", got, want)
	}
	if e.matchers["s1"] == compiled {
		t.Fatal("a replaced silence kept its old matchers")
	}

	if err := st.ExpireSilence(ctx, "s1", "ops", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	e.SilencesChanged(ctx, t0.Add(31*time.Second))
	if got, want := silencedBy(e), "db10= db1= web1= x= xdb1="; got != want || len(e.matchers) != 0 {
		t.Fatalf("after the silence ended: silenced %q, want %q; compiled kept: %v", got, want, e.matchers)
	}
}
