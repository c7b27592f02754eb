package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/cluster"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openPG(t *testing.T, pg *testpg.Server, name string) store.Store {
	t.Helper()
	ctx := context.Background()
	dsn, err := pg.CreateDB(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func shareNames(n int) func() []string {
	return func() []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("assert-%02d", i))
		}
		return out
	}
}

func owners(t *testing.T, ms ...*cluster.Member) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range ms {
		for _, s := range m.Status().Owned {
			if prev, dup := out[s]; dup {
				t.Fatalf("share %s owned by both %s and %s", s, prev, m.ID())
			}
			out[s] = m.ID()
		}
	}
	return out
}

// Three replicas split 30 shares, each owned once; a replica that stops
// renewing keeps its shares until its lease expires, then the others take
// them over with a higher epoch, and the dead replica's fence is refused.
func TestMembershipTakeover(t *testing.T) {
	t.Parallel()
	pg := testpg.Start(t)
	st := openPG(t, pg, "takeover")
	cs := st.(store.Cluster)
	ctx := context.Background()
	clk := fakeclock.New(t0)
	newMember := func(name string) *cluster.Member {
		return cluster.New(cluster.Options{Store: cs, Name: name, Lease: 10 * time.Second, Renew: 2 * time.Second,
			Shares: shareNames(30), Clock: clk})
	}
	a, b, c := newMember("a"), newMember("b"), newMember("c")
	round := func(ms ...*cluster.Member) {
		t.Helper()
		for _, m := range ms {
			if err := m.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// a alone owns everything (one replica: today's behaviour).
	round(a)
	if got := len(a.Status().Owned); got != 30 {
		t.Fatalf("a alone owns %d shares, want 30", got)
	}
	// b and c join: a gives up what hashes to them, they claim it.
	round(b, c)
	round(a)
	round(b, c)
	own := owners(t, a, b, c)
	if len(own) != 30 {
		t.Fatalf("after joining, %d shares owned, want 30: %v", len(own), own)
	}
	per := map[string]int{}
	for _, r := range own {
		per[r]++
	}
	for _, m := range []*cluster.Member{a, b, c} {
		if per[m.ID()] == 0 {
			t.Errorf("replica %s owns no share: %v", m.ID(), per)
		}
	}

	// c stops renewing (killed). Until its lease expires nobody takes its shares.
	cShares := c.Status().Owned
	fenceC, ok := c.Fence(cShares[0])
	if !ok {
		t.Fatal("c does not hold a fence on its own share")
	}
	clk.Add(8 * time.Second)
	round(a, b)
	if got := owners(t, a, b); len(got) != 30-len(cShares) {
		t.Fatalf("before c's lease expired, a and b own %d shares, want %d", len(got), 30-len(cShares))
	}
	if err := fenced(ctx, st, fenceC); err != nil {
		t.Fatalf("c's write while its lease holds: %v", err)
	}
	clk.Add(3 * time.Second) // past c's lease
	round(a, b)
	round(a, b)
	if got := owners(t, a, b); len(got) != 30 {
		t.Fatalf("after c's lease expired, a and b own %d shares, want 30", len(got))
	}
	if err := fenced(ctx, st, fenceC); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("c's write after the takeover: %v, want ErrFenced", err)
	}
	var newer store.Fence
	for _, m := range []*cluster.Member{a, b} {
		if f, ok := m.Fence(cShares[0]); ok {
			newer = f
		}
	}
	if newer.Epoch <= fenceC.Epoch {
		t.Fatalf("the new owner's epoch %d is not above the old one %d", newer.Epoch, fenceC.Epoch)
	}
	if err := fenced(ctx, st, newer); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
	// c resumes: its renewal finds its lease expired; it drops every share
	// and registers again under a new ID.
	if _, ok := c.Fence(cShares[0]); ok {
		t.Fatal("c still claims a fence past its lease")
	}
	if err := c.Ready(); err == nil {
		t.Fatal("c is ready past its lease")
	}
	old := c.ID()
	round(c)
	if c.ID() == old {
		t.Fatal("c kept its ID after its lease expired")
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("c after registering again: %v", err)
	}
	round(a, b)
	round(c)
	own = owners(t, a, b, c)
	if len(own) != 30 {
		t.Fatalf("after c came back, %d shares owned, want 30", len(own))
	}
	if tk := a.Status().LastTakeover; tk.Share == "" && b.Status().LastTakeover.Share == "" {
		t.Fatal("no takeover recorded")
	}
}

// fenced writes something under a fence.
func fenced(ctx context.Context, st store.Store, f store.Fence) error {
	in := assertd.Instance{Assert: f.Share, Fingerprint: "x", State: assertd.OK, LastEval: t0}
	return st.PutInstance(store.WithFence(ctx, f), in)
}

// A share's owner is the highest score, stable under the order of the
// replicas, and removing a replica moves only its shares.
func TestOwner(t *testing.T) {
	t.Parallel()
	all := []string{"a", "b", "c"}
	moved := 0
	for i := range 300 {
		s := fmt.Sprintf("s%d", i)
		o := cluster.Owner(s, all)
		if o != cluster.Owner(s, []string{"c", "a", "b"}) {
			t.Fatalf("owner of %s depends on the order", s)
		}
		o2 := cluster.Owner(s, []string{"a", "b"})
		if o != "c" && o2 != o {
			t.Fatalf("removing c moved %s from %s to %s", s, o, o2)
		}
		if o == "c" {
			moved++
		}
	}
	if moved < 60 || moved > 140 {
		t.Fatalf("c owns %d of 300 shares, want about 100", moved)
	}
	if cluster.Owner("s", nil) != "" {
		t.Fatal("an owner without replicas")
	}
}
