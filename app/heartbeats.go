package app

import (
	"context"
	"errors"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// heartbeatStore keeps the heartbeat tracker's state in the store.
type heartbeatStore struct{ st store.Store }

func (h heartbeatStore) LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	return h.st.Heartbeats(ctx)
}

func (h heartbeatStore) SaveHeartbeat(ctx context.Context, rec assertd.HeartbeatRecord) error {
	return h.st.PutHeartbeat(ctx, rec)
}

// RecordPing stores a ping and the heartbeat's new state in one transaction.
func (h heartbeatStore) RecordPing(ctx context.Context, p assertd.Ping, rec assertd.HeartbeatRecord) error {
	_, err := h.st.RecordPing(ctx, rec, p)
	return err
}

// AddPing stores a ping with the heartbeat's current state.
func (h heartbeatStore) AddPing(ctx context.Context, p assertd.Ping) error {
	rec, err := h.st.Heartbeat(ctx, p.Heartbeat)
	if errors.Is(err, store.ErrNotFound) {
		rec, err = assertd.HeartbeatRecord{Name: p.Heartbeat, Created: p.At}, nil
	}
	if err != nil {
		return err
	}
	_, err = h.st.RecordPing(ctx, rec, p)
	return err
}

func (h heartbeatStore) RecentPings(ctx context.Context, name string, limit int) ([]assertd.Ping, error) {
	return h.st.Pings(ctx, name, limit)
}
