package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// History is how much the store holds besides the instances.
type History struct{ Decisions, Runs, Messages int }

// BigHistory is the history of the scrape row: a long-running assertd's.
var BigHistory = History{Decisions: 1_000_000, Runs: 100_000, Messages: 100_000}

// ScrapeRig is assertd as app.New builds it (1,000 instances, SQLite
// store holding a history), its /metrics served by its handler.
type ScrapeRig struct {
	History History
	Fill    time.Duration // writing the history
	dir     string
	st      store.Store
	a       *app.App
	h       http.Handler
}

// NewScrapeRig writes the history straight into a new SQLite store (one
// transaction per table, rows made by SQLite itself: the bench's only
// shortcut past the store's API), then builds assertd over it and runs one
// evaluation of every assert.
func NewScrapeRig(ctx context.Context, hist History) (_ *ScrapeRig, err error) {
	dir, err := os.MkdirTemp("", "assertd-bench-scrape-")
	if err != nil {
		return nil, err
	}
	r := &ScrapeRig{History: hist, dir: dir}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if _, err = memWorkload(1000).LoadSet(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "assertd.db")
	st, err := sqlite.Open(ctx, path) // creates the schema
	if err != nil {
		return nil, err
	}
	st.Close()
	t0 := time.Now()
	if err := fillHistory(ctx, path, hist); err != nil {
		return nil, err
	}
	r.Fill = time.Since(t0)
	if r.st, err = sqlite.Open(ctx, path); err != nil {
		return nil, err
	}
	r.a, err = app.New(ctx, app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), DataDir: filepath.Join(dir, "data"), Store: r.st,
		Sources: map[string]asserts.Querier{config.EmbeddedName: tenSeries{}}, NoScrape: true, Stdout: io.Discard,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	r.a.Engine().Tick(ctx, EvalTime)
	r.h = r.a.Handler()
	return r, nil
}

// fillHistory inserts hist's rows: decisions acted on, runs succeeded,
// messages delivered (with a payload of a page's size), so that a restart
// owes nothing.
func fillHistory(ctx context.Context, path string, hist History) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	at := EvalTime.Add(-24 * time.Hour).UnixNano()
	stmts := []struct {
		insert string
		rows   int
	}{
		{fmt.Sprintf(`INSERT INTO decisions (idem_key, assert, fingerprint, at, action, remediation, policy, reason, acted_at, run_id)
			SELECT 'd-' || i, 'a' || (i %% 100), printf('%%016x', i), %d + i, 'page', '', 'ops', 'violated: v = 80 > 50', %d + i, ''
			FROM n`, at, at), hist.Decisions},
		{fmt.Sprintf(`INSERT INTO runs (id, remediation, assert, fingerprint, labels, lock_key, decision_key, shadow, status, started, ended, outcome)
			SELECT 'run-' || i, 'fix', 'a' || (i %% 100), printf('%%016x', i), '{"instance":"host-01","job":"bench"}', 'host-01', 'd-' || i, 0,
				'succeeded', %d + i, %d + i + 1000, 'verified'
			FROM n`, at, at), hist.Runs},
		{fmt.Sprintf(`INSERT INTO outbox (idem_key, channel, dedup_key, kind, payload, status, created, next_attempt, attempts, max_attempts,
				last_error, claimed_by, delivered, provider_id)
			SELECT 'm-' || i, 'pager', 'a' || (i %% 100), 'page', printf('{"assert":"a%%d","summary":"host-01 is at 80","labels":{"instance":"host-01","job":"bench"},"reason":"%%s"}', i %% 100, hex(randomblob(256))),
				'delivered', %d + i, %d + i, 1, 10, '', '', %d + i, 'p-' || i
			FROM n`, at, at, at), hist.Messages},
	}
	for _, s := range stmts {
		if s.rows == 0 {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, s.rows) + s.insert
		if _, err := tx.ExecContext(ctx, q); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("filling the history: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	for table, want := range map[string]int{"decisions": hist.Decisions, "runs": hist.Runs, "outbox": hist.Messages} {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("filling the history: %d rows in %s, want %d", n, table, want)
		}
	}
	return nil
}

// Scrape is one GET /metrics through the handler; it returns the body's size.
func (r *ScrapeRig) Scrape() (int, error) {
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.Len(), nil
}

// Close stops assertd and removes the store.
func (r *ScrapeRig) Close() {
	if r.a != nil {
		_ = r.a.Stop(context.Background())
	}
	if r.st != nil {
		r.st.Close()
	}
	os.RemoveAll(r.dir)
}

// ScrapeCost is what the scrape row measured: median scrape times with the
// history and with an empty store, interleaved.
type ScrapeCost struct {
	History     History
	Fill        time.Duration
	Empty, Full time.Duration
}

// MeasureScrape scrapes both rigs rounds times each, alternating.
func MeasureScrape(full, empty *ScrapeRig, rounds int) (ScrapeCost, error) {
	var f, e []time.Duration
	for range rounds {
		for _, x := range []struct {
			r    *ScrapeRig
			into *[]time.Duration
		}{{full, &f}, {empty, &e}} {
			s := time.Now()
			if _, err := x.r.Scrape(); err != nil {
				return ScrapeCost{}, err
			}
			*x.into = append(*x.into, time.Since(s))
		}
	}
	return ScrapeCost{History: full.History, Fill: full.Fill, Empty: median(e), Full: median(f)}, nil
}
