package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// Group commit of pings. Every ping is durable before RecordPing returns,
// but concurrent RecordPing calls share transactions: one committer takes
// every ping queued while the previous transaction committed and writes
// them in the next one. Under load this turns N commits (each writing the
// same WAL pages again) into one; a lone ping still commits at once.

// maxPingBatch bounds the pings written in one transaction.
const maxPingBatch = 512

type pingReq struct {
	h    assertd.HeartbeatRecord
	p    assertd.Ping
	id   int64
	err  error
	done chan struct{}
}

type pingBatcher struct {
	s     *DB
	once  sync.Once
	queue chan *pingReq
	quit  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // by query text, prepared on the writer pool

	sweepMu  sync.Mutex // held while a committer picks its slice
	sweepEnd int64      // the last ping ID the sweep looked at; 0: none
	unswept  int        // pings written since the last sweep
}

func (b *pingBatcher) start(s *DB) {
	b.once.Do(func() {
		b.s = s
		b.queue = make(chan *pingReq, maxPingBatch)
		b.quit = make(chan struct{})
		// SQLite has one writer; PostgreSQL takes several transactions at
		// once, each batch a round trip per statement.
		for range s.d.Writers {
			b.wg.Add(1)
			go b.run()
		}
	})
}

// stop ends the committer (when it ever started); pings still queued fail
// with ErrClosed.
func (b *pingBatcher) stop() {
	started := true
	b.once.Do(func() { started = false })
	if started {
		close(b.quit)
		b.wg.Wait()
		b.closeStmts()
	}
}

// record queues one ping and waits until its transaction has committed (or
// failed). It does not give up when ctx ends: the ping may be committing,
// and the caller must not be told it was lost when it was not.
func (b *pingBatcher) record(ctx context.Context, s *DB, h assertd.HeartbeatRecord, p assertd.Ping) (int64, error) {
	b.start(s)
	r := &pingReq{h: h, p: p, done: make(chan struct{})}
	select {
	case b.queue <- r:
	case <-b.quit:
		return 0, fmt.Errorf("store: record ping %s: %w", h.Name, store.ErrClosed)
	case <-ctx.Done():
		return 0, fmt.Errorf("store: record ping %s: %w", h.Name, ctx.Err())
	}
	<-r.done
	return r.id, r.err
}

func (b *pingBatcher) run() {
	defer b.wg.Done()
	batch := make([]*pingReq, 0, maxPingBatch)
	for {
		select {
		case <-b.quit:
			b.drain()
			return
		case r := <-b.queue:
			batch = append(batch[:0], r)
		}
		// Let the goroutines about to queue a ping run first: on a busy
		// machine the batch was otherwise the 4 or 5 pings that came during
		// the previous commit, and a batch's fixed costs (the transaction,
		// the statements) were most of a ping's.
		runtime.Gosched()
	more:
		for len(batch) < maxPingBatch {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.commit(batch)
	}
}

func (b *pingBatcher) drain() {
	for {
		select {
		case r := <-b.queue:
			r.err = fmt.Errorf("store: record ping %s: %w", r.h.Name, store.ErrClosed)
			close(r.done)
		default:
			return
		}
	}
}

// commit writes a batch in one transaction, its statements prepared once.
// When that fails for a reason other than the store being away, each ping
// is retried on its own, so one bad ping fails alone.
func (b *pingBatcher) commit(batch []*pingReq) {
	ctx := context.Background()
	op := "record ping " + batch[0].h.Name
	if len(batch) > 1 {
		op = fmt.Sprintf("record %d pings", len(batch))
	}
	err := b.prepare(ctx)
	if err != nil {
		err = b.s.wrap(op, err)
	} else {
		err = b.s.tx(ctx, op, func(tx *sql.Tx) error { return b.recordPings(ctx, tx, batch) })
	}
	if err != nil && len(batch) > 1 && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed) {
		for _, r := range batch {
			r.err = b.s.tx(ctx, "record ping "+r.h.Name, func(tx *sql.Tx) error { return b.recordPings(ctx, tx, []*pingReq{r}) })
			close(r.done)
		}
		return
	}
	for _, r := range batch {
		if r.err = err; err != nil {
			r.id = 0
		}
		close(r.done)
	}
}

// A heartbeat's pings are a chain (migration 4): each names the previous one
// (prev) and its number (seq), and the heartbeat row names the newest
// (last_ping_id) and the count (ping_seq). A ping is then one row appended
// in ID order, its prev and seq read from the heartbeat row the batch
// upserts anyway: there is no index by heartbeat, whose leaves every ping
// dirtied at random (half of the committer's WAL pages and its B-tree work).
// Pings walks the chain from the newest; the sweep deletes the pings that
// have PingsKept newer ones, a slice of the table in ID order per batch.

// pingChunks are the row counts of the multi-row statements a batch is
// written with: a batch of n rows is cut into chunks of these sizes
// (largest first), so only a few statement texts exist and each is parsed
// once per connection. Parsing a statement with a fresh number of rows was a
// third of the committer's time.
var pingChunks = [...]int{64, 16, 4, 1}

// chunk returns the size of the next chunk of n rows.
func chunk(n int) int {
	for _, c := range pingChunks {
		if n >= c {
			return c
		}
	}
	return n
}

// multiRow is an INSERT of n rows written as row.
func multiRow(head, row string, n int, tail string) string {
	var q strings.Builder
	q.WriteString(head)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	q.WriteString(tail)
	return q.String()
}

// A ping's prev and seq come from its heartbeat's row as the transaction
// sees it: before this ping's heartbeat is upserted.
const (
	pingRow = `(?, ?, ?, ?, ?, ?, ?, (SELECT last_ping_id FROM heartbeats WHERE name = ?),
		COALESCE((SELECT ping_seq FROM heartbeats WHERE name = ?), 0) + 1)`
	// joinedPingRow: the heartbeat rows are joined to the pings' VALUES, one
	// lookup per statement instead of two subqueries per row (opening and
	// closing their cursors was most of an insert); the last column orders
	// the rows as given, and so their IDs.
	joinedPingRow     = `(?, ?, ?, ?, ?, ?, ?, ?)`
	pingHeartbeatRow  = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`
	pingHeartbeatTail = heartbeatConflict + `, last_ping_id = excluded.last_ping_id, ping_seq = heartbeats.ping_seq + 1`
)

var (
	upsertHeartbeatsSQL [len(pingChunks)]string
	insertPingsSQL      [len(pingChunks)]string // with RETURNING id
	appendPingsSQL      [len(pingChunks)]string // without: see Dialect.LastInsertID
)

func init() {
	for i, n := range pingChunks {
		upsertHeartbeatsSQL[i] = multiRow(`INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created, last_ping_id, ping_seq) VALUES `,
			pingHeartbeatRow, n, pingHeartbeatTail)
		insertPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source, prev, seq) VALUES `, pingRow, n, " RETURNING id")
		appendPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source, prev, seq)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, h.last_ping_id, COALESCE(h.ping_seq, 0) + 1
			FROM (VALUES `, joinedPingRow, n, `) AS v LEFT JOIN heartbeats h ON h.name = v.column1 ORDER BY v.column8`)
	}
}

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

func chunkIndex(n int) int {
	for i, c := range pingChunks {
		if c == n {
			return i
		}
	}
	panic("sqlstore: no ping chunk of " + fmt.Sprint(n))
}

// prepare prepares the batch statements on the writer pool, once (outside a
// transaction: SQLite's pool is the one connection the transaction holds).
// A failure is returned and tried again at the next batch.
func (b *pingBatcher) prepare(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stmts != nil {
		return nil
	}
	stmts := map[string]*sql.Stmt{}
	inserts := insertPingsSQL[:]
	if b.s.d.LastInsertID {
		inserts = appendPingsSQL[:]
	}
	for _, q := range append(append([]string{sweepEndSQL, sweepSQL}, upsertHeartbeatsSQL[:]...), inserts...) {
		st, err := b.s.w.PrepareContext(ctx, b.s.d.q(q))
		if err != nil {
			for _, st := range stmts {
				_ = st.Close()
			}
			return err
		}
		stmts[q] = st
	}
	b.stmts = stmts
	return nil
}

// stmt returns query, prepared once, for tx: tx.StmtContext uses the
// connection's own prepared statement, preparing it there only the first
// time.
func (b *pingBatcher) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	b.mu.Lock()
	st := b.stmts[query]
	b.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("statement not prepared: %.40s", query)
	}
	return tx.StmtContext(ctx, st), nil
}

// closeStmts closes the prepared statements.
func (b *pingBatcher) closeStmts() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.stmts {
		_ = st.Close()
	}
	b.stmts = nil
}

// recordPings writes pings and their heartbeats' states, then sweeps (see
// sweepRows). The pings and the states are written by multi-row statements
// of a few fixed sizes, prepared once (see pingChunks): per-statement
// overhead and parsing, not the rows, were most of a batch's time. A batch
// holding several pings of one heartbeat (the Tracker sends one at a time,
// other callers may not) is written in rounds, each ping after the one
// before it in the chain.
func (b *pingBatcher) recordPings(ctx context.Context, tx *sql.Tx, batch []*pingReq) error {
	if b.s.d.ForUpdate != "" {
		// Concurrent writers of one heartbeat (replicas sharing the
		// database) take turns, so that each ping follows the one before.
		names := make([]string, 0, len(batch))
		for _, r := range batch {
			names = append(names, r.h.Name)
		}
		slices.Sort(names)
		if _, err := tx.ExecContext(ctx, b.s.d.q(`SELECT name FROM heartbeats WHERE name = ANY(CAST(? AS TEXT[])) ORDER BY name`+b.s.d.ForUpdate), slices.Compact(names)); err != nil {
			return err
		}
	}
	rest := batch
	var round []*pingReq
	var maxID int64
	args := make([]any, 0, 10*pingChunks[0])
	for len(rest) > 0 {
		round, rest = nextRound(rest)
		if err := b.appendPings(ctx, tx, round, args); err != nil {
			return err
		}
		for rs := round; len(rs) > 0; {
			n := chunk(len(rs))
			st, err := b.stmt(ctx, tx, upsertHeartbeatsSQL[chunkIndex(n)])
			if err != nil {
				return err
			}
			args = args[:0]
			for _, r := range rs[:n] {
				args = append(appendHeartbeatArgs(args, r.h), r.id)
				maxID = max(maxID, r.id)
			}
			if _, err := st.ExecContext(ctx, b.s.args(args)...); err != nil {
				return err
			}
			rs = rs[n:]
		}
	}
	return b.sweep(ctx, tx, len(batch), maxID)
}

// nextRound takes from batch the first ping of each heartbeat, keeping
// the order; the rest follow in later rounds.
func nextRound(batch []*pingReq) (round, rest []*pingReq) {
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if seen[r.h.Name] {
			rest = append(rest, r)
			continue
		}
		seen[r.h.Name] = true
		round = append(round, r)
	}
	return round, rest
}

// appendPings inserts the pings of one round, of distinct heartbeats, and
// gives each its ID.
func (b *pingBatcher) appendPings(ctx context.Context, tx *sql.Tx, round []*pingReq, args []any) error {
	for rest := round; len(rest) > 0; {
		n := chunk(len(rest))
		args = args[:0]
		for i, r := range rest[:n] {
			p := r.p
			args = append(args, r.h.Name, string(p.Kind), p.ExitCode, p.RunID, tm(p.At), head(p.Body, store.MaxPingBody), head(p.Source, 256))
			if b.s.d.LastInsertID {
				args = append(args, i)
			} else {
				args = append(args, r.h.Name, r.h.Name)
			}
		}
		if b.s.d.LastInsertID {
			st, err := b.stmt(ctx, tx, appendPingsSQL[chunkIndex(n)])
			if err != nil {
				return err
			}
			res, err := st.ExecContext(ctx, b.s.args(args)...)
			if err != nil {
				return err
			}
			lastID, err := res.LastInsertId()
			if err != nil {
				return err
			}
			for i, r := range rest[:n] {
				r.id = lastID - int64(n-1-i)
			}
			rest = rest[n:]
			continue
		}
		st, err := b.stmt(ctx, tx, insertPingsSQL[chunkIndex(n)])
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, b.s.args(args)...)
		if err != nil {
			return err
		}
		ids := make([]int64, 0, n)
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) != n {
			return fmt.Errorf("%d pings inserted, %d IDs returned", n, len(ids))
		}
		// One statement assigns its rows ascending IDs in the order of VALUES.
		slices.Sort(ids)
		for i, r := range rest[:n] {
			r.id = ids[i]
		}
		rest = rest[n:]
	}
	return nil
}

// sweep deletes, among the next sweepRows×n pings after the previous
// sweep's end, those with PingsKept newer pings of their heartbeat.
func (b *pingBatcher) sweep(ctx context.Context, tx *sql.Tx, n int, newest int64) error {
	from, to, err := b.sweepSlice(ctx, tx, n, newest)
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
func (b *pingBatcher) sweepSlice(ctx context.Context, tx *sql.Tx, n int, newest int64) (from, to int64, err error) {
	if !b.sweepMu.TryLock() {
		return 0, 0, nil
	}
	defer b.sweepMu.Unlock()
	if b.unswept += n; b.unswept < sweepEvery {
		return 0, 0, nil
	}
	n, b.unswept = b.unswept, 0
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
	b.sweepEnd = to
	if to >= newest {
		b.sweepEnd = 0 // the newest pings reached: the next pass starts from the oldest
	}
	return from, to, nil
}
