package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// SQLiteFile is the name of the embedded store's file in the data directory.
const SQLiteFile = "assertd.db"

// SQLiteOption changes how OpenSQLite opens the database.
type SQLiteOption func(*sqliteConfig)

type sqliteConfig struct {
	busyTimeout time.Duration
	readers     int
}

// WithBusyTimeout sets how long a write waits for another process holding
// the database before failing with ErrUnavailable (default 5s).
func WithBusyTimeout(d time.Duration) SQLiteOption {
	return func(c *sqliteConfig) { c.busyTimeout = d }
}

// OpenSQLite opens (creating it if needed) the SQLite database at path and
// brings its schema up to date. The database runs in WAL mode with foreign
// keys on; writes go through one connection in immediate transactions, so
// writers queue instead of deadlocking, and reads use a pool of their own.
// The directory must exist: a missing directory is an error, not created.
// The embedded default is filepath.Join(dataDir, SQLiteFile).
func OpenSQLite(ctx context.Context, path string, opts ...SQLiteOption) (Store, error) {
	cfg := sqliteConfig{busyTimeout: 5 * time.Second, readers: 4}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, fmt.Errorf("store: open sqlite: no path given: %w", ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("store: open sqlite %s: directory %s does not exist: create it or set data_dir: %w",
			abs, filepath.Dir(abs), ErrUnavailable)
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
	s := &db{d: sqliteDialect, where: abs}
	fail := func(err error) (Store, error) {
		if s.w != nil {
			_ = s.w.Close()
		}
		if s.r != nil {
			_ = s.r.Close()
		}
		if errors.Is(err, ErrInvalid) {
			return nil, fmt.Errorf("store: open sqlite %s: %w", abs, err)
		}
		return nil, s.wrap("open sqlite "+abs, err)
	}
	// WAL is a property of the file: set it on the writer, once.
	// temp_store MEMORY keeps statement journals (a multi-row INSERT or
	// upsert inside a transaction writes one, to undo just that statement)
	// in memory instead of a temporary file written with pwrite: they are
	// never needed after a crash (the WAL is), so durability is unchanged.
	// It was a tenth of the ping committer's time.
	if s.w, err = sql.Open("sqlite", dsn("_pragma", "journal_mode(WAL)", "_pragma", "temp_store(MEMORY)", "_txlock", "immediate")); err != nil {
		return fail(err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		return fail(err)
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail(err)
	}
	if mode != "wal" {
		return fail(fmt.Errorf("journal mode is %q, not wal (is the file on a file system without shared memory?)", mode))
	}
	if err := migrate(ctx, s.w, s.d); err != nil {
		return fail(err)
	}
	if s.r, err = sql.Open("sqlite", dsn("_pragma", "query_only(1)")); err != nil {
		return fail(err)
	}
	s.r.SetMaxOpenConns(cfg.readers)
	if err := s.r.PingContext(ctx); err != nil {
		return fail(err)
	}
	return s, nil
}
