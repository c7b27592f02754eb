package testpg

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestStartStop(t *testing.T) {
	s := Start(t)
	if got := query(t, s.DSN("postgres"), "SELECT current_setting('listen_addresses')"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1 only", got)
	}
	if got := query(t, s.DSN("postgres"), "SELECT current_setting('unix_socket_directories')"); got != s.Socket {
		t.Errorf("unix_socket_directories = %q, want %q", got, s.Socket)
	}
	dsn, err := s.CreateDB(context.Background(), "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn, "SELECT current_database()"); got != "fresh" {
		t.Errorf("current_database() = %q", got)
	}

	// Halt keeps the data; Resume brings the server back on the same port.
	if err := s.Halt("fast"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Error("connected to a halted server")
	}
	cancel()
	if err := s.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn, "SELECT current_database()"); got != "fresh" {
		t.Errorf("after resume: current_database() = %q", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Stop: %v", s.Root, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Resume(context.Background()); err == nil {
		t.Error("Resume after Stop succeeded")
	}
}

func TestNotInstalled(t *testing.T) {
	_, err := New(context.Background(), Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "PostgreSQL not installed: run make deps (apt-get install postgresql)") {
		t.Errorf("message %q does not say what to do", err)
	}
}

func TestStandby(t *testing.T) {
	primary := Start(t)
	dsn, err := primary.CreateDB(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	standby := Start(t, Options{StandbyOf: primary})
	if got := query(t, standby.DSN("app"), "SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Fatalf("standby pg_is_in_recovery = %s", got)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('replicated')"); err != nil {
		t.Fatal(err)
	}
	// Streaming replication between two real PostgreSQL processes is
	// asynchronous: a bounded poll.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := pgx.Connect(ctx, standby.DSN("app"))
		if err == nil {
			var v string
			err = c.QueryRow(ctx, "SELECT v FROM t").Scan(&v)
			c.Close(ctx)
			if err == nil && v == "replicated" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the row never reached the standby: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Promotion, as a failover test would do it.
	if out, err := standby.Run(ctx, "pg_ctl", "promote", "-D", standby.DataDir, "-w"); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	if got := query(t, standby.DSN("app"), "SELECT pg_is_in_recovery()::text"); got != "false" {
		t.Errorf("after promote, pg_is_in_recovery = %s", got)
	}
}
