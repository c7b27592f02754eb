package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
	"github.com/assertd/assertd/store/sqlite"
)

// OpenStore opens the configured store: SQLite under the data dir by
// default (with opts), or PostgreSQL. An unreachable store is an error that
// says which.
func OpenStore(ctx context.Context, set *config.Set, getenv func(string) string, opts ...sqlite.Option) (store.Store, error) {
	c := set.Config.Store
	if c.Driver == "postgres" {
		dsn := ""
		if c.DSNEnv != "" {
			dsn = getenv(c.DSNEnv)
			if dsn == "" {
				return nil, fmt.Errorf("store: dsn_env names $%s, which is empty or unset", c.DSNEnv)
			}
		} else {
			b, err := os.ReadFile(resolve(set, c.DSNFile))
			if err != nil {
				return nil, fmt.Errorf("store: dsn_file: %w", err)
			}
			dsn = strings.TrimSpace(string(b))
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	path, err := sqlitePath(set)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

func resolve(set *config.Set, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(set.Dir(), p)
}

// The tracker keeps its state in the store.
var (
	_ heartbeat.Store        = store.HeartbeatStore{}
	_ heartbeat.PingRecorder = store.HeartbeatStore{}
)

// sqlitePath is the SQLite file of the configuration: store.path (relative
// to the config file) or the file in the data directory, which it creates.
func sqlitePath(set *config.Set) (string, error) {
	if p := set.Config.Store.Path; p != "" {
		return resolve(set, p), nil
	}
	if err := os.MkdirAll(set.DataDir(), 0o755); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return filepath.Join(set.DataDir(), sqlite.File), nil
}
