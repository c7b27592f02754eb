package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// Million is what row 9 measured: memory, restart and steady cycles with
// n instances (n/10 threshold asserts over tenSeries, as row 4, every
// instance ok: row 4's rate and quantile asserts would escalate 30 % of
// them through the engine first).
type Million struct {
	Memory
	Restart
	Seed time.Duration // writing the store's instances
	// ReadyCPU is the process CPU time from sqlite.Open to ready: on a
	// loaded machine it tells the restart's cost where Ready tells the
	// share of the cores it got.
	ReadyCPU time.Duration
}

// MeasureMillion measures n instances as a restart finds them: the store
// holds the n instances the engine stored for the asserts (the rows it
// stored for the first assert, copied by SQLite to every other: storing a
// million new instances through the engine takes about ten minutes here),
// then sqlite.Open and app.New, which loads the config and the instances
// (ready), two cycles, and three steady cycles timed by process CPU. Heap
// and RSS per instance are what app.New and the cycles added, less the
// heap of the assert set (loaded alone beforehand), as row 4 leaves the
// set out. The baseline of ready is store.Instances alone.
func MeasureMillion(ctx context.Context, dir string, n int) (Million, error) {
	var m Million
	path := filepath.Join(dir, "assertd.db")
	t0 := time.Now()
	if err := seedInstances(ctx, dir, path, n); err != nil {
		return m, err
	}
	m.Seed = time.Since(t0)
	w := millionWorkload(n)
	if _, err := w.writeSet(dir, true); err != nil {
		return m, err
	}

	// The assert set alone, to leave its heap out of the instances'.
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		return m, errs
	}
	heapSet0 := heapNow()
	runtime.KeepAlive(set) // the last use: the next GC frees it
	heapSet := max(int64(heapSet0)-int64(heapNow()), 0)

	heap0, rss0 := heapNow(), rssNow()
	t2, c2 := time.Now(), cpuTime()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return m, err
	}
	defer st.Close()
	a, err := newApp(ctx, dir, st)
	if err != nil {
		return m, err
	}
	defer func() { _ = a.Stop(context.Background()) }()
	eng := a.Engine()
	m.Ready, m.ReadyCPU = time.Since(t2), cpuTime()-c2
	at := EvalTime.Add(time.Hour)
	eng.Tick(ctx, at)
	eng.Tick(ctx, at.Add(15*time.Second))
	heap1, rss1 := heapNow(), rssNow()
	var cycles []time.Duration
	for i := range 3 {
		c := cpuTime()
		eng.Tick(ctx, at.Add(time.Duration(30+15*i)*time.Second))
		cycles = append(cycles, cpuTime()-c)
	}
	m.Memory = Memory{Instances: n, HeapPer: (float64(int64(heap1)-int64(heap0)) - float64(heapSet)) / float64(n), RSSPer: float64(int64(rss1)-int64(rss0)) / float64(n), CycleCPU: median(cycles)}
	if got := len(eng.Instances()); got != n {
		return m, fmt.Errorf("million: %d instances, want %d", got, n)
	}
	runtime.KeepAlive(eng)
	m.Restart.Instances = n
	t3 := time.Now()
	if _, err := st.Instances(ctx, ""); err != nil {
		return m, err
	}
	m.Read = time.Since(t3)
	m.PromPer, err = promAlertHeap(ctx, 100_000) // per alert, as at 100k: it does not grow with n
	return m, err
}

// newApp is assertd as app.New builds it from dir's assertd.yaml over st,
// its metrics source the stub of row 4; its engine is driven by Tick.
func newApp(ctx context.Context, dir string, st store.Store) (*app.App, error) {
	return app.New(ctx, app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), DataDir: filepath.Join(dir, "data"), Store: st,
		Sources: map[string]asserts.Querier{config.EmbeddedName: tenSeries{}}, NoScrape: true, Stdout: io.Discard,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
}

// millionWorkload is n/10 threshold asserts over tenSeries.
func millionWorkload(n int) Workload {
	w := memWorkload(n)
	w.Thresholds = true
	return w
}

// seedInstances stores the n instances of millionWorkload(n) in the store at
// path: the engine evaluates the first assert over tenSeries and stores its
// ten instances; SQLite copies them to every other assert.
func seedInstances(ctx context.Context, dir, path string, n int) error {
	seedDir := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		return err
	}
	if _, err := millionWorkload(10).writeSet(seedDir, true); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, seedDir, st)
	if err != nil {
		st.Close()
		return err
	}
	a.Engine().Tick(ctx, EvalTime)
	a.Engine().Tick(ctx, EvalTime.Add(15*time.Second))
	_ = a.Stop(ctx)
	if err := st.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO instances (assert, fingerprint, body)
		SELECT printf('a%%05d', n.i), fingerprint, body FROM instances, n WHERE assert = 'a00000'`, n/10-1)); err != nil {
		return fmt.Errorf("seeding instances: %w", err)
	}
	var got int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM instances").Scan(&got); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("seeding instances: %d in the store, want %d", got, n)
	}
	return nil
}
