package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/internal/sqlstore"
	"github.com/assertd/assertd/store/storetest"
)

// A database written before instances had a binary body opens with them.
func TestUpgradeInstances(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := sqlstore.MigrateTo(ctx, old, dialect, storetest.OldInstancesVersion); err != nil {
		t.Fatal(err)
	}
	storetest.RunUpgrade(t, old, func(t *testing.T) store.Store {
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, path, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
