// Package sqlstore is store.Store over database/sql, written once for
// every database: the schema and its migrations, the queries, the group
// commit of pings and the mapping of driver errors onto the store's errors.
// The driver packages (store/sqlite, store/postgres) give it a Dialect and
// their connections, and may guard every operation (Config.Check).
//
// The store never reads the clock: callers pass every time. Times are
// stored as UTC Unix microseconds, so a time with microsecond precision
// round-trips exactly (finer precision is truncated).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/assertd/assertd/store"
)

// DB implements store.Store over database/sql for every dialect.
type DB struct {
	d     Dialect
	w     *sql.DB // writes; for SQLite a single connection
	r     *sql.DB // reads; the same pool as w for PostgreSQL
	where string  // what to name in errors: the file or host
	check func(fresh bool) error
	shut  atomic.Bool
	pings pingBatcher // group commit of RecordPing
}

var _ store.Store = (*DB)(nil)

// Config is what a driver gives New.
type Config struct {
	Dialect Dialect
	// W takes the writes (for SQLite a single connection); R the reads (it
	// may be W, or nil for W).
	W, R *sql.DB
	// Where names the database in errors: the file or the host.
	Where string
	// Check, when set, runs before every operation; its error is returned
	// instead (wrapped with the operation's name). A driver uses it to refuse
	// work on a database it knows is unusable. fresh is true before writes
	// and Health (look now), false before reads (what was last seen will do).
	Check func(fresh bool) error
}

// New returns the store over c's connections; Close closes them. The schema
// must be up to date (Migrate).
func New(c Config) *DB {
	if c.R == nil {
		c.R = c.W
	}
	if c.Dialect.Writers <= 0 {
		c.Dialect.Writers = 1
	}
	return &DB{d: c.Dialect, w: c.W, r: c.R, where: c.Where, check: c.Check}
}

// Health reports whether the store can be used now: nil, or an error
// satisfying errors.Is(err, store.ErrUnavailable) (or store.ErrClosed) that
// says why.
func (s *DB) Health(ctx context.Context) error {
	if err := s.guard("health", true); err != nil {
		return err
	}
	var one int
	return s.wrap("health", s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}

// Wrap names the operation op and marks the errors that mean the database is
// unavailable, as the store's own errors are; drivers use it for errors
// while opening.
func (s *DB) Wrap(op string, err error) error { return s.wrap(op, err) }

// guard refuses the operation when the store is closed or Check fails.
func (s *DB) guard(op string, fresh bool) error {
	if s.shut.Load() {
		return fmt.Errorf("store: %s: %w", op, store.ErrClosed)
	}
	if s.check != nil {
		if err := s.check(fresh); err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
	}
	return nil
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// clean makes a string storable in both databases: PostgreSQL's text refuses
// NUL bytes and invalid UTF-8, so both become U+FFFD, the same way on both.
func clean(s string) string {
	if isClean(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (s *DB) args(args []any) []any {
	for i, a := range args {
		if v, ok := a.(string); ok && !isClean(v) {
			args[i] = clean(v) // only then: storing a string in an any allocates
		}
	}
	return args
}

// isClean reports whether s is stored as it is (see clean).
func isClean(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func (s *DB) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.q(query), s.args(args)...)
}

func (s *DB) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.d.q(query), s.args(args)...)
}

func (s *DB) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.d.q(query), s.args(args)...)
}

// wrap names the operation and marks errors that mean "unavailable".
func (s *DB) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.shut.Load() && !errors.Is(err, store.ErrClosed):
		return fmt.Errorf("store: %s: %w", op, store.ErrClosed)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrFenced), errors.Is(err, context.Canceled):
		return fmt.Errorf("store: %s: %w", op, err)
	case s.d.Unavailable(err):
		return fmt.Errorf("store: %s: %s at %s: %w: %w", op, s.d.Name, s.where, store.ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// tx runs fn in a write transaction, committed when fn returns nil.
func (s *DB) tx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if err := s.guard(op, true); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := s.checkFence(ctx, tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	return s.wrap(op, tx.Commit())
}

// read runs fn against the read pool.
func (s *DB) read(op string, fn func(q querier) error) error {
	if err := s.guard(op, false); err != nil {
		return err
	}
	return s.wrap(op, fn(s.r))
}

// write runs one statement outside an explicit transaction.
func (s *DB) write(ctx context.Context, op string, query string, args ...any) (int64, error) {
	if err := s.guard(op, true); err != nil {
		return 0, err
	}
	if _, fenced := store.FenceOf(ctx); fenced {
		var n int64
		err := s.tx(ctx, op, func(tx *sql.Tx) error {
			res, err := s.exec(ctx, tx, query, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		return n, err
	}
	res, err := s.exec(ctx, s.w, query, args...)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	return n, s.wrap(op, err)
}

func (s *DB) Close() error {
	if s.shut.Swap(true) {
		return nil
	}
	s.pings.stop()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func limit(n int) int {
	if n <= 0 {
		return 1000
	}
	return n
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return err
}

// where builds a WHERE clause from the conditions whose value is set.
type where struct {
	conds []string
	args  []any
}

func (w *where) eq(col string, v string) {
	if v != "" {
		w.conds = append(w.conds, col+" = ?")
		w.args = append(w.args, v)
	}
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
