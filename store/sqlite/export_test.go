package sqlite

import (
	"context"

	"github.com/assertd/assertd/store"
)

// HoldWriteLockForTest holds s's write lock (an immediate transaction, as
// another process would) from when it closes held until release is closed.
func HoldWriteLockForTest(ctx context.Context, s store.Store, held chan<- struct{}, release <-chan struct{}) error {
	tx, err := s.(*db).w.BeginTx(ctx, nil)
	close(held)
	if err != nil {
		return err
	}
	<-release
	return tx.Rollback()
}
