package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func (s *DB) PutLifecycle(ctx context.Context, o assertd.LifecycleOverride) error {
	o.By, o.Reason = strings.TrimSpace(o.By), strings.TrimSpace(o.Reason)
	switch {
	case len(o.Target) == 0:
		return fmt.Errorf("store: put lifecycle: a target needs at least one label: %w", store.ErrInvalid)
	case o.By == "" || o.Updated.IsZero():
		return fmt.Errorf("store: put lifecycle %s: who, and when, is required: %w", o.Target, store.ErrInvalid)
	}
	key := o.Target.String()
	return s.tx(ctx, "put lifecycle "+key, func(tx *sql.Tx) error {
		var err error
		if o.State == "" {
			_, err = s.exec(ctx, tx, `DELETE FROM lifecycles WHERE target = ?`, key)
		} else {
			_, err = s.exec(ctx, tx, `INSERT INTO lifecycles (target, labels, state, updated, actor, reason) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (target) DO UPDATE SET state = excluded.state, updated = excluded.updated, actor = excluded.actor, reason = excluded.reason`,
				key, encLabels(o.Target), o.State, tm(o.Updated), o.By, o.Reason)
		}
		if err != nil {
			return err
		}
		_, err = s.audit(ctx, tx, assertd.AuditEntry{At: o.Updated, Actor: o.By, Action: "lifecycle.set", Target: key, Reason: o.Reason, Detail: o.State})
		return err
	})
}

func (s *DB) Lifecycles(ctx context.Context) ([]assertd.LifecycleOverride, error) {
	var out []assertd.LifecycleOverride
	err := s.read("lifecycles", func(q querier) error {
		rows, err := s.query(ctx, q, `SELECT labels, state, updated, actor, reason FROM lifecycles ORDER BY updated, target`)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(sc interface{ Scan(...any) error }) (assertd.LifecycleOverride, error) {
			var o assertd.LifecycleOverride
			var labels string
			var upd sql.NullInt64
			if err := sc.Scan(&labels, &o.State, &upd, &o.By, &o.Reason); err != nil {
				return o, err
			}
			o.Updated = fromMicros(upd)
			var err error
			o.Target, err = decLabels(labels)
			return o, err
		})
		return err
	})
	return out, err
}
