package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
	"github.com/assertd/assertd/store/storetest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := testpg.Start(t)
	var mu sync.Mutex
	dsns := map[string]string{}
	storetest.Run(t, func(t *testing.T, name string) store.Store {
		ctx := context.Background()
		mu.Lock()
		dsn, ok := dsns[name]
		if !ok {
			var err error
			if dsn, err = pg.CreateDB(ctx, name); err != nil {
				mu.Unlock()
				t.Fatal(err)
			}
			dsns[name] = dsn
		}
		mu.Unlock()
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// PostgreSQL stops while assertd runs: calls fail with ErrUnavailable (so
// the engine holds its actions), and work again once it is back.
func TestPostgresUnavailable(t *testing.T) {
	t.Parallel()
	pg := testpg.Start(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := assertd.Instance{Assert: "a", Fingerprint: "f", State: assertd.OK, LastEval: storetest.T0}
	if err := s.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := pg.Halt("fast"); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("health while stopped: %v, want ErrUnavailable", err)
	}
	_, err = s.Instances(ctx, "")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("read while stopped: %v, want ErrUnavailable", err)
	}
	_, err = s.Commit(ctx, store.Change{Key: "k", Instance: &in})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("commit while stopped: %v, want ErrUnavailable", err)
	}
	_, err = s.Claim(ctx, "d", storetest.T0, time.Minute, 10)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("claim while stopped: %v, want ErrUnavailable", err)
	}
	_, err = postgres.Open(ctx, pg.DSN("postgres"))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), fmt.Sprintf("cannot reach PostgreSQL at 127.0.0.1:%d", pg.Port)) {
		t.Errorf("open while stopped: %v", err)
	}

	if err := pg.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("health after the server came back: %v", err)
	}
	if _, err := s.Commit(ctx, store.Change{Key: "k", Instance: &in}); err != nil {
		t.Errorf("commit after the server came back: %v", err)
	}
	if all, err := s.Instances(ctx, ""); err != nil || len(all) != 1 {
		t.Errorf("read after the server came back: %v %v", all, err)
	}
}

func TestPostgresOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := postgres.Open(ctx, "postgres://u:s3cret@host:notaport/db")
	if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad DSN: %v (must be ErrInvalid and never show the password)", err)
	}
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	start := time.Now()
	_, err = postgres.Open(ctx, fmt.Sprintf("postgres://assertd@127.0.0.1:%d/assertd?connect_timeout=2", port))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach PostgreSQL") {
		t.Errorf("nothing listening: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
}
