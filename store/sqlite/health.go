package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/store"
)

// Clock is the time the file check reads and waits on.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultCheckEvery is how often the file is looked at in the background.
const DefaultCheckEvery = time.Second

// watched is one of the database's files and what was at its path when the
// store opened it (nil: it did not exist).
type watched struct {
	path, what string
	fi         os.FileInfo
	// exact: the same file must be at the path (the database file). For the
	// -wal and -shm files only their absence counts: SQLite may recreate
	// them once its last connection closed.
	exact bool
}

// watch tells whether the files the store has open are still the ones at
// their paths. A SQLite connection keeps using the file it opened after it
// is removed or replaced: writes would go to a file nobody can open again,
// and a restart would start from whatever is at the path. So while the
// files differ, every operation fails with store.ErrUnavailable.
type watch struct {
	path    string
	files   []watched
	clock   Clock
	log     *slog.Logger
	up      prometheus.Gauge
	outages prometheus.Counter

	mu    sync.Mutex
	down  error // why the store is unavailable; nil while it is not
	since time.Time

	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

func newWatch(path string, cfg config) *watch {
	w := &watch{
		path: path, clock: cfg.clock, log: cfg.log,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_store_healthy",
			Help: "1 while the SQLite store's file at its path is the one assertd has open; 0 while it was removed or replaced (every write is held)."}),
		outages: prometheus.NewCounter(prometheus.CounterOpts{Name: "assertd_store_outages_total",
			Help: "Times the SQLite store's file was found removed or replaced while assertd ran."}),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	w.up.Set(1)
	for _, f := range []watched{
		{path: path, what: "the database file", exact: true},
		{path: path + "-wal", what: "the database's write-ahead log"},
		{path: path + "-shm", what: "the database's shared-memory file"},
	} {
		f.fi, _ = os.Stat(f.path)
		if f.exact || f.fi != nil {
			w.files = append(w.files, f)
		}
	}
	return w
}

func (w *watch) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{w.up, w.outages} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("store: sqlite metrics: %w", err)
		}
	}
	return nil
}

// run looks at the files every interval until stop.
func (w *watch) run(every time.Duration) {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case <-w.clock.After(every):
			_ = w.look()
		}
	}
}

func (w *watch) start(every time.Duration) {
	if every <= 0 {
		close(w.done)
		return
	}
	go w.run(every)
}

func (w *watch) stop() {
	w.stopOnce.Do(func() { close(w.quit) })
	<-w.done
}

// check is the store's guard: before writes and Health it looks at the
// files now, before reads it returns what was seen last.
func (w *watch) check(fresh bool) error {
	if fresh {
		return w.look()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.down
}

// look stats the files, notes a change of state (logged and counted once)
// and returns the current one.
func (w *watch) look() error {
	err := w.stat()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil && w.down == nil:
		w.down, w.since = err, w.clock.Now()
		w.up.Set(0)
		w.outages.Inc()
		w.log.Error("store unavailable: holding every write and every action until the file is back", "path", w.path, "err", err)
	case err == nil && w.down != nil:
		w.log.Warn("store available again: the database file is back; held writes resume", "path", w.path,
			"unavailable_for", w.clock.Now().Sub(w.since).String())
		w.down = nil
		w.up.Set(1)
	case err != nil:
		w.down = err
	}
	return w.down
}

// stat returns nil when every watched file is at its path, or why not.
func (w *watch) stat() error {
	for _, f := range w.files {
		fi, err := os.Stat(f.path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s %s was removed while assertd runs; nothing is written until it is back: "+
				"move the same file back (with its -wal and -shm files if they went too), "+
				"or restart assertd to open what is there then (an empty store if nothing is): %w", f.what, f.path, store.ErrUnavailable)
		case err != nil:
			return fmt.Errorf("%s %s cannot be checked: %w: %w", f.what, f.path, store.ErrUnavailable, err)
		case f.exact && !os.SameFile(fi, f.fi):
			return fmt.Errorf("%s %s was replaced by another file while assertd runs; nothing is written until the one assertd opened is back: "+
				"move that file back, or restart assertd to use the file that is there now: %w", f.what, f.path, store.ErrUnavailable)
		}
	}
	return nil
}

// warnIfEmpty says loudly that assertd starts from empty state when the
// store holds no instance, transition or run but the directory holds other
// files (the TSDB, a backup): the database may have been removed, and every
// instance still violated will be acted on and paged again.
func warnIfEmpty(ctx context.Context, db *sql.DB, path string, created bool, log *slog.Logger) error {
	var used bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM instances) OR EXISTS (SELECT 1 FROM transitions) OR EXISTS (SELECT 1 FROM runs)`).Scan(&used); err != nil {
		return err
	}
	if used {
		return nil
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	base := filepath.Base(path)
	var others []string
	for _, e := range entries {
		if n := e.Name(); n != base && n != base+".lock" && !strings.HasPrefix(n, base+"-") { // .lock: assertd run's own (app)
			others = append(others, n)
		}
	}
	switch {
	case len(others) > 0:
		if len(others) > 5 {
			others = append(others[:5], "…")
		}
		log.Warn("assertd starts from empty state: the store holds no instances, transitions or runs, although its directory holds other state; "+
			"if the database was removed, every instance still violated will be remediated and paged again: "+
			"stop assertd and put the database back if you have it",
			"path", path, "created", created, "beside", strings.Join(others, ", "))
	case created:
		log.Info("store: a new database", "path", path)
	}
	return nil
}
