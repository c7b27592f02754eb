package engine

import (
	"context"
	"testing"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// A restart from the instances read before the configuration
// (ReadInstances, Options.Restored) adopts what a restart reading the
// store itself does: the configured asserts' instances, the escalated ones
// open, none of an assert gone from the configuration.
func TestRestartFromRestoredInstances(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st := openStore(t)
	ctx := context.Background()
	for _, in := range []assertd.Instance{
		{Assert: "latency", Fingerprint: "a", Labels: assertd.Labels{"instance": "a"}, State: assertd.Escalated, Since: t0, ViolatedSince: t0},
		{Assert: "latency", Fingerprint: "b", Labels: assertd.Labels{"instance": "b"}, State: assertd.OK, Since: t0},
		{Assert: "gone", Fingerprint: "c", Labels: assertd.Labels{"instance": "c"}, State: assertd.Escalated, Since: t0, ViolatedSince: t0},
	} {
		if _, err := st.Commit(ctx, store.Change{Key: "seed/" + in.Assert + "/" + in.Fingerprint, At: t0, Instance: &in}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ReadInstances(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]asserts.Querier{config.EmbeddedName: &source{}}
	pre, err := New(ctx, Options{Set: set, Store: st, Sources: srcs, Restored: r})
	if err != nil {
		t.Fatal(err)
	}
	read := newEngine(t, set, st, &source{})
	for name, e := range map[string]*Engine{"restored": pre, "read": read} {
		if got := states(e); got != "a=escalated b=ok" {
			t.Errorf("%s: instances %q, want a=escalated b=ok", name, got)
		}
		if len(e.open) != 1 || len(e.instances["gone"]) != 0 {
			t.Errorf("%s: %d open incidents (want 1), %d instances of the assert gone (want 0)", name, len(e.open), len(e.instances["gone"]))
		}
		for t2 := range e.open {
			if t2.Fingerprint != "a" || t2.inc == nil || !t2.stored {
				t.Errorf("%s: open %+v", name, t2.Instance)
			}
		}
	}
}
