package sqlite_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
	"github.com/assertd/assertd/store/storetest"
)

func TestSQLite(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T, name string) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(dir, name+".db"), sqlite.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestSQLiteOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := sqlite.Open(ctx, "/nonexistent/dir/assertd.db")
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent/dir does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(ctx, garbage)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), garbage) {
		t.Errorf("not a database: %v", err)
	}
	_, err = sqlite.Open(ctx, "")
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty path: %v", err)
	}
}

// Another process holding the database longer than the busy timeout makes
// writes fail with ErrUnavailable; once it lets go, the store works again.
func TestSQLiteLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "locked.db")
	s, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Hold the write lock from "another process" through a long transaction.
	hold := make(chan struct{})
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sqlite.HoldWriteLockForTest(ctx, other, held, hold)
	}()
	<-held
	in := assertd.Instance{Assert: "a", Fingerprint: "f", State: assertd.OK, LastEval: time.Unix(1, 0)}
	err = s.PutInstance(ctx, in)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write while locked: %v, want ErrUnavailable", err)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.PutInstance(ctx, in); err != nil {
		t.Errorf("write after the lock was released: %v", err)
	}
}
