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

// Pings written before a restart are swept by the pings written after it:
// the committer leaves only its own pings alone while no heartbeat has had
// more than PingsKept of them.
func TestPingsSweptAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "restart.db")
	i := 0
	rec := func(s store.Store, name string) {
		t.Helper()
		i++
		when := storetest.T0.Add(time.Duration(i) * time.Second)
		if _, err := s.RecordPing(ctx, assertd.HeartbeatRecord{Name: name, Created: storetest.T0}, assertd.Ping{Kind: assertd.PingSuccess, At: when}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for range store.PingsKept {
		rec(s, "a")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range store.PingsKept {
		rec(s, "a")
	}
	for j := range 600 {
		rec(s, fmt.Sprint("other-", j))
	}
	var rows int
	if err := s.(*db).r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pings WHERE heartbeat = 'a'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != store.PingsKept {
		t.Errorf("%d pings of a in the table after %d, want %d", rows, 2*store.PingsKept, store.PingsKept)
	}
	got, err := s.Pings(ctx, "a", 0)
	if err != nil || len(got) != store.PingsKept || !got[0].At.Equal(storetest.T0.Add(2*store.PingsKept*time.Second)) {
		t.Errorf("a: %d pings, %v", len(got), err)
	}
}

// A ping follows the one before it in its heartbeat's chain even when
// another process wrote that one: the committer's kept chain end is found
// stale and the ping written after the other's.
func TestPingsChainedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	open := func() store.Store {
		t.Helper()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	one, other := open(), open()
	i := 0
	rec := func(s store.Store) {
		t.Helper()
		i++
		if _, err := s.RecordPing(ctx, assertd.HeartbeatRecord{Name: "a", Created: storetest.T0},
			assertd.Ping{Kind: assertd.PingSuccess, At: storetest.T0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []store.Store{one, one, other, other, one, other, one} {
		rec(s)
	}
	got, err := one.Pings(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != i {
		t.Fatalf("%d pings of a, want %d", len(got), i)
	}
	for j, p := range got {
		if want := storetest.T0.Add(time.Duration(i-j) * time.Second); !p.At.Equal(want) {
			t.Errorf("ping %d at %s, want %s (newest first)", j, p.At, want)
		}
	}
	var seq int
	if err := one.(*db).r.QueryRowContext(ctx, `SELECT ping_seq FROM heartbeats WHERE name = 'a'`).Scan(&seq); err != nil || seq != i {
		t.Errorf("ping_seq %d, %v; want %d", seq, err, i)
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
