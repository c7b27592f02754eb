package heartbeat

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/assertd/assertd"
)

// Store is where heartbeat state and pings are made durable. The SQL stores
// (store/) implement it with the root types; MemoryStore is the in-process
// implementation used until then and in tests.
//
// The Tracker calls a Store method only from one goroutine per heartbeat at a
// time, but different heartbeats may be written concurrently.
type Store interface {
	// LoadHeartbeats returns every stored heartbeat record, in any order.
	// Records of heartbeats that are no longer declared may be included; the
	// Tracker ignores them (and never deletes them).
	LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error)
	// SaveHeartbeat inserts or replaces the record with rec.Name.
	SaveHeartbeat(ctx context.Context, rec assertd.HeartbeatRecord) error
	// AddPing appends one ping to the heartbeat's log. The store assigns
	// p.ID; it may prune old pings (keeping at least the newest 100 per
	// heartbeat is recommended).
	AddPing(ctx context.Context, p assertd.Ping) error
	// RecentPings returns up to limit pings of the named heartbeat, newest
	// first (by At, then ID).
	RecentPings(ctx context.Context, name string, limit int) ([]assertd.Ping, error)
}

// PingRecorder is an optional Store extension: RecordPing appends p and saves
// rec in one transaction, so a ping is never logged without the state it
// produced (or the reverse). The Tracker uses it when the Store has it and
// otherwise calls AddPing, then SaveHeartbeat.
type PingRecorder interface {
	RecordPing(ctx context.Context, p assertd.Ping, rec assertd.HeartbeatRecord) error
}

// memoryKeep is how many pings MemoryStore keeps per heartbeat.
const memoryKeep = 200

// MemoryStore is a Store held in memory: durable only for the life of the
// process. It keeps the newest 200 pings per heartbeat.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]assertd.HeartbeatRecord
	pings   map[string][]assertd.Ping // oldest first
	lastID  int64
}

var (
	_ Store        = (*MemoryStore)(nil)
	_ PingRecorder = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: map[string]assertd.HeartbeatRecord{}, pings: map[string][]assertd.Ping{}}
}

// LoadHeartbeats implements Store.
func (m *MemoryStore) LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]assertd.HeartbeatRecord, 0, len(m.records))
	for _, r := range m.records {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b assertd.HeartbeatRecord) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// SaveHeartbeat implements Store.
func (m *MemoryStore) SaveHeartbeat(ctx context.Context, rec assertd.HeartbeatRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[rec.Name] = rec
	return nil
}

// AddPing implements Store.
func (m *MemoryStore) AddPing(ctx context.Context, p assertd.Ping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addPing(p)
	return nil
}

func (m *MemoryStore) addPing(p assertd.Ping) {
	m.lastID++
	p.ID = m.lastID
	log := append(m.pings[p.Heartbeat], p)
	if len(log) > memoryKeep {
		log = slices.Clone(log[len(log)-memoryKeep:])
	}
	m.pings[p.Heartbeat] = log
}

// RecordPing implements PingRecorder.
func (m *MemoryStore) RecordPing(ctx context.Context, p assertd.Ping, rec assertd.HeartbeatRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addPing(p)
	m.records[rec.Name] = rec
	return nil
}

// RecentPings implements Store.
func (m *MemoryStore) RecentPings(ctx context.Context, name string, limit int) ([]assertd.Ping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.pings[name]
	out := make([]assertd.Ping, 0, min(max(limit, 0), len(log)))
	for i := len(log) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, log[i])
	}
	slices.SortStableFunc(out, func(a, b assertd.Ping) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}
