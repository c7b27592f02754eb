package sources

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// Querier answers instant queries.
type Querier interface {
	Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error)
}

// TSDBDir is where the embedded TSDB lives under a data directory.
func TSDBDir(dataDir string) string { return filepath.Join(dataDir, "tsdb") }

// OpenForEval opens the named source of a loaded set for one-off queries, as
// `assertd eval` does: the embedded TSDB read-only (a running assertd may be
// writing it), a remote source as configured. closeFn releases it.
func OpenForEval(set *config.Set, name string, getenv func(string) string) (q Querier, closeFn func() error, err error) {
	if name == config.EmbeddedName {
		ro, err := OpenReadOnly(TSDBDir(set.DataDir()), EngineOptions{})
		if err != nil {
			return nil, nil, err
		}
		return ro, ro.Close, nil
	}
	if set.Config != nil {
		for _, p := range set.Config.Sources.Prometheus {
			if p.Name == name {
				r, err := NewRemote(p, set.Dir(), getenv)
				if err != nil {
					return nil, nil, fmt.Errorf("%w: %v", assertd.ErrSourceUnavailable, err)
				}
				return r, func() error { return nil }, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("unknown source %q", name)
}
