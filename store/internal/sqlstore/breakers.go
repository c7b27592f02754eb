package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

const breakerCols = `assert, is_open, page_group, group_label, group_value, violating, instances, opened_at, reason, closed_at, closed_by, close_reason`

func scanBreaker(sc interface{ Scan(...any) error }) (assertd.Breaker, error) {
	var b assertd.Breaker
	var opened, closed sql.NullInt64
	err := sc.Scan(&b.Assert, &b.Open, &b.Group, &b.GroupLabel, &b.GroupValue, &b.Violating, &b.Instances, &opened, &b.Reason,
		&closed, &b.ClosedBy, &b.CloseReason)
	b.OpenedAt, b.ClosedAt = fromMicros(opened), fromMicros(closed)
	return b, err
}

func (s *DB) PutBreaker(ctx context.Context, b assertd.Breaker) error {
	switch {
	case b.Assert == "":
		return fmt.Errorf("store: put breaker: no assert: %w", store.ErrInvalid)
	case b.Open && (b.OpenedAt.IsZero() || b.Reason == ""):
		return fmt.Errorf("store: put breaker %s: an open breaker needs when and why it opened: %w", b.Assert, store.ErrInvalid)
	case !b.Open && b.ClosedAt.IsZero():
		return fmt.Errorf("store: put breaker %s: a closed breaker needs when it closed: %w", b.Assert, store.ErrInvalid)
	}
	_, err := s.write(ctx, "put breaker "+b.Assert, `INSERT INTO breakers (`+breakerCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (assert) DO UPDATE SET is_open = excluded.is_open, page_group = excluded.page_group, group_label = excluded.group_label,
			group_value = excluded.group_value, violating = excluded.violating, instances = excluded.instances, opened_at = excluded.opened_at,
			reason = excluded.reason, closed_at = excluded.closed_at, closed_by = excluded.closed_by, close_reason = excluded.close_reason`,
		b.Assert, b.Open, b.Group, b.GroupLabel, b.GroupValue, b.Violating, b.Instances, tm(b.OpenedAt), b.Reason,
		tm(b.ClosedAt), b.ClosedBy, b.CloseReason)
	return err
}

func (s *DB) CloseBreaker(ctx context.Context, assert, by, reason string, at time.Time) (assertd.Breaker, error) {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	if by == "" || reason == "" || at.IsZero() {
		return assertd.Breaker{}, fmt.Errorf("store: close breaker %s: who, why and when are required: %w", assert, store.ErrInvalid)
	}
	var b assertd.Breaker
	err := s.tx(ctx, "close breaker "+assert, func(tx *sql.Tx) error {
		var err error
		b, err = scanBreaker(s.queryRow(ctx, tx, `SELECT `+breakerCols+` FROM breakers WHERE assert = ?`, assert))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("the blast-radius breaker of %s never opened: %w", assert, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !b.Open {
			return fmt.Errorf("the blast-radius breaker of %s is not open: %w", assert, store.ErrConflict)
		}
		b.Open, b.ClosedAt, b.ClosedBy, b.CloseReason = false, at.UTC(), by, reason
		if _, err := s.exec(ctx, tx, `UPDATE breakers SET is_open = ?, closed_at = ?, closed_by = ?, close_reason = ? WHERE assert = ?`,
			false, tm(at), by, reason, assert); err != nil {
			return err
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: at, Actor: by, Action: "breaker.close", Target: assert, Reason: reason,
			Detail: fmt.Sprintf("open since %s: %s", b.OpenedAt.UTC().Format(time.RFC3339), b.Reason)})
		return err
	})
	return b, err
}

func (s *DB) Breaker(ctx context.Context, assert string) (assertd.Breaker, error) {
	var b assertd.Breaker
	err := s.read("breaker "+assert, func(q querier) (err error) {
		b, err = scanBreaker(s.queryRow(ctx, q, `SELECT `+breakerCols+` FROM breakers WHERE assert = ?`, assert))
		return notFound(err, "breaker "+assert)
	})
	return b, err
}

func (s *DB) Breakers(ctx context.Context) ([]assertd.Breaker, error) {
	var out []assertd.Breaker
	err := s.read("breakers", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT `+breakerCols+` FROM breakers ORDER BY assert`)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanBreaker)
		return err
	})
	return out, err
}
