//go:build bench

package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/store/sqlite"
)

// TestProfileMillion writes profiles of row 9's rig with
// ASSERTD_BENCH_INSTANCES instances (default 100000): the restart
// (sqlite.Open and app.New) to cpu-restart.out, the heap after two cycles
// to heap-million.out and three steady cycles to cpu-million.out:
// go test -tags bench ./bench -run TestProfileMillion -v, then
// go tool pprof -top bench.test cpu-restart.out.
func TestProfileMillion(t *testing.T) {
	n := 100_000
	if s := os.Getenv("ASSERTD_BENCH_INSTANCES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "assertd.db")
	if err := seedInstances(ctx, dir, path, n); err != nil {
		t.Fatal(err)
	}
	if _, err := millionWorkload(n).writeSet(dir, true); err != nil {
		t.Fatal(err)
	}
	heap0 := heapNow()
	cpu := func(name string, f func()) {
		out, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			t.Fatal(err)
		}
		s, c := time.Now(), cpuTime()
		f()
		pprof.StopCPUProfile()
		t.Logf("%s: %s, CPU %s", name, time.Since(s).Round(time.Millisecond), (cpuTime() - c).Round(time.Millisecond))
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var a *app.App
	cpu("cpu-restart.out", func() {
		if a, err = newApp(ctx, dir, st); err != nil {
			t.Fatal(err)
		}
	})
	defer func() { _ = a.Stop(context.Background()) }()
	eng := a.Engine()
	at := EvalTime.Add(time.Hour)
	eng.Tick(ctx, at)
	eng.Tick(ctx, at.Add(15*time.Second))
	t.Logf("heap %.0f B per instance (the assert set included)", float64(heapNow()-heap0)/float64(n))
	hf, err := os.Create("heap-million.out")
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(hf); err != nil {
		t.Fatal(err)
	}
	hf.Close()
	cpu("cpu-million.out", func() {
		for i := range 3 {
			eng.Tick(ctx, at.Add(time.Duration(30+15*i)*time.Second))
		}
	})
	runtime.KeepAlive(eng)
}
