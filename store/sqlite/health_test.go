package sqlite_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
	"github.com/assertd/assertd/store/storetest"
)

// logs keeps the records logged, for the test to count.
type logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

// count counts the records at level whose message contains msg.
func (l *logs) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

type rig struct {
	path string
	st   store.Store
	clk  *fakeclock.Clock
	reg  *prometheus.Registry
	logs *logs
}

func openRig(t *testing.T, opts ...sqlite.Option) *rig {
	t.Helper()
	r := &rig{path: filepath.Join(t.TempDir(), sqlite.File), clk: fakeclock.New(storetest.T0), reg: prometheus.NewRegistry(), logs: &logs{}}
	var err error
	r.st, err = sqlite.Open(context.Background(), r.path,
		append([]sqlite.Option{sqlite.WithClock(r.clk), sqlite.WithRegisterer(r.reg), sqlite.WithLogger(slog.New(r.logs))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.st.Close() })
	return r
}

// tick moves the clock by d and waits until the background check has
// looked and waits on the clock again.
func (r *rig) tick(t *testing.T, d time.Duration) {
	t.Helper()
	waiting := func() {
		t.Helper()
		if err := r.clk.Settle(func() int { return 1 }, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waiting() // the check waits on the clock (it may not have started yet)
	r.clk.Add(d)
	waiting() // the check has looked and waits again
}

func (r *rig) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func inst(fp string) assertd.Instance {
	return assertd.Instance{Assert: "a", Fingerprint: fp, State: assertd.OK, LastEval: storetest.T0}
}

var files = []string{"", "-wal", "-shm"}

// The file is moved away while the store runs: within one check interval
// every operation fails with ErrUnavailable (saying where and what to do),
// nothing is created at the path, the outage is logged and counted once;
// when the same file is moved back the store works again, and what it
// wrote before is there.
func TestFileMovedAwayAndBack(t *testing.T) {
	r := openRig(t)
	ctx := context.Background()
	if err := r.st.PutInstance(ctx, inst("before")); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if got := r.metric(t, "assertd_store_healthy"); got != 1 {
		t.Fatalf("assertd_store_healthy %v", got)
	}
	for _, f := range files {
		if err := os.Rename(r.path+f, r.path+f+".moved"); err != nil {
			t.Fatal(err)
		}
	}
	r.tick(t, sqlite.DefaultCheckEvery)
	if got := r.metric(t, "assertd_store_healthy"); got != 0 {
		t.Fatalf("after one check: assertd_store_healthy %v, want 0", got)
	}
	err := r.st.Health(ctx)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "the database file "+r.path+" was removed") ||
		!strings.Contains(err.Error(), "move the same file back") {
		t.Fatalf("health: %v", err)
	}
	// Reads, writes and the outbox all fail while it is away.
	if _, err := r.st.Instances(ctx, ""); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("read: %v", err)
	}
	if err := r.st.PutInstance(ctx, inst("during")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write: %v", err)
	}
	if _, err := r.st.Commit(ctx, store.Change{Key: "k", Instance: ptr(inst("during")), Messages: []assertd.Message{{Channel: "c", Created: storetest.T0}}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("commit: %v", err)
	}
	if _, err := r.st.CreateRun(ctx, assertd.Run{ID: "r1", Remediation: "x", Started: storetest.T0}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("create run: %v", err)
	}
	if _, err := r.st.Claim(ctx, "d", storetest.T0, time.Minute, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("claim: %v", err)
	}
	if _, err := r.st.RecordPing(ctx, assertd.HeartbeatRecord{Name: "h", Created: storetest.T0}, assertd.Ping{Heartbeat: "h", At: storetest.T0, Kind: assertd.PingSuccess}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("record ping: %v", err)
	}
	r.tick(t, sqlite.DefaultCheckEvery)
	for _, f := range files {
		if _, err := os.Stat(r.path + f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists while the store was away: %v", r.path+f, err)
		}
	}
	if n := r.logs.count(slog.LevelError, "store unavailable"); n != 1 {
		t.Errorf("%d Error logs of the outage, want 1", n)
	}
	if got := r.metric(t, "assertd_store_outages_total"); got != 1 {
		t.Errorf("assertd_store_outages_total %v", got)
	}

	for _, f := range files {
		if err := os.Rename(r.path+f+".moved", r.path+f); err != nil {
			t.Fatal(err)
		}
	}
	r.tick(t, sqlite.DefaultCheckEvery)
	if err := r.st.Health(ctx); err != nil {
		t.Fatalf("health once back: %v", err)
	}
	if got := r.metric(t, "assertd_store_healthy"); got != 1 {
		t.Errorf("back: assertd_store_healthy %v", got)
	}
	if n := r.logs.count(slog.LevelWarn, "store available again"); n != 1 {
		t.Errorf("%d logs of the return, want 1", n)
	}
	if err := r.st.PutInstance(ctx, inst("after")); err != nil {
		t.Fatal(err)
	}
	// What was written before and after is in the file at the path.
	r.st.Close()
	again, err := sqlite.Open(ctx, r.path, sqlite.WithLogger(slog.New(&logs{})))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	all, err := again.Instances(ctx, "")
	if err != nil || len(all) != 2 || all[0].Fingerprint != "after" || all[1].Fingerprint != "before" {
		t.Fatalf("after a restart: %v %v", all, err)
	}
}

// A write notices at once, without waiting for the background check; a
// file removed for good (rm, with its -wal and -shm) is never recreated,
// and a different file put at the path is not taken for it.
func TestFileRemovedOrReplaced(t *testing.T) {
	r := openRig(t, sqlite.WithCheckEvery(0))
	ctx := context.Background()
	if err := r.st.PutInstance(ctx, inst("before")); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Remove(r.path + f); err != nil {
			t.Fatal(err)
		}
	}
	err := r.st.PutInstance(ctx, inst("during"))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), r.path) {
		t.Fatalf("write after rm: %v", err)
	}
	if _, err := r.st.Instances(ctx, ""); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read after a write noticed: %v", err)
	}
	for _, f := range files {
		if _, err := os.Stat(r.path + f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created: %v", r.path+f, err)
		}
	}
	// Someone puts another database at the path: still unavailable.
	other, err := sqlite.Open(ctx, r.path, sqlite.WithLogger(slog.New(&logs{})))
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	err = r.st.Health(ctx)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "was replaced by another file") {
		t.Fatalf("health with another file at the path: %v", err)
	}
	if n := r.logs.count(slog.LevelError, "store unavailable"); n != 1 {
		t.Errorf("%d Error logs, want 1 for one outage", n)
	}
}

// A store that holds nothing, beside other state, says loudly that assertd
// starts from empty state; a first start in an empty directory does not,
// nor does a store that holds state.
func TestEmptyStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.File)
	open := func() *logs {
		t.Helper()
		l := &logs{}
		st, err := sqlite.Open(ctx, path, sqlite.WithLogger(slog.New(l)))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		return l
	}
	const warning = "assertd starts from empty state"
	if l := open(); l.count(slog.LevelWarn, warning) != 0 || l.count(slog.LevelInfo, "a new database") != 1 {
		t.Errorf("first start: %d warnings, %d infos", l.count(slog.LevelWarn, warning), l.count(slog.LevelInfo, "a new database"))
	}
	if err := os.Mkdir(filepath.Join(dir, "tsdb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if l := open(); l.count(slog.LevelWarn, warning) != 1 {
		t.Errorf("empty store beside a TSDB: %d warnings, want 1", l.count(slog.LevelWarn, warning))
	}
	for _, f := range files {
		_ = os.Remove(path + f)
	}
	l := open()
	if l.count(slog.LevelWarn, warning) != 1 {
		t.Fatalf("database removed: %d warnings, want 1", l.count(slog.LevelWarn, warning))
	}
	l.mu.Lock()
	var attrs []string
	l.recs[0].Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
	l.mu.Unlock()
	if s := strings.Join(attrs, " "); !strings.Contains(s, "path="+path) || !strings.Contains(s, "beside=tsdb") {
		t.Errorf("the warning says %s", s)
	}
	st, err := sqlite.Open(ctx, path, sqlite.WithLogger(slog.New(&logs{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutInstance(ctx, inst("x")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if l := open(); l.count(slog.LevelWarn, warning) != 0 {
		t.Errorf("a store with state: %d warnings", l.count(slog.LevelWarn, warning))
	}
}

func ptr[T any](v T) *T { return &v }
