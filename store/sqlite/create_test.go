package sqlite

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A connection opened after the file was removed (the pool replaces one,
// or grows) fails instead of creating an empty database at the path.
func TestNewConnectionNeverCreatesTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), File)
	s, err := Open(ctx, path, WithLogger(slog.New(slog.DiscardHandler)), WithCheckEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + f); err != nil {
			t.Fatal(err)
		}
	}
	// Take as many readers as the pool holds: all but the idle one are new.
	r := s.(*db).r
	var errs []error
	for range r.Stats().MaxOpenConnections {
		c, err := r.Conn(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.PingContext(ctx); err != nil {
			errs = append(errs, err)
		}
		defer c.Close()
	}
	if len(errs) == 0 {
		t.Error("every new connection opened a removed database")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a connection created %s: %v", path, err)
	}
}
