package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/internal/sqlstore"
)

func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "schema.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var v, n int
	if err := s.(*db).r.QueryRowContext(ctx, `SELECT MAX(version), COUNT(*) FROM schema_version`).Scan(&v, &n); err != nil {
		t.Fatal(err)
	}
	if v != sqlstore.SchemaVersion || n != sqlstore.SchemaVersion {
		t.Errorf("schema version %d (%d rows), want %d", v, n, sqlstore.SchemaVersion)
	}
	var mode string
	if err := s.(*db).r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q %v", mode, err)
	}
	var fk int
	if err := s.(*db).w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign keys %d %v", fk, err)
	}
	// A database written by a newer assertd is refused, clearly.
	if _, err := s.(*db).w.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "schema version 99, newer than this assertd knows") {
		t.Errorf("newer schema: %v", err)
	}
}
