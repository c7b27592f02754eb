package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

// counting is a source that counts the queries it answers, by text.
type counting struct {
	source
	mu    sync.Mutex
	asked map[string]int
}

func (c *counting) Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error) {
	c.mu.Lock()
	c.asked[q]++
	c.mu.Unlock()
	return c.source.Query(ctx, q, ts)
}

func (c *counting) counts() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, q := range slices.Sorted(maps.Keys(c.asked)) {
		parts = append(parts, fmt.Sprintf("%s×%d", q, c.asked[q]))
	}
	clear(c.asked)
	return strings.Join(parts, " ")
}

// Three severities of one metric with a shared guard send the same queries:
// they share a slot, and the tick at that slot sends each query once; every
// assert still judges the result with its own threshold.
func TestIdenticalQueriesOncePerTick(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - {name: info, every: 10s, query: {ms: latency_ms, up: up}, join: [instance], expect: ms < 50}
  - {name: warning, every: 10s, query: {ms: latency_ms, up: up}, join: [instance], expect: ms < 70}
  - {name: critical, every: 10s, query: {up: up, ms: latency_ms}, join: [instance], expect: ms < 90}
  - {name: other, every: 10s, query: {ms: other_ms}, expect: ms < 90}
`)
	src := &counting{asked: map[string]int{}}
	src.set(map[string]float64{"a": 60, "b": 80, "c": 95}, nil)
	e := newEngine(t, set, openStore(t), src)
	ctx := context.Background()
	interval := func() string {
		t.Helper()
		var ticks []string
		wake := e.Tick(ctx, t0)
		for end := t0.Add(10 * time.Second); !wake.After(end); {
			next := e.Tick(ctx, wake)
			ticks = append(ticks, src.counts())
			wake = next
		}
		slices.Sort(ticks)
		return strings.Join(ticks, "; ")
	}
	if got := src.counts() + interval(); got != "latency_ms×1 up×1; other_ms×1" {
		t.Fatalf("queries sent by the ticks of one interval: %s", got)
	}
	bad := map[string][]string{}
	for _, in := range e.Instances() {
		if in.State != assertd.OK {
			bad[in.Assert] = append(bad[in.Assert], in.Labels["instance"])
		}
	}
	for a, want := range map[string]string{"info": "a b c", "warning": "b c", "critical": "c", "other": "c"} {
		slices.Sort(bad[a])
		if got := strings.Join(bad[a], " "); got != want {
			t.Errorf("%s: not ok %q, want %q", a, got, want)
		}
	}
	// EvaluateNow is one assert: its queries go to the source.
	if err := e.EvaluateNow(ctx, "info", t0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := src.counts(); got != "latency_ms×1 up×1" {
		t.Fatalf("queries sent by EvaluateNow: %s", got)
	}
}
