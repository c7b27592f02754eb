// Package sqlite is the embedded store: store.Store in one SQLite file in
// the data directory (WAL, one writer, a pool of readers), through the pure
// Go driver modernc.org/sqlite.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/internal/sqlstore"
)

// File is the name of the embedded store's file in the data directory.
const File = "assertd.db"

// Option changes how Open opens the database.
type Option func(*config)

type config struct {
	busyTimeout time.Duration
	readers     int
}

// WithBusyTimeout sets how long a write waits for another process holding
// the database before failing with store.ErrUnavailable (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

var dialect = sqlstore.Dialect{
	Name:                "sqlite",
	Serial:              "INTEGER PRIMARY KEY AUTOINCREMENT",
	Writers:             1,
	Unavailable:         unavailable,
	UniqueViolation:     uniqueViolation,
	ForeignKeyViolation: foreignKeyViolation,
}

// Open opens (creating it if needed) the SQLite database at path and
// brings its schema up to date. The database runs in WAL mode with foreign
// keys on; writes go through one connection in immediate transactions, so
// writers queue instead of deadlocking, and reads use a pool of their own.
// The directory must exist: a missing directory is an error, not created.
// The embedded default is filepath.Join(dataDir, File).
func Open(ctx context.Context, path string, opts ...Option) (store.Store, error) {
	cfg := config{busyTimeout: 5 * time.Second, readers: 4}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, fmt.Errorf("store: open sqlite: no path given: %w", store.ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("store: open sqlite %s: directory %s does not exist: create it or set data_dir: %w",
			abs, filepath.Dir(abs), store.ErrUnavailable)
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return (&url.URL{Scheme: "file", OmitHost: true, Path: abs, RawQuery: q.Encode()}).String()
	}
	var w, r *sql.DB
	fail := func(err error) (store.Store, error) {
		if w != nil {
			_ = w.Close()
		}
		if r != nil {
			_ = r.Close()
		}
		if errors.Is(err, store.ErrInvalid) {
			return nil, fmt.Errorf("store: open sqlite %s: %w", abs, err)
		}
		return nil, sqlstore.New(sqlstore.Config{Dialect: dialect, Where: abs}).Wrap("open sqlite "+abs, err)
	}
	// WAL is a property of the file: set it on the writer, once.
	// temp_store MEMORY keeps statement journals (a multi-row INSERT or
	// upsert inside a transaction writes one, to undo just that statement)
	// in memory instead of a temporary file written with pwrite: they are
	// never needed after a crash (the WAL is), so durability is unchanged.
	// It was a tenth of the ping committer's time.
	if w, err = sql.Open("sqlite", dsn("_pragma", "journal_mode(WAL)", "_pragma", "temp_store(MEMORY)", "_txlock", "immediate")); err != nil {
		return fail(err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		return fail(err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail(err)
	}
	if mode != "wal" {
		return fail(fmt.Errorf("journal mode is %q, not wal (is the file on a file system without shared memory?)", mode))
	}
	if err := sqlstore.Migrate(ctx, w, dialect); err != nil {
		return fail(err)
	}
	if r, err = sql.Open("sqlite", dsn("_pragma", "query_only(1)")); err != nil {
		return fail(err)
	}
	r.SetMaxOpenConns(cfg.readers)
	if err := r.PingContext(ctx); err != nil {
		return fail(err)
	}
	return &db{DB: sqlstore.New(sqlstore.Config{Dialect: dialect, W: w, R: r, Where: abs}), w: w, r: r}, nil
}

// db is the SQLite store: the shared SQL implementation and the
// connections it runs on.
type db struct {
	*sqlstore.DB
	w, r *sql.DB
}

func unavailable(err error) bool {
	if sqlstore.CommonUnavailable(err) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

func uniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func foreignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
