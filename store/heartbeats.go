package store

import (
	"context"
	"errors"

	"github.com/assertd/assertd"
)

// HeartbeatStore keeps the heartbeat tracker's state (sources/heartbeat's
// Store and PingRecorder) in a Store: a ping and the heartbeat's new state
// are written in one transaction.
type HeartbeatStore struct{ Store Store }

// LoadHeartbeats returns every stored heartbeat record.
func (h HeartbeatStore) LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	return h.Store.Heartbeats(ctx)
}

// SaveHeartbeat stores a heartbeat record.
func (h HeartbeatStore) SaveHeartbeat(ctx context.Context, rec assertd.HeartbeatRecord) error {
	return h.Store.PutHeartbeat(ctx, rec)
}

// RecordPing stores a ping and the heartbeat's new state in one transaction.
func (h HeartbeatStore) RecordPing(ctx context.Context, p assertd.Ping, rec assertd.HeartbeatRecord) error {
	_, err := h.Store.RecordPing(ctx, rec, p)
	return err
}

// AddPing stores a ping with the heartbeat's current state.
func (h HeartbeatStore) AddPing(ctx context.Context, p assertd.Ping) error {
	rec, err := h.Store.Heartbeat(ctx, p.Heartbeat)
	if errors.Is(err, ErrNotFound) {
		rec, err = assertd.HeartbeatRecord{Name: p.Heartbeat, Created: p.At}, nil
	}
	if err != nil {
		return err
	}
	_, err = h.Store.RecordPing(ctx, rec, p)
	return err
}

// RecentPings returns a heartbeat's latest pings, newest first.
func (h HeartbeatStore) RecentPings(ctx context.Context, name string, limit int) ([]assertd.Ping, error) {
	return h.Store.Pings(ctx, name, limit)
}
