package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/assertd/assertd/store"
)

// The sweep: a batch looks at the next pings in ID order after the
// previous sweep's (sweepEnd), sweepRows per ping written since, and deletes
// those whose heartbeat has had PingsKept pings since; past the newest it
// starts again from the oldest. A ping kept because its heartbeat is
// seldom pinged is looked at again on each pass, so a pass costs at most
// sweepRows rows per ping written and the table holds about PingsKept pings
// per heartbeat plus what the pings written during one pass displaced.
const sweepRows = 2

// sweepEvery: a batch sweeps once this many pings were written since the
// last sweep, so that its two statements are not run for every small batch.
const sweepEvery = 256

var (
	sweepEndSQL = `SELECT id FROM pings WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?`
	// A join, not a subquery per row: opening and closing the subquery's
	// cursors for every row was most of the sweep.
	sweepSQL = fmt.Sprintf(`DELETE FROM pings WHERE id IN (SELECT p.id FROM pings p JOIN heartbeats h ON h.name = p.heartbeat
		WHERE p.id > ? AND p.id <= ? AND p.seq <= h.ping_seq - %d)`, store.PingsKept)
)

// sweep deletes, among the next sweepRows×len(batch) pings after the
// previous sweep's end, those with PingsKept newer pings of their heartbeat.
func (b *pingBatcher) sweep(ctx context.Context, tx *sql.Tx, batch []*pingReq, newest int64) error {
	from, to, err := b.sweepSlice(ctx, tx, batch, newest)
	if err != nil || to == 0 {
		return err
	}
	st, err := b.stmt(ctx, tx, sweepSQL)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, from, to)
	return err
}

// sweepSlice picks the IDs (from, to] this batch sweeps; to is 0 when
// there is nothing to sweep or another committer is picking its slice
// (committers sweep slices that do not overlap).
func (b *pingBatcher) sweepSlice(ctx context.Context, tx *sql.Tx, batch []*pingReq, newest int64) (from, to int64, err error) {
	if !b.sweepMu.TryLock() {
		return 0, 0, nil
	}
	defer b.sweepMu.Unlock()
	b.count(batch)
	if b.unswept += len(batch); b.unswept < sweepEvery {
		return 0, 0, nil
	}
	n := b.unswept
	b.unswept = 0
	if b.ownFrom > 0 && !b.full && b.sweepEnd >= b.ownFrom-1 {
		return 0, 0, nil // only pings written here are left to look at, none sweepable yet
	}
	st, err := b.stmt(ctx, tx, sweepEndSQL)
	if err != nil {
		return 0, 0, err
	}
	from = b.sweepEnd
	switch err := st.QueryRowContext(ctx, from, sweepRows*n-1).Scan(&to); {
	case errors.Is(err, sql.ErrNoRows):
		to = newest // fewer left: up to the newest
	case err != nil:
		return 0, 0, err
	}
	if own := b.ownFrom - 1; b.ownFrom > 0 && !b.full && to >= own {
		to = own // the pings written here are not sweepable yet: a pass ends below them
		newest = own
	}
	b.sweepEnd = to
	if to >= newest {
		b.sweepEnd = 0 // the newest pings reached: the next pass starts from the oldest
	}
	return from, to, nil
}

// counted reports whether the committer sees every ping written to the
// table: one committer (so every batch passes sweepSlice's lock) and no
// other process writing the same heartbeats (replicas on a shared
// database).
func (b *pingBatcher) counted() bool {
	return b.s.d.Writers == 1 && b.s.d.ForUpdate == ""
}

// count adds a committed-to-be batch to the pings written here per
// heartbeat, until one heartbeat passes PingsKept (from then on every
// slice is swept and the counts are dropped). Called under sweepMu.
func (b *pingBatcher) count(batch []*pingReq) {
	if b.full || !b.counted() || len(batch) == 0 {
		return
	}
	if b.ownFrom == 0 {
		b.ownFrom = batch[0].id
		for _, r := range batch {
			b.ownFrom = min(b.ownFrom, r.id)
		}
		b.written = make(map[string]int)
	}
	for _, r := range batch {
		if b.written[r.h.Name]++; b.written[r.h.Name] > store.PingsKept {
			b.full, b.written = true, nil
			return
		}
	}
}
