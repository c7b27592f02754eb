package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// pruneEvery: a heartbeat's old pings are deleted when one of its pings
// gets an ID divisible by it, so a heartbeat keeps PingsKept pings plus a
// few (Pings never returns more than PingsKept; Compact prunes them all).
// Pruning at every ping cost a quarter of the batch's time.
const pruneEvery = 8

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

// multiRow is an INSERT of n rows of cols placeholders each.
func multiRow(head string, cols, n int, tail string) string {
	var q strings.Builder
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
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

var (
	upsertHeartbeatsSQL [len(pingChunks)]string
	insertPingsSQL      [len(pingChunks)]string // with RETURNING id
	appendPingsSQL      [len(pingChunks)]string // without: see Dialect.LastInsertID
)

func init() {
	for i, n := range pingChunks {
		upsertHeartbeatsSQL[i] = multiRow(`INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created) VALUES `, 9, n, heartbeatConflict)
		insertPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source) VALUES `, 7, n, " RETURNING id")
		appendPingsSQL[i] = multiRow(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source) VALUES `, 7, n, "")
	}
}

var prunePingsSQL = fmt.Sprintf(`DELETE FROM pings WHERE heartbeat = ? AND id <= (
			SELECT id FROM pings WHERE heartbeat = ? ORDER BY id DESC LIMIT 1 OFFSET %d)`, store.PingsKept)

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
	for _, q := range append(append([]string{prunePingsSQL}, upsertHeartbeatsSQL[:]...), inserts...) {
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

// recordPings writes pings and their heartbeats' states, keeping the
// newest PingsKept pings of each heartbeat (see pruneEvery). The states
// and the pings are written by multi-row statements of a few fixed sizes,
// prepared once (see pingChunks): per-statement overhead and parsing, not
// the rows, were most of a batch's time.
func (b *pingBatcher) recordPings(ctx context.Context, tx *sql.Tx, batch []*pingReq) error {
	// The newest state of each heartbeat (a batch holds one ping per
	// heartbeat from the Tracker, but other callers may send several).
	last := make(map[string]int, len(batch))
	names := make([]string, 0, len(batch))
	for i, r := range batch {
		if _, ok := last[r.h.Name]; !ok {
			names = append(names, r.h.Name)
		}
		last[r.h.Name] = i
	}
	args := make([]any, 0, 9*pingChunks[0])
	for rest := names; len(rest) > 0; {
		n := chunk(len(rest))
		st, err := b.stmt(ctx, tx, upsertHeartbeatsSQL[chunkIndex(n)])
		if err != nil {
			return err
		}
		args = args[:0]
		for _, name := range rest[:n] {
			args = append(args, heartbeatArgs(batch[last[name]].h)...)
		}
		if _, err := st.ExecContext(ctx, b.s.args(args)...); err != nil {
			return err
		}
		rest = rest[n:]
	}
	ids := make([]int64, 0, len(batch))
	for rest := batch; len(rest) > 0; {
		n := chunk(len(rest))
		args = args[:0]
		for _, r := range rest[:n] {
			p := r.p
			args = append(args, r.h.Name, string(p.Kind), p.ExitCode, p.RunID, tm(p.At), head(p.Body, store.MaxPingBody), head(p.Source, 256))
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
			for i := range n {
				ids = append(ids, lastID-int64(n-1-i))
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
		from := len(ids)
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
		if len(ids)-from != n {
			return fmt.Errorf("%d pings inserted, %d IDs returned", n, len(ids)-from)
		}
		// One statement assigns its rows ascending IDs in the order of VALUES.
		slices.Sort(ids[from:])
		rest = rest[n:]
	}
	for i, r := range batch {
		r.id = ids[i]
		if r.id%pruneEvery != 0 {
			continue
		}
		st, err := b.stmt(ctx, tx, prunePingsSQL)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, r.h.Name, r.h.Name); err != nil {
			return err
		}
	}
	return nil
}
