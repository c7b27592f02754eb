package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/assertd/assertd/store"
)

var _ store.Cluster = (*DB)(nil)

// checkFence refuses a write transaction whose context carries a fence
// (store.WithFence) that no longer matches the share's owner and epoch. On
// PostgreSQL the share's row is read FOR SHARE, so a claim that bumps the
// epoch waits for this transaction to end, and this one for the claim.
func (s *DB) checkFence(ctx context.Context, tx *sql.Tx) error {
	f, ok := store.FenceOf(ctx)
	if !ok {
		return nil
	}
	var owner string
	var epoch int64
	err := s.queryRow(ctx, tx, `SELECT owner, epoch FROM cluster_shares WHERE name = ?`+s.d.ForShare, f.Share).Scan(&owner, &epoch)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("share %s was never claimed: %w", f.Share, store.ErrFenced)
	case err != nil:
		return err
	case owner != f.Replica || epoch != f.Epoch:
		return fmt.Errorf("share %s is at epoch %d owned by %q, not at %d by %q: %w", f.Share, epoch, owner, f.Epoch, f.Replica, store.ErrFenced)
	}
	return nil
}

func (s *DB) RenewReplica(ctx context.Context, r store.Replica, now time.Time, lease time.Duration) error {
	if r.ID == "" || now.IsZero() || lease <= 0 {
		return fmt.Errorf("store: renew replica: a replica needs an ID, a time and a lease: %w", store.ErrInvalid)
	}
	if r.Started.IsZero() {
		r.Started = now
	}
	return s.tx(ctx, "renew replica "+r.ID, func(tx *sql.Tx) error {
		var until int64
		err := s.queryRow(ctx, tx, `SELECT lease_until FROM cluster_replicas WHERE id = ?`+s.d.ForShare, r.ID).Scan(&until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err := s.exec(ctx, tx, `INSERT INTO cluster_replicas (id, address, started, renewed, lease_until) VALUES (?, ?, ?, ?, ?)`,
				r.ID, r.Address, r.Started.UnixMicro(), now.UnixMicro(), now.Add(lease).UnixMicro())
			return err
		case err != nil:
			return err
		case until <= now.UnixMicro():
			return fmt.Errorf("the lease of replica %s expired at %s: %w", r.ID, time.UnixMicro(until).UTC().Format(time.RFC3339Nano), store.ErrConflict)
		}
		_, err = s.exec(ctx, tx, `UPDATE cluster_replicas SET address = ?, renewed = ?, lease_until = ? WHERE id = ?`,
			r.Address, now.UnixMicro(), now.Add(lease).UnixMicro(), r.ID)
		return err
	})
}

func (s *DB) RemoveReplica(ctx context.Context, id string) error {
	return s.tx(ctx, "remove replica "+id, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE cluster_shares SET owner = '' WHERE owner = ?`, id); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM cluster_replicas WHERE id = ?`, id)
		return err
	})
}

func (s *DB) Replicas(ctx context.Context, forgetBefore time.Time) ([]store.Replica, error) {
	if !forgetBefore.IsZero() {
		if _, err := s.write(ctx, "forget replicas", `DELETE FROM cluster_replicas WHERE lease_until < ?`, forgetBefore.UnixMicro()); err != nil {
			return nil, err
		}
	}
	var out []store.Replica
	err := s.read("replicas", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT id, address, started, renewed, lease_until FROM cluster_replicas ORDER BY id`)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var r store.Replica
			var started, renewed, until int64
			if err := rows.Scan(&r.ID, &r.Address, &started, &renewed, &until); err != nil {
				return err
			}
			r.Started, r.Renewed, r.LeaseUntil = time.UnixMicro(started).UTC(), time.UnixMicro(renewed).UTC(), time.UnixMicro(until).UTC()
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

func (s *DB) ClaimShare(ctx context.Context, share, replica string, now time.Time) (store.Share, string, bool, error) {
	if share == "" || replica == "" || now.IsZero() {
		return store.Share{}, "", false, fmt.Errorf("store: claim share: a share, a replica and a time are required: %w", store.ErrInvalid)
	}
	var sh store.Share
	var prev string
	var ok bool
	err := s.tx(ctx, "claim share "+share, func(tx *sql.Tx) error {
		var since int64
		sh = store.Share{Name: share}
		err := s.queryRow(ctx, tx, `SELECT owner, epoch, since FROM cluster_shares WHERE name = ?`+s.d.ForUpdate, share).Scan(&sh.Owner, &sh.Epoch, &since)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			sh.Owner, sh.Epoch, sh.Since, ok = replica, 1, now.UTC(), true
			_, err := s.exec(ctx, tx, `INSERT INTO cluster_shares (name, owner, epoch, since) VALUES (?, ?, ?, ?)`, share, replica, 1, now.UnixMicro())
			return err
		case err != nil:
			return err
		}
		sh.Since = time.UnixMicro(since).UTC()
		prev = sh.Owner
		if sh.Owner == replica {
			ok = true
			return nil
		}
		if sh.Owner != "" {
			var until int64
			err := s.queryRow(ctx, tx, `SELECT lease_until FROM cluster_replicas WHERE id = ?`, sh.Owner).Scan(&until)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err == nil && until > now.UnixMicro() {
				return nil // a live replica holds it
			}
		}
		sh.Owner, sh.Epoch, sh.Since, ok = replica, sh.Epoch+1, now.UTC(), true
		_, err = s.exec(ctx, tx, `UPDATE cluster_shares SET owner = ?, epoch = ?, since = ? WHERE name = ?`, replica, sh.Epoch, now.UnixMicro(), share)
		return err
	})
	if err != nil {
		return store.Share{}, "", false, err
	}
	return sh, prev, ok, nil
}

func (s *DB) ReleaseShare(ctx context.Context, share, replica string) error {
	_, err := s.write(ctx, "release share "+share, `UPDATE cluster_shares SET owner = '' WHERE name = ? AND owner = ?`, share, replica)
	return err
}

func (s *DB) Shares(ctx context.Context) ([]store.Share, error) {
	var out []store.Share
	err := s.read("shares", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT name, owner, epoch, since FROM cluster_shares ORDER BY name`)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var sh store.Share
			var since int64
			if err := rows.Scan(&sh.Name, &sh.Owner, &sh.Epoch, &since); err != nil {
				return err
			}
			sh.Since = time.UnixMicro(since).UTC()
			out = append(out, sh)
		}
		return rows.Err()
	})
	return out, err
}

// Shared reports whether several processes can share the database
// (PostgreSQL); SQLite is one process's store.
func (s *DB) Shared() bool { return s.d.Name == "postgres" }
