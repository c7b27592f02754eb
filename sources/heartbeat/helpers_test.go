package heartbeat

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

// periodHB declares a heartbeat expected every period.
func periodHB(name string, period, grace, maxRuntime time.Duration) *asserts.CompiledHeartbeat {
	return &asserts.CompiledHeartbeat{
		Heartbeat: &asserts.Heartbeat{Name: name, Period: assertd.Duration(period), Grace: assertd.Duration(grace), MaxRuntime: assertd.Duration(maxRuntime), Public: true},
		Period:    period, Grace: grace, MaxRuntime: maxRuntime,
	}
}

// cronHB declares a heartbeat expected on a cron schedule.
func cronHB(t *testing.T, name, schedule string, grace, maxRuntime time.Duration) *asserts.CompiledHeartbeat {
	t.Helper()
	s, err := asserts.ParseSchedule(schedule)
	if err != nil {
		t.Fatal(err)
	}
	return &asserts.CompiledHeartbeat{
		Heartbeat: &asserts.Heartbeat{Name: name, Schedule: asserts.Schedule{Cron: schedule}, Grace: assertd.Duration(grace), MaxRuntime: assertd.Duration(maxRuntime), Public: true},
		Schedule:  s, Grace: grace, MaxRuntime: maxRuntime,
	}
}

func newTracker(t *testing.T, store Store, created time.Time, hbs ...*asserts.CompiledHeartbeat) *Tracker {
	t.Helper()
	tr, err := New(context.Background(), hbs, asserts.Pings{}, store, Options{Now: func() time.Time { return created }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

var errStoreDown = errors.New("disk on fire")

// flakyStore is a MemoryStore whose writes fail while down is set. It hides
// RecordPing so that the AddPing+SaveHeartbeat path is exercised too.
type flakyStore struct {
	mem  *MemoryStore
	mu   sync.Mutex
	down bool
}

func (f *flakyStore) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	f.mu.Unlock()
}

func (f *flakyStore) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errStoreDown
	}
	return nil
}

func (f *flakyStore) LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	return f.mem.LoadHeartbeats(ctx)
}

func (f *flakyStore) SaveHeartbeat(ctx context.Context, r assertd.HeartbeatRecord) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.mem.SaveHeartbeat(ctx, r)
}

func (f *flakyStore) AddPing(ctx context.Context, p assertd.Ping) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.mem.AddPing(ctx, p)
}

func (f *flakyStore) RecentPings(ctx context.Context, name string, limit int) ([]assertd.Ping, error) {
	return f.mem.RecentPings(ctx, name, limit)
}
