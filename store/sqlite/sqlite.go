// Package sqlite is the embedded store: store.Store in one SQLite file in
// the data directory (WAL, one writer, a pool of readers), through the pure
// Go driver modernc.org/sqlite.
//
// The store watches its file. A connection keeps using the file it opened
// after the file is removed or replaced, so writes would go to a file that
// no one can open again and a restart would begin from whatever is at the
// path. The store therefore compares the file at the path (and the presence
// of its -wal and -shm files) with the one it opened: before every write,
// on Health, and in the background every second (WithCheckEvery). While
// they differ, every operation fails with an error satisfying
// errors.Is(err, store.ErrUnavailable) that names the path and what to do,
// so the engine holds its changes and actions; this is logged at Error once
// per outage and counted (assertd_store_healthy, assertd_store_outages_total).
// The store is back when the same file (device and inode) is at the path
// again, with its -wal and -shm files present: `mv` it back, or `ln` it.
// A different file at the path is not taken for it: restart assertd to use
// it. The store never creates a database while it runs: connections open
// the file read-write without creating it; only Open creates a missing one.
//
// On open, a store that holds no instance, transition or run, in a
// directory that holds other files (the TSDB, a backup), logs at Warn that
// assertd starts from empty state, naming the file: the database may have
// been removed. A first start in an empty data directory logs at Info.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	checkEvery  time.Duration
	clock       Clock
	log         *slog.Logger
	reg         prometheus.Registerer
}

// WithBusyTimeout sets how long a write waits for another process holding
// the database before failing with store.ErrUnavailable (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithCheckEvery sets how often the file is checked in the background
// (default DefaultCheckEvery; <= 0: only before writes and on Health).
func WithCheckEvery(d time.Duration) Option {
	return func(c *config) { c.checkEvery = d }
}

// WithClock sets the clock the background check waits on (default, or
// nil: the system clock).
func WithClock(clk Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithLogger sets where outages and an empty start are logged (default, or
// nil: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRegisterer registers the store's metrics (default: not registered).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

var dialect = sqlstore.Dialect{
	Name:                "sqlite",
	Serial:              "INTEGER PRIMARY KEY AUTOINCREMENT",
	Blob:                "BLOB",
	Writers:             1,
	LastInsertID:        true,
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
	cfg := config{busyTimeout: 5 * time.Second, readers: 4, checkEvery: DefaultCheckEvery, clock: realClock{}, log: slog.Default()}
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
	// Only Open creates the file: the connections open it with mode=rw, so
	// one opened later (after an error) cannot create an empty database at
	// the path of one that was removed.
	created := false
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			created = true
			if err := f.Close(); err != nil {
				return nil, fmt.Errorf("store: open sqlite %s: %w: %w", abs, store.ErrUnavailable, err)
			}
		case !errors.Is(err, os.ErrExist):
			return nil, fmt.Errorf("store: open sqlite %s: cannot create it: %w: %w", abs, store.ErrUnavailable, err)
		}
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		q.Add("mode", "rw")
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
	if err := warnIfEmpty(ctx, w, abs, created, cfg.log); err != nil {
		return fail(err)
	}
	wt := newWatch(abs, cfg)
	if err := wt.register(cfg.reg); err != nil {
		return fail(err)
	}
	wt.start(cfg.checkEvery)
	return &db{DB: sqlstore.New(sqlstore.Config{Dialect: dialect, W: w, R: r, Where: abs, Check: wt.check}), w: w, r: r, watch: wt}, nil
}

// db is the SQLite store: the shared SQL implementation, the connections it
// runs on and the watch over its file.
type db struct {
	*sqlstore.DB
	w, r  *sql.DB
	watch *watch
}

// Close stops the file check and releases the database.
func (s *db) Close() error {
	s.watch.stop()
	return s.DB.Close()
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
