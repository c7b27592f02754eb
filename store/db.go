package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// db implements Store over database/sql for both dialects.
type db struct {
	d     dialect
	w     *sql.DB // writes; for SQLite a single connection
	r     *sql.DB // reads; the same pool as w for PostgreSQL
	where string  // what to name in errors: the file or host
	shut  atomic.Bool
	pings pingBatcher // group commit of RecordPing
}

var _ Store = (*db)(nil)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// clean makes a string storable in both databases: PostgreSQL's text refuses
// NUL bytes and invalid UTF-8, so both become U+FFFD, the same way on both.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (s *db) args(args []any) []any {
	for i, a := range args {
		if v, ok := a.(string); ok {
			args[i] = clean(v)
		}
	}
	return args
}

func (s *db) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.q(query), s.args(args)...)
}

func (s *db) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.d.q(query), s.args(args)...)
}

func (s *db) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.d.q(query), s.args(args)...)
}

// wrap names the operation and marks errors that mean "unavailable".
func (s *db) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.shut.Load() && !errors.Is(err, ErrClosed):
		return fmt.Errorf("store: %s: %w", op, ErrClosed)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict),
		errors.Is(err, ErrInvalid), errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		return fmt.Errorf("store: %s: %w", op, err)
	case s.d.unavailable(err):
		return fmt.Errorf("store: %s: %s at %s: %w: %w", op, s.d.name, s.where, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// tx runs fn in a write transaction, committed when fn returns nil.
func (s *db) tx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if s.shut.Load() {
		return fmt.Errorf("store: %s: %w", op, ErrClosed)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	return s.wrap(op, tx.Commit())
}

// read runs fn against the read pool.
func (s *db) read(op string, fn func(q querier) error) error {
	if s.shut.Load() {
		return fmt.Errorf("store: %s: %w", op, ErrClosed)
	}
	return s.wrap(op, fn(s.r))
}

// write runs one statement outside an explicit transaction.
func (s *db) write(ctx context.Context, op string, query string, args ...any) (int64, error) {
	if s.shut.Load() {
		return 0, fmt.Errorf("store: %s: %w", op, ErrClosed)
	}
	res, err := s.exec(ctx, s.w, query, args...)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	return n, s.wrap(op, err)
}

func (s *db) Close() error {
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
		return fmt.Errorf("%s: %w", what, ErrNotFound)
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
