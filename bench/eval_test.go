package bench

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// rigs caches one rig per workload for the life of the test binary: a rig
// takes seconds to build and gigabytes to hold, so only one is kept.
var rigs struct {
	sync.Mutex
	key string
	rig *EvalRig
}

func rigFor(tb testing.TB, w Workload) *EvalRig {
	tb.Helper()
	rigs.Lock()
	defer rigs.Unlock()
	key := workloadKey(w)
	if rigs.rig != nil && rigs.key == key {
		return rigs.rig
	}
	if rigs.rig != nil {
		rigs.rig.Close()
		rigs.rig = nil
		runtime.GC()
	}
	r, err := NewEvalRig(context.Background(), w)
	if err != nil {
		tb.Fatal(err)
	}
	rigs.key, rigs.rig = key, r
	return r
}

func scenarios() map[string]Workload {
	w10 := DefaultWorkload()
	w50 := w10
	w50.Violating = 0.5
	w50a := w50
	w50a.Annotate = true
	sev := w10
	sev.Severities = 4
	return map[string]Workload{"viol10": w10, "viol50": w50, "viol50-annotated": w50a, "realistic": sev}
}

func BenchmarkEvalCycle(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"viol10", "viol50", "viol50-annotated", "realistic"} {
		w := scenarios()[name]
		b.Run(name+"/assertd", func(b *testing.B) {
			r := rigFor(b, w)
			for b.Loop() {
				r.AssertdCycle(ctx)
			}
		})
		b.Run(name+"/rules-group", func(b *testing.B) {
			r := rigFor(b, w)
			for b.Loop() {
				r.GroupCycle(ctx)
			}
		})
		b.Run(name+"/alerting-rule", func(b *testing.B) {
			r := rigFor(b, w)
			for b.Loop() {
				if err := r.AlertingRuleCycle(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/promql-seq", func(b *testing.B) {
			r := rigFor(b, w)
			for b.Loop() {
				if err := r.PromQLCycle(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/promql-par", func(b *testing.B) {
			r := rigFor(b, w)
			for b.Loop() {
				if err := r.PromQLCycle(ctx, runtime.GOMAXPROCS(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
