package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/internal/sqlstore"
	"github.com/assertd/assertd/store/storetest"
)

// The sweep keeps the pings table near PingsKept pings per heartbeat: a
// busy heartbeat's old pings go, a seldom pinged one's stay.
func TestPingsSwept(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "swept.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := func(name string, i int) {
		t.Helper()
		when := storetest.T0.Add(time.Duration(i) * time.Second)
		if _, err := s.RecordPing(ctx, assertd.HeartbeatRecord{Name: name, Created: storetest.T0}, assertd.Ping{Kind: assertd.PingSuccess, At: when}); err != nil {
			t.Fatal(err)
		}
	}
	rec("monthly", 0)
	const busy, n = 4, 1500
	for i := range n {
		rec(fmt.Sprint("busy-", i%busy), i)
	}
	var rows int
	if err := s.(*db).r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pings`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// Kept: 100 per busy heartbeat and the monthly one; one sweep pass
	// behind at most, as many again.
	if kept := busy*store.PingsKept + 1; rows < kept || rows > 2*kept {
		t.Errorf("%d pings in the table after %d, want %d to %d", rows, n+1, kept, 2*kept)
	}
	if got, err := s.Pings(ctx, "monthly", 0); err != nil || len(got) != 1 {
		t.Errorf("monthly: %d pings, %v", len(got), err)
	}
	if got, err := s.Pings(ctx, "busy-1", 0); err != nil || len(got) != store.PingsKept {
		t.Errorf("busy-1: %d pings, %v", len(got), err)
	}
}

// A database written before pings were chained (schema version 3) keeps
// its pings: they are chained by the migration, newest first, and new pings
// follow them.
func TestPingsMigrated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.MigrateTo(ctx, old, dialect, 3); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO heartbeats (name, start_rid, last_exit, failed, paused) VALUES ('a', '', 0, false, false), ('b', '', 0, false, false)`,
		`INSERT INTO pings (heartbeat, kind, exit_code, rid, at, body, source) VALUES
			('a', 'success', 0, 'a1', 1, '', ''), ('b', 'success', 0, 'b1', 2, '', ''), ('a', 'fail', 1, 'a2', 3, 'oops', ''),
			('a', 'success', 0, 'a3', 4, '', '')`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rids := func(name string) (out []string) {
		t.Helper()
		ps, err := s.Pings(ctx, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			out = append(out, p.RunID)
		}
		return out
	}
	if got := fmt.Sprint(rids("a"), rids("b")); got != "[a3 a2 a1] [b1]" {
		t.Errorf("migrated pings %s, want [a3 a2 a1] [b1]", got)
	}
	if _, err := s.RecordPing(ctx, assertd.HeartbeatRecord{Name: "a", Created: storetest.T0}, assertd.Ping{Kind: assertd.PingStart, RunID: "a4", At: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rids("a")); got != "[a4 a3 a2 a1]" {
		t.Errorf("after a new ping %s, want [a4 a3 a2 a1]", got)
	}
}
