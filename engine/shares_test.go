package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/cluster"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
)

// Two replicas on one PostgreSQL store: the owner of an assert's share
// evaluates it; once the owner's lease expires the other takes the share,
// continues the instance's for clock from the store (escalated at the
// original deadline, not one for later), and the old owner, resumed,
// commits nothing.
func TestShareMovesWithItsClocks(t *testing.T) {
	t.Parallel()
	pg := testpg.Start(t)
	ctx := context.Background()
	dsn, err := pg.CreateDB(ctx, "shares")
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	set, _ := loadSet(t, latencyRules)
	src := &source{}
	src.set(map[string]float64{"a": 80}, nil)
	clk := fakeclock.New(t0)
	replica := func(name string) (*cluster.Member, *Engine) {
		m := cluster.New(cluster.Options{Store: st.(store.Cluster), Name: name, Lease: 10 * time.Second, Renew: 2 * time.Second,
			Shares: func() []string { return []string{"latency"} }, Clock: clk})
		e, err := New(ctx, Options{Set: set, Store: st, Shares: m, Now: clk.Now,
			Sources: map[string]asserts.Querier{config.EmbeddedName: src}, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return m, e
	}
	step := func(m *cluster.Member) {
		t.Helper()
		if err := m.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ma, ea := replica("a")
	mb, eb := replica("b")

	step(ma)
	ea.syncShares(ctx, clk.Now())
	ea.EvaluateNow(ctx, "latency", t0)
	clk.Set(t0.Add(5 * time.Second))
	step(ma)
	ea.EvaluateNow(ctx, "latency", t0.Add(5*time.Second))
	if got := states(ea); got != "a=pending" {
		t.Fatalf("on the owner: %s", got)
	}
	// b has not claimed the share: its Tick evaluates nothing.
	eb.Tick(ctx, t0.Add(10*time.Second))
	if got := states(eb); got != "" {
		t.Fatalf("b evaluated a share it does not own: %s", got)
	}

	// a stops renewing; past its lease b takes the share over.
	clk.Set(t0.Add(16 * time.Second))
	step(mb)
	if _, ok := mb.Fence("latency"); !ok {
		t.Fatal("b did not take the share of a dead replica")
	}
	eb.syncShares(ctx, clk.Now())
	if got := states(eb); got != "a=pending" {
		t.Fatalf("b after the takeover: %s, want the stored pending instance", got)
	}
	clk.Set(t0.Add(20 * time.Second))
	step(mb)
	eb.EvaluateNow(ctx, "latency", t0.Add(20*time.Second))
	if got := states(eb); got != "a=pending" {
		t.Fatalf("b at +20s: %s", got)
	}
	clk.Set(t0.Add(30 * time.Second))
	step(mb)
	eb.EvaluateNow(ctx, "latency", t0.Add(30*time.Second))
	if got := states(eb); got != "a=escalated" {
		t.Fatalf("b at +30s (the deadline of the for clock a started): %s", got)
	}

	// a resumes without knowing: its evaluation commits nothing.
	before, _ := st.Transitions(ctx, store.TransitionFilter{Assert: "latency"})
	msgs := len(messages(t, st))
	ea.EvaluateNow(ctx, "latency", t0.Add(31*time.Second))
	after, _ := st.Transitions(ctx, store.TransitionFilter{Assert: "latency"})
	if len(after) != len(before) || len(messages(t, st)) != msgs {
		t.Fatalf("the old owner committed: %d transitions before, %d after; messages %d -> %d", len(before), len(after), msgs, len(messages(t, st)))
	}
	escalated := 0
	for _, tr := range after {
		if tr.To == assertd.Escalated {
			escalated++
		}
	}
	if escalated != 1 {
		t.Fatalf("%d transitions to escalated, want 1", escalated)
	}
	// On its next round a finds its lease expired and registers anew.
	step(ma)
	ea.Tick(ctx, t0.Add(32*time.Second))
	if _, ok := ma.Fence("latency"); ok {
		t.Fatal("a claims the share back while b holds it")
	}
	if got := states(ea); got != "" {
		t.Fatalf("a still tracks the instances of a share it lost: %s", got)
	}
}
