//go:build bench

package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/assertd/assertd/store/sqlite"
)

// TestProfileCycle writes a CPU profile of steady assertd cycles only (the
// rig's build left out), for pprof: ASSERTD_BENCH_PROFILE=viol10 (default; or
// viol50, viol50-annotated) go test -tags bench ./bench -run TestProfileCycle -v, then
// go tool pprof -top bench.test cpu-cycle.out. The allocations of the same
// cycles are the difference of two heap profiles: go tool pprof -sample_index
// alloc_space -diff_base mem-cycle-before.out -top bench.test mem-cycle.out.
func TestProfileCycle(t *testing.T) {
	_, w := profileScenario(t)
	ctx := context.Background()
	r := rigFor(t, w)
	writeHeap(t, "mem-cycle-before.out")
	defer writeHeap(t, "mem-cycle.out")
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

// writeHeap writes the heap profile (with every allocation so far) to name.
func writeHeap(t *testing.T, name string) {
	runtime.GC() // the profile counts what the last GC saw allocated
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// TestProfilePings writes a CPU profile of row 2's SQLite load sent by wrk
// (1 s warm-up left out) to cpu-pings.out: go test -tags bench ./bench -run TestProfilePings -v.
func TestProfilePings(t *testing.T) {
	ctx := context.Background()
	hbs, paths := Heartbeats(1000)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "pings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := PingHandler(ctx, st, hbs)
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := Serve(h)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	load := Wrk{Threads: 2, Conns: 128, Duration: time.Second, Paths: paths, Dir: t.TempDir()}
	if _, err := load.Run(ctx, addr); err != nil { // warm-up
		t.Fatal(err)
	}
	f, err := os.Create("cpu-pings.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	load.Duration = 5 * time.Second
	res, err := load.Run(ctx, addr)
	pprof.StopCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sqlite: %s", res)
}

// TestCycleRatio is row 1's goal line alone, for quick looks while
// profiling: assertd's cycle against the raw PromQL of the same queries at
// the same concurrency, interleaved for seven rounds, medians of wall and
// CPU time (ASSERTD_BENCH_PROFILE picks the scenario, as above):
// go test -tags bench ./bench -run TestCycleRatio -v.
func TestCycleRatio(t *testing.T) {
	name, w := profileScenario(t)
	ctx := context.Background()
	r := rigFor(t, w)
	workers := runtime.GOMAXPROCS(0)
	var ad, par, adCPU, parCPU []time.Duration
	for range 7 {
		s, c := time.Now(), cpuTime()
		r.AssertdCycle(ctx)
		ad, adCPU = append(ad, time.Since(s)), append(adCPU, cpuTime()-c)
		s, c = time.Now(), cpuTime()
		if err := r.PromQLCycle(ctx, workers); err != nil {
			t.Fatal(err)
		}
		par, parCPU = append(par, time.Since(s)), append(parCPU, cpuTime()-c)
	}
	t.Logf("%s: assertd %s (CPU %s), raw PromQL %d workers %s (CPU %s): %.2f× wall, %.2f× CPU", name,
		median(ad).Round(time.Millisecond), median(adCPU).Round(time.Millisecond), workers,
		median(par).Round(time.Millisecond), median(parCPU).Round(time.Millisecond),
		median(ad).Seconds()/median(par).Seconds(), median(adCPU).Seconds()/median(parCPU).Seconds())
}

// profileScenario is the scenario ASSERTD_BENCH_PROFILE names (viol10 when
// unset).
func profileScenario(t *testing.T) (string, Workload) {
	name := os.Getenv("ASSERTD_BENCH_PROFILE")
	if name == "" {
		name = "viol10"
	}
	w, ok := scenarios()[name]
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	return name, w
}
