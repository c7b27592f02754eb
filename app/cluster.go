package app

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/cluster"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// newMember returns the replica's membership when the store in use is
// shared (PostgreSQL): the asserts are then split over the live replicas.
// nil on SQLite, where one process owns everything — also when the
// configuration names PostgreSQL but the store given in Options is not
// (assertd test runs a PostgreSQL configuration on a private SQLite).
func (a *App) newMember(set *config.Set, reg prometheus.Registerer) *cluster.Member {
	cs, ok := a.st.(store.Cluster)
	sh, shareable := a.st.(interface{ Shared() bool })
	if !ok || !shareable || !sh.Shared() {
		return nil
	}
	c := set.Config.Cluster
	name := c.Name
	if name == "" {
		name, _ = os.Hostname()
		name = strings.ReplaceAll(name, " ", "-")
	}
	addr := c.Address
	if addr == "" {
		addr = a.listenAddr(set)
	}
	return cluster.New(cluster.Options{
		Store: cs, Name: name, Address: addr, Lease: c.Lease.Std(), Renew: c.Renew.Std(),
		Shares: func() []string {
			s := a.Set()
			names := make([]string, 0, len(s.Asserts))
			for _, x := range s.Asserts {
				names = append(names, x.Name)
			}
			return names
		},
		Changed: func() {
			if a.eng != nil {
				a.eng.SharesChanged()
			}
		},
		Clock: a.o.Clock, Logger: a.log.With("replica", name), Registerer: reg,
	})
}

// shares is the membership as the engine sees it (nil when none).
func (a *App) shares() engine.Shares {
	if a.member == nil {
		return nil
	}
	return a.member
}

// Cluster is the replica's membership, nil when the store is not shared.
func (a *App) Cluster() *cluster.Member { return a.member }

var errLocked = errors.New("in use")

// lockSQLite refuses to run a second assertd on one SQLite file: SQLite is
// one process's store (several replicas share PostgreSQL).
func lockSQLite(set *config.Set) (func() error, error) {
	path, err := sqlitePath(set)
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(path + ".lock")
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("store: another assertd is running on the SQLite file %s: %w; SQLite is one process's store: "+
			"stop the other one, give this one its own data_dir, or run several replicas on PostgreSQL (store: {driver: postgres}, see docs/HA.md)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: locking the SQLite file %s: %w", path, err)
	}
	return unlock, nil
}

// approvalPoll is how often a run waiting for an approval reads it from the
// store: with replicas, an approval may be given on another one.
func (a *App) approvalPoll() time.Duration {
	if a.member == nil {
		return 0
	}
	return 2 * time.Second
}

// webCluster is the membership as the web layer shows it (nil when none).
func (a *App) webCluster() web.Cluster {
	if a.member == nil {
		return nil
	}
	return a.member
}
