//go:build bench

package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/assertd/assertd/store/sqlite"
)

// TestProfileCycle writes a CPU profile of steady assertd cycles only (the
// rig's build left out), for pprof: ASSERTD_BENCH_PROFILE=viol10 (default; or
// viol50, viol50-annotated) go test -tags bench ./bench -run TestProfileCycle -v, then
// go tool pprof -top bench.test cpu-cycle.out.
func TestProfileCycle(t *testing.T) {
	name := os.Getenv("ASSERTD_BENCH_PROFILE")
	if name == "" {
		name = "viol10"
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
