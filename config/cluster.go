package config

import (
	"strings"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// Cluster configures the replica when several share a PostgreSQL store.
type Cluster struct {
	Name     string           `yaml:"name" jsonschema_description:"The replica's name (default the host name); its ID adds a random suffix per process."`
	Address  string           `yaml:"address" jsonschema_description:"Where operators reach this replica, shown on the cluster page (default the listen address)."`
	Lease    assertd.Duration `yaml:"lease" jsonschema_description:"How long a replica's lease lasts without renewal: a dead replica's asserts move after it (default 10s)."`
	Renew    assertd.Duration `yaml:"renew" jsonschema_description:"How often the lease is renewed and the shares rebalanced (default 2s); at most a third of lease."`
	Replicas int              `yaml:"replicas" jsonschema:"minimum=1" jsonschema_description:"How many replicas run (default 1); more than 1 needs store.driver postgres and a metrics source every replica shares."`
}

// validateCluster checks the cluster block on its own.
func validateCluster(c *Config, p *strictyaml.Positions) strictyaml.Errors {
	var errs strictyaml.Errors
	at := p.Of
	cl := c.Cluster
	if cl.Lease < 0 || cl.Lease == 0 && p.Has("cluster", "lease") {
		errs.Add(at("cluster", "lease"), "cluster.lease must be more than 0s, such as lease: 10s")
	}
	if cl.Renew < 0 || cl.Renew == 0 && p.Has("cluster", "renew") {
		errs.Add(at("cluster", "renew"), "cluster.renew must be more than 0s, such as renew: 2s")
	}
	lease, renew := cl.Lease, cl.Renew
	if lease <= 0 {
		lease = assertd.Duration(10e9)
	}
	if renew <= 0 {
		renew = assertd.Duration(2e9)
	}
	if cl.Lease >= 0 && cl.Renew >= 0 && 3*renew > lease {
		errs.Add(at("cluster", "renew"), "cluster.renew (%s) must be at most a third of cluster.lease (%s), so that one late renewal does not lose the lease; such as lease: 10s, renew: 2s", renew, lease)
	}
	if cl.Replicas < 0 || cl.Replicas == 0 && p.Has("cluster", "replicas") {
		errs.Add(at("cluster", "replicas"), "cluster.replicas must be at least 1")
	}
	if cl.Replicas > 1 && c.Store.Driver != "postgres" {
		errs.Add(at("cluster", "replicas"), "%d replicas need a store they share: write store: {driver: postgres, dsn_env: …}; SQLite is one process's file", cl.Replicas)
	}
	return errs
}

// crossCluster refuses several replicas that would each see different
// metrics: the embedded TSDB is per replica, and remote-write reaches one.
func crossCluster(set *Set, p *strictyaml.Positions) strictyaml.Errors {
	var errs strictyaml.Errors
	cfg := set.Config
	if cfg == nil || cfg.Cluster.Replicas <= 1 || len(cfg.Sources.Embedded.Targets) > 0 {
		return errs
	}
	var embedded []string
	for _, a := range set.Asserts {
		if len(a.QueryNames()) > 0 && set.SourceName(a) == EmbeddedName {
			embedded = append(embedded, a.Name)
		}
	}
	if len(embedded) == 0 {
		return errs
	}
	if len(embedded) > 3 {
		embedded = append(embedded[:3], "…")
	}
	errs.Add(p.Of("cluster", "replicas"), "%d replicas cannot share the embedded TSDB: each replica has its own, and remote-write reaches only one, "+
		"so the replicas would judge different data (asserts on it: %s); add a Prometheus-compatible source every replica queries "+
		"(sources.prometheus: a Prometheus pair, Thanos, Mimir, VictoriaMetrics) and make it sources.default, "+
		"or have every replica scrape the same targets (sources.embedded.targets)", cfg.Cluster.Replicas, strings.Join(embedded, ", "))
	return errs
}
