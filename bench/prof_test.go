package bench

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

// TestProfileCycle writes a CPU profile of steady assertd cycles only (the
// rig's build left out), for pprof: ASSERTD_BENCH_PROFILE=viol10 (or viol50,
// viol50-annotated) go test ./bench -run TestProfileCycle -v, then
// go tool pprof -top bench.test cpu-cycle.out.
func TestProfileCycle(t *testing.T) {
	name := os.Getenv("ASSERTD_BENCH_PROFILE")
	if name == "" {
		t.Skip("set ASSERTD_BENCH_PROFILE to a scenario to profile its cycles")
	}
	w, ok := scenarios()[name]
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	ctx := context.Background()
	r := rigFor(t, w)
	f, err := os.Create("cpu-cycle.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	for range 4 {
		s, c := time.Now(), cpuTime()
		r.AssertdCycle(ctx)
		t.Logf("cycle %s, CPU %s", time.Since(s).Round(time.Millisecond), (cpuTime() - c).Round(time.Millisecond))
	}
}
