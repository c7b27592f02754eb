package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenPostgres connects to PostgreSQL (a URL or key=value DSN, as libpq
// reads it) and brings the schema up to date; several assertd replicas may
// share one database. A server that cannot be reached is an error that
// satisfies errors.Is(err, ErrUnavailable). Without connect_timeout in the
// DSN, connecting gives up after 10s.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included: do not wrap it.
		return nil, fmt.Errorf("store: open postgres: the DSN is not valid (write postgres://user@host:5432/db or host=… dbname=…): %w", ErrInvalid)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(16)
	pool.SetMaxIdleConns(4)
	pool.SetConnMaxLifetime(30 * time.Minute)
	s := &db{d: postgresDialect, w: pool, r: pool, where: where}
	fail := func(op string, err error) (Store, error) {
		_ = pool.Close()
		if errors.Is(err, ErrInvalid) {
			return nil, fmt.Errorf("store: %s %s: %w", op, where, err)
		}
		if s.d.unavailable(err) {
			return nil, fmt.Errorf("store: %s: cannot reach PostgreSQL at %s: %w: %w", op, where, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("store: %s %s: %w", op, where, err)
	}
	if err := pool.PingContext(ctx); err != nil {
		return fail("open postgres", err)
	}
	if err := migrate(ctx, pool, s.d); err != nil {
		return fail("migrate postgres", err)
	}
	return s, nil
}
