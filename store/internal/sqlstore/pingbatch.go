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
	err := b.s.tx(ctx, op, func(tx *sql.Tx) error { return b.s.recordPings(ctx, tx, batch) })
	if err != nil && len(batch) > 1 && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed) {
		for _, r := range batch {
			r.err = b.s.tx(ctx, "record ping "+r.h.Name, func(tx *sql.Tx) error { return b.s.recordPings(ctx, tx, []*pingReq{r}) })
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

// recordPings writes pings and their heartbeats' states, keeping the
// newest PingsKept pings of each heartbeat (see pruneEvery). The states
// and the pings are each written by one multi-row statement: per-statement
// overhead, not the rows, was most of a batch's time.
func (s *DB) recordPings(ctx context.Context, tx *sql.Tx, batch []*pingReq) error {
	// The newest state of each heartbeat (a batch holds one ping per
	// heartbeat from the Tracker, but other callers may send several).
	last := map[string]int{}
	var names []string
	for i, r := range batch {
		if _, ok := last[r.h.Name]; !ok {
			names = append(names, r.h.Name)
		}
		last[r.h.Name] = i
	}
	var q strings.Builder
	args := make([]any, 0, 9*len(names))
	q.WriteString(`INSERT INTO heartbeats (name, last_success, last_ping, last_start, start_rid, last_exit, failed, paused, created) VALUES `)
	for i, n := range names {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, heartbeatArgs(batch[last[n]].h)...)
	}
	q.WriteString(heartbeatConflict)
	if _, err := s.exec(ctx, tx, q.String(), args...); err != nil {
		return err
	}

	q.Reset()
	args = args[:0]
	q.WriteString(`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source) VALUES `)
	for i, r := range batch {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		p := r.p
		args = append(args, r.h.Name, string(p.Kind), p.ExitCode, p.RunID, tm(p.At), head(p.Body, store.MaxPingBody), head(p.Source, 256))
	}
	q.WriteString(" RETURNING id")
	rows, err := s.query(ctx, tx, q.String(), args...)
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(batch))
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
	if len(ids) != len(batch) {
		return fmt.Errorf("%d pings inserted, %d IDs returned", len(batch), len(ids))
	}
	// One statement assigns its rows ascending IDs in the order of VALUES.
	slices.Sort(ids)
	for i, r := range batch {
		r.id = ids[i]
		if r.id%pruneEvery != 0 {
			continue
		}
		if _, err := s.exec(ctx, tx, fmt.Sprintf(`DELETE FROM pings WHERE heartbeat = ? AND id <= (
			SELECT id FROM pings WHERE heartbeat = ? ORDER BY id DESC LIMIT 1 OFFSET %d)`, store.PingsKept), r.h.Name, r.h.Name); err != nil {
			return err
		}
	}
	return nil
}
