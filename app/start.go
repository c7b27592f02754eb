package app

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// loadAndOpen loads the configuration and opens the store. The store is
// opened from assertd.yaml alone while the rule files are read and
// compiled, and on one replica (a store not shared) the stored instances
// are read at the same time: at a restart with many asserts and instances
// the two are most of the work and independent. The configuration's
// errors come first: with them, what was opened is released by New and
// the store's own error, if any, is not reported.
func (a *App) loadAndOpen(ctx context.Context, reg prometheus.Registerer) (*config.Set, *engine.Restored, error) {
	path := a.o.ConfigPath
	cfg, pos, errs := config.LoadConfig(path)
	if cfg == nil || len(errs) > 0 {
		set, errs := config.Load(path) // every error, the rule files' too
		if len(errs) > 0 {
			return nil, nil, fmt.Errorf("%s has errors (run assertd check):\n%w", path, errs)
		}
		return set, nil, a.openStore(ctx, set, reg)
	}
	// The store is opened from a copy: the rule files' checks fill in
	// the config (positions of heartbeats) meanwhile.
	c := *cfg
	pre := &config.Set{ConfigPath: path, Config: &c}
	a.applyOverrides(pre)

	type loaded struct {
		set  *config.Set
		errs strictyaml.Errors
	}
	rules := make(chan loaded, 1)
	go func() {
		var l loaded
		files, ferrs := config.ConfigFiles(path, cfg, pos)
		l.errs.Append(ferrs)
		set, serrs := config.LoadRules(path, cfg, pos, files)
		l.errs.Append(serrs)
		l.set, l.errs = set, l.errs.Sort()
		rules <- l
	}()
	var restored *engine.Restored
	err := a.openStore(ctx, pre, reg)
	if err == nil && !shared(a.st) {
		if restored, err = engine.ReadInstances(ctx, a.st); err != nil {
			err = fmt.Errorf("loading instances: %w", err)
		}
	}
	l := <-rules
	if len(l.errs) > 0 {
		return nil, nil, fmt.Errorf("%s has errors (run assertd check):\n%w", path, l.errs)
	}
	return l.set, restored, err
}

// openStore opens the store of set unless Options gave one.
func (a *App) openStore(ctx context.Context, set *config.Set, reg prometheus.Registerer) (err error) {
	if a.o.Store != nil {
		a.st = a.o.Store
		return nil
	}
	if set.Config.Store.Driver != "postgres" {
		if a.unlock, err = lockSQLite(set); err != nil {
			return err
		}
	}
	if a.st, err = OpenStore(ctx, set, a.o.Getenv, sqlite.WithLogger(a.log), sqlite.WithRegisterer(reg)); err != nil {
		return err
	}
	a.ownSt = true
	return nil
}

// shared reports whether st is shared by several replicas (newMember).
func shared(st store.Store) bool {
	sh, ok := st.(interface{ Shared() bool })
	return ok && sh.Shared()
}
