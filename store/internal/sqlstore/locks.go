package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func scanLock(sc interface{ Scan(...any) error }) (assertd.Lock, error) {
	var l assertd.Lock
	var acq, exp sql.NullInt64
	err := sc.Scan(&l.Key, &l.Owner, &l.Token, &acq, &exp)
	l.Acquired, l.Expires = fromMicros(acq), fromMicros(exp)
	return l, err
}

const lockCols = `name, owner, token, acquired, expires`

// AcquireLock is one upsert, atomic on both databases: the update applies
// only when the lock is free, expired or already the caller's. The fencing
// token grows whenever the lock is taken after a lapse (another owner, a
// release, an expiry); a renewal in time keeps it.
func (s *DB) AcquireLock(ctx context.Context, key, owner string, now time.Time, ttl time.Duration) (assertd.Lock, bool, error) {
	if key == "" || owner == "" || now.IsZero() || ttl <= 0 {
		return assertd.Lock{}, false, fmt.Errorf("store: acquire lock: a lock needs a key, an owner, a time and a positive ttl: %w", store.ErrInvalid)
	}
	var l assertd.Lock
	ok := false
	err := s.tx(ctx, "acquire lock "+key, func(tx *sql.Tx) error {
		var err error
		l, err = scanLock(s.queryRow(ctx, tx, `INSERT INTO locks (name, owner, token, acquired, expires) VALUES (?, ?, 1, ?, ?)
			ON CONFLICT (name) DO UPDATE SET
				token = CASE WHEN locks.owner = excluded.owner AND locks.expires > excluded.acquired THEN locks.token ELSE locks.token + 1 END,
				acquired = CASE WHEN locks.owner = excluded.owner AND locks.expires > excluded.acquired THEN locks.acquired ELSE excluded.acquired END,
				owner = excluded.owner,
				expires = excluded.expires
			WHERE locks.owner = excluded.owner OR locks.expires <= excluded.acquired
			RETURNING `+lockCols, key, owner, tm(now), tm(now.Add(ttl))))
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		l, err = scanLock(s.queryRow(ctx, tx, `SELECT `+lockCols+` FROM locks WHERE name = ?`, key))
		return err
	})
	return l, ok, err
}

func (s *DB) ReleaseLock(ctx context.Context, key, owner string, now time.Time) error {
	_, err := s.write(ctx, "release lock "+key, `UPDATE locks SET owner = '', expires = ? WHERE name = ? AND owner = ?`, tm(now), key, owner)
	return err
}

func (s *DB) Lock(ctx context.Context, key string) (assertd.Lock, error) {
	var l assertd.Lock
	err := s.read("lock "+key, func(q querier) (err error) {
		l, err = scanLock(s.queryRow(ctx, q, `SELECT `+lockCols+` FROM locks WHERE name = ?`, key))
		return notFound(err, "lock "+key)
	})
	return l, err
}

func (s *DB) RequestApproval(ctx context.Context, a assertd.Approval) error {
	if a.RunID == "" || a.Requested.IsZero() || !a.Expires.After(a.Requested) {
		return fmt.Errorf("store: request approval: an approval needs a run id, a request time and a later expiry: %w", store.ErrInvalid)
	}
	return s.tx(ctx, "request approval "+a.RunID, func(tx *sql.Tx) error {
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM runs WHERE id = ?`, a.RunID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("run %s: %w", a.RunID, store.ErrNotFound)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO approvals (run_id, requested, expires, decided, actor, approved, comment)
			VALUES (?, ?, ?, NULL, '', ?, '') ON CONFLICT (run_id) DO NOTHING`, a.RunID, tm(a.Requested), tm(a.Expires), false)
		return err
	})
}

func (s *DB) DecideApproval(ctx context.Context, runID, by string, approved bool, at time.Time, comment string) error {
	if by == "" || at.IsZero() {
		return fmt.Errorf("store: decide approval %s: who decided, and when, is required: %w", runID, store.ErrInvalid)
	}
	return s.tx(ctx, "decide approval "+runID, func(tx *sql.Tx) error {
		a, err := scanApproval(s.queryRow(ctx, tx, `SELECT `+approvalCols+` FROM approvals WHERE run_id = ?`, runID))
		if err != nil {
			return notFound(err, "approval of run "+runID)
		}
		switch {
		case !a.Decided.IsZero():
			return fmt.Errorf("approval of run %s was already decided by %s: %w", runID, a.By, store.ErrConflict)
		case !at.Before(a.Expires):
			return fmt.Errorf("approval of run %s expired at %s: %w", runID, a.Expires.Format(time.RFC3339), store.ErrConflict)
		}
		if _, err := s.exec(ctx, tx, `UPDATE approvals SET decided = ?, actor = ?, approved = ?, comment = ? WHERE run_id = ?`,
			tm(at), by, approved, comment, runID); err != nil {
			return err
		}
		action := "run.deny"
		if approved {
			action = "run.approve"
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: at, Actor: by, Action: action, Target: runID, Reason: comment})
		return err
	})
}

const approvalCols = `run_id, requested, expires, decided, actor, approved, comment`

func scanApproval(sc interface{ Scan(...any) error }) (assertd.Approval, error) {
	var a assertd.Approval
	var req, exp, dec sql.NullInt64
	err := sc.Scan(&a.RunID, &req, &exp, &dec, &a.By, &a.Approved, &a.Comment)
	a.Requested, a.Expires, a.Decided = fromMicros(req), fromMicros(exp), fromMicros(dec)
	return a, err
}

func (s *DB) Approval(ctx context.Context, runID string) (assertd.Approval, error) {
	var a assertd.Approval
	err := s.read("approval "+runID, func(q querier) (err error) {
		a, err = scanApproval(s.queryRow(ctx, q, `SELECT `+approvalCols+` FROM approvals WHERE run_id = ?`, runID))
		return notFound(err, "approval of run "+runID)
	})
	return a, err
}

func (s *DB) PendingApprovals(ctx context.Context) ([]assertd.Approval, error) {
	var out []assertd.Approval
	err := s.read("pending approvals", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT `+approvalCols+` FROM approvals WHERE decided IS NULL ORDER BY requested, run_id`)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanApproval)
		return err
	})
	return out, err
}
