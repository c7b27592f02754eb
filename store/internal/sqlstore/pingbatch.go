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

	// With one writer (see counted), a ping this committer wrote can only
	// be swept once its heartbeat had PingsKept pings after it, all written
	// here: until some heartbeat has PingsKept+1 of them, a slice of the
	// table above ownFrom holds nothing to delete and is not swept.
	// With one writer, the committer also keeps each heartbeat's chain end
	// (the row's last_ping_id and ping_seq) as last committed, so that a
	// ping's prev and seq are bound instead of joined from the heartbeat
	// rows; the heartbeats' upsert updates a row only while its ping_seq is
	// the one the committer had (another process writing the database fails
	// the batch, which forgets the ends and is retried ping by ping).
	// Dropped when a transaction fails. Only the committer's goroutine uses it.
	ends map[string]chainEnd

	ownFrom int64          // the first ping ID written here; 0: none yet
	written map[string]int // pings written here per heartbeat, until full
	full    bool           // some heartbeat had more than PingsKept pings written here
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
		if errors.Is(err, errStaleEnd) {
			// Another process wrote pings: once more, from the ends in the database.
			b.ends = nil
			err = b.s.tx(ctx, op, func(tx *sql.Tx) error { return b.recordPings(ctx, tx, batch) })
		}
	}
	if err != nil {
		b.ends = nil
	}
	if err != nil && len(batch) > 1 && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed) {
		for _, r := range batch {
			if r.err = b.s.tx(ctx, "record ping "+r.h.Name, func(tx *sql.Tx) error { return b.recordPings(ctx, tx, []*pingReq{r}) }); r.err != nil {
				b.ends = nil
			}
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
// upserts anyway (or, with one writer, from the chain ends the committer
// keeps: see pingBatcher.ends): there is no index by heartbeat, whose leaves every ping
// dirtied at random (half of the committer's WAL pages and its B-tree work).
// Pings walks the chain from the newest; the sweep deletes the pings that
// have PingsKept newer ones, a slice of the table in ID order per batch.

// chainEnd is the end of a heartbeat's chain: its newest ping (0: none)
// and how many it has had.
type chainEnd struct{ last, seq int64 }

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

// The statements of a committer that knows the chains' ends (see
// pingBatcher.ends): pings with their prev and seq, and the heartbeats'
// upsert that takes the new end only from the row whose ping_seq precedes it.
const (
	boundPingRow     = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	endHeartbeatRow  = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	endHeartbeatTail = heartbeatConflict + `, last_ping_id = excluded.last_ping_id, ping_seq = excluded.ping_seq WHERE heartbeats.ping_seq = excluded.ping_seq - 1`
	chainEndSQL      = `SELECT last_ping_id, ping_seq FROM heartbeats WHERE name = ?`
)

var (
	boundPingsSQL       [len(pingChunks)]string
	endHeartbeatsSQL    [len(pingChunks)]string
	upsertHeartbeatsSQL [len(pingChunks)]string
	insertPingsSQL      [len(pingChunks)]string // with RETURNING id
	appendPingsSQL      [len(pingChunks)]string // without: see Dialect.LastInsertID
)

func init() {
	for i, n := range pingChunks {
		upsertHeartbeatsSQL[i] = multiRow(`INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created, last_ping_id, ping_seq) VALUES `,
			pingHeartbeatRow, n, pingHeartbeatTail)
		boundPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source, prev, seq) VALUES `, boundPingRow, n, "")
		endHeartbeatsSQL[i] = multiRow(`INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created, last_ping_id, ping_seq) VALUES `,
			endHeartbeatRow, n, endHeartbeatTail)
		insertPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source, prev, seq) VALUES `, pingRow, n, " RETURNING id")
		appendPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source, prev, seq)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, h.last_ping_id, COALESCE(h.ping_seq, 0) + 1
			FROM (VALUES `, joinedPingRow, n, `) AS v LEFT JOIN heartbeats h ON h.name = v.column1 ORDER BY v.column8`)
	}
}

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
	if b.bound() {
		inserts = append(append(append([]string{chainEndSQL}, boundPingsSQL[:]...), endHeartbeatsSQL[:]...), inserts...)
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
		names = slices.Compact(names)
		// A heartbeat without a row yet gets one first (waiting for a
		// writer inserting it at the same time), so that the lock below
		// holds every heartbeat of the batch: a row created by another
		// transaction after this one's lock would not be locked, and its
		// pings would fork the chain. The placeholder is overwritten by the
		// upsert before this transaction commits.
		if _, err := tx.ExecContext(ctx, b.s.d.q(`INSERT INTO heartbeats (name, start_rid, last_exit, failed, paused, ping_seq)
			SELECT n, '', 0, false, false, 0 FROM unnest(CAST(? AS TEXT[])) AS n ORDER BY n ON CONFLICT (name) DO NOTHING`), names); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, b.s.d.q(`SELECT name FROM heartbeats WHERE name = ANY(CAST(? AS TEXT[])) ORDER BY name`+b.s.d.ForUpdate), names); err != nil {
			return err
		}
	}
	rest := batch
	var round []*pingReq
	var maxID int64
	args := make([]any, 0, 10*pingChunks[0])
	for len(rest) > 0 {
		round, rest = nextRound(rest)
		if b.bound() {
			if err := b.writeBound(ctx, tx, round, args); err != nil {
				return err
			}
			for _, r := range round {
				maxID = max(maxID, r.id)
			}
			continue
		}
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
	return b.sweep(ctx, tx, batch, maxID)
}

// errStaleEnd: a chain end the committer kept is not the database's (another
// process wrote pings of that heartbeat).
var errStaleEnd = errors.New("pings written by another process meanwhile")

// bound reports whether the committer binds the pings' prev and seq from
// the chain ends it keeps: with one writer whose IDs come from LastInsertId.
func (b *pingBatcher) bound() bool { return b.counted() && b.s.d.LastInsertID }

// writeBound writes one round (pings of distinct heartbeats) with the
// chain ends the committer keeps, reading those it does not have yet, and
// moves the ends on. The heartbeats' upsert leaves a row whose ping_seq
// moved under the committer; a statement that changed fewer rows than it
// wrote fails the batch.
func (b *pingBatcher) writeBound(ctx context.Context, tx *sql.Tx, round []*pingReq, args []any) error {
	if b.ends == nil {
		b.ends = make(map[string]chainEnd)
	}
	for _, r := range round {
		if _, ok := b.ends[r.h.Name]; ok {
			continue
		}
		st, err := b.stmt(ctx, tx, chainEndSQL)
		if err != nil {
			return err
		}
		var last sql.NullInt64
		var end chainEnd
		switch err := st.QueryRowContext(ctx, r.h.Name).Scan(&last, &end.seq); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		}
		end.last = last.Int64
		b.ends[r.h.Name] = end
	}
	for rest := round; len(rest) > 0; {
		n := chunk(len(rest))
		args = args[:0]
		for _, r := range rest[:n] {
			p, end := r.p, b.ends[r.h.Name]
			var prev any
			if end.last != 0 {
				prev = end.last
			}
			args = append(args, r.h.Name, string(p.Kind), p.ExitCode, p.RunID, tm(p.At), head(p.Body, store.MaxPingBody), head(p.Source, 256), prev, end.seq+1)
		}
		lastID, err := b.insertRows(ctx, tx, boundPingsSQL[chunkIndex(n)], args)
		if err != nil {
			return err
		}
		args = args[:0]
		for i, r := range rest[:n] {
			r.id = lastID - int64(n-1-i)
			args = append(appendHeartbeatArgs(args, r.h), r.id, b.ends[r.h.Name].seq+1)
		}
		st, err := b.stmt(ctx, tx, endHeartbeatsSQL[chunkIndex(n)])
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, b.s.args(args)...)
		if err != nil {
			return err
		}
		if changed, err := res.RowsAffected(); err != nil {
			return err
		} else if changed != int64(n) {
			return fmt.Errorf("%d of %d heartbeats: %w", int64(n)-changed, n, errStaleEnd)
		}
		for _, r := range rest[:n] {
			b.ends[r.h.Name] = chainEnd{last: r.id, seq: b.ends[r.h.Name].seq + 1}
		}
		rest = rest[n:]
	}
	return nil
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
			lastID, err := b.insertRows(ctx, tx, appendPingsSQL[chunkIndex(n)], args)
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

// insertRows runs a prepared multi-row INSERT and returns the ID of its
// last row (its rows have consecutive IDs in the order of VALUES).
func (b *pingBatcher) insertRows(ctx context.Context, tx *sql.Tx, query string, args []any) (int64, error) {
	st, err := b.stmt(ctx, tx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, b.s.args(args)...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
