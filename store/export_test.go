package store

import (
	"context"
	"database/sql"
)

type sqlNullInt64 = sql.NullInt64

// HoldWriteLockForTest holds s's write lock (an immediate transaction on
// SQLite, as another process would) from when it closes held until release
// is closed.
func HoldWriteLockForTest(ctx context.Context, s Store, held chan<- struct{}, release <-chan struct{}) error {
	tx, err := s.(*db).w.BeginTx(ctx, nil)
	close(held)
	if err != nil {
		return err
	}
	<-release
	return tx.Rollback()
}

func nullInt(v any) (n sqlNullInt64) {
	if v != nil {
		n.Int64, n.Valid = v.(int64), true
	}
	return n
}
