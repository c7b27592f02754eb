package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/internal/sqlstore"
	"github.com/assertd/assertd/store/storetest"
)

// A database written before instances had a binary body opens with them.
func TestUpgradeInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testpg.Start(t)
	dsn, err := pg.CreateDB(ctx, "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	old := stdlib.OpenDB(*cfg)
	defer old.Close()
	if err := sqlstore.MigrateTo(ctx, old, dialect, storetest.OldInstancesVersion); err != nil {
		t.Fatal(err)
	}
	storetest.RunUpgrade(t, old, func(t *testing.T) store.Store {
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
