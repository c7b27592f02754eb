package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// countingRemediator decides to run and counts the runs started.
type countingRemediator struct {
	noOperator
	mu      sync.Mutex
	decided int
	started []string
}

func (r *countingRemediator) Decide(context.Context, string, assertd.Instance, time.Time) assertd.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decided++
	return assertd.Decision{Action: assertd.ActRemediate, Reason: "allowed"}
}

func (r *countingRemediator) Start(_ context.Context, d assertd.Decision, _ assertd.Instance, _ func(RunResult)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, d.RunID)
}

func (r *countingRemediator) decisions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decided
}

func (r *countingRemediator) starts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started)
}

// The SQLite file is moved away while the engine runs on it: within one
// check interval the store is unhealthy; violations are evaluated but held —
// no remediation is decided, no run starts and no message is enqueued —
// until the same file is back; then the held changes are stored, the page is
// enqueued, and the remediation is decided and starts.
func TestSQLiteFileGoneHoldsEveryAction(t *testing.T) {
	set, _ := loadSet(t, `asserts:
  - {name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}
  - {name: errors, query: {n: errors}, expect: n < 50}
remediations: [{name: restart, steps: [{name: r, run: ['true']}, {name: v, verify: latency}]}]`)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.File)
	clk := fakeclock.New(t0)
	st, err := sqlite.Open(ctx, path, sqlite.WithClock(clk), sqlite.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src, rem := &source{}, &countingRemediator{}
	var enqueued atomic.Int64
	e, err := New(ctx, Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: src}, NewRemediator: fixed(rem),
		Enqueued: func() { enqueued.Add(1) }, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	evaluate := func(at time.Time) {
		t.Helper()
		for _, a := range []string{"errors", "latency"} {
			if err := e.EvaluateNow(ctx, a, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	src.set(map[string]float64{"a": 10}, nil)
	evaluate(t0)
	if got := states(e); got != "a=ok a=ok" || e.Held() != 0 {
		t.Fatalf("before: %s, held %d", got, e.Held())
	}

	// check lets the store's background check look once: it waits until
	// the check waits on the clock, moves the clock one interval on and
	// waits until the check has looked and waits again.
	check := func() {
		t.Helper()
		for i := range 2 {
			if i == 1 {
				clk.Add(sqlite.DefaultCheckEvery)
			}
			if err := clk.Settle(func() int { return 1 }, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	files := []string{"", "-wal", "-shm"}
	for _, f := range files {
		if err := os.Rename(path+f, path+f+".moved"); err != nil {
			t.Fatal(err)
		}
	}
	// One check interval later (well within 5s) the store says it is away.
	check()
	if err := st.Health(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("health %v one check after the file went", err)
	}

	src.set(map[string]float64{"a": 80}, nil)
	for i := 1; i <= 3; i++ {
		evaluate(t0.Add(time.Duration(i) * time.Minute))
	}
	// The remediation is not even decided: the runner could read none of
	// its limits and would refuse. The instances show what the store
	// holds, held, with the state they take once it is back.
	if got := heldStates(e); got != "a=ok held:escalated a=ok held:violated" {
		t.Fatalf("during the outage: %s", got)
	}
	if e.Held() == 0 || rem.decisions() != 0 || rem.starts() != 0 || enqueued.Load() != 0 {
		t.Fatalf("during the outage: held %d, decided %d, runs started %d, enqueues %d (nothing may act without its record)",
			e.Held(), rem.decisions(), rem.starts(), enqueued.Load())
	}
	for _, f := range files {
		if _, err := os.Stat(path + f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was created during the outage: %v", path+f, err)
		}
	}

	for _, f := range files {
		if err := os.Rename(path+f+".moved", path+f); err != nil {
			t.Fatal(err)
		}
	}
	check()
	if err := st.Health(ctx); err != nil {
		t.Fatalf("health once the file is back: %v", err)
	}
	e.Tick(ctx, t0.Add(4*time.Minute)) // the held changes are stored
	evaluate(t0.Add(5 * time.Minute))  // the violation held back is decided
	if e.Held() != 0 || rem.starts() != 1 || enqueued.Load() == 0 {
		t.Fatalf("after the file came back: held %d, runs started %d, enqueues %d", e.Held(), rem.starts(), enqueued.Load())
	}
	ds, err := st.Decisions(ctx, store.DecisionFilter{Action: assertd.ActRemediate})
	if err != nil || len(ds) != 1 || ds[0].RunID != rem.started[0] {
		t.Fatalf("stored remediate decisions %+v %v, started %v", ds, err, rem.started)
	}
	if ms := messages(t, st); len(ms) == 0 {
		t.Fatal("the page of the escalated instance was not enqueued once the store was back")
	}
}
