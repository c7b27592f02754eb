package app

import (
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/cluster"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
)

// newMember returns the replica's membership when the store is shared
// (PostgreSQL): the asserts are then split over the live replicas. nil on
// SQLite, where one process owns everything.
func (a *App) newMember(set *config.Set, reg prometheus.Registerer) *cluster.Member {
	cs, ok := a.st.(store.Cluster)
	if !ok || set.Config.Store.Driver != "postgres" {
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
