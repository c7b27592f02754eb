package app

import (
	"fmt"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources"
)

// listenAddr is the listener's address: Options.Listen, else web.listen,
// else DefaultListen.
func (a *App) listenAddr(set *config.Set) string {
	switch {
	case a.o.Listen != "":
		return a.o.Listen
	case set.Config.Web.Listen != "":
		return set.Config.Web.Listen
	}
	return DefaultListen
}

func (a *App) lookupEnv(k string) (string, bool) {
	v := a.o.Getenv(k)
	return v, v != ""
}

// applyOverrides puts the Options that override the configuration into a
// freshly loaded one.
func (a *App) applyOverrides(set *config.Set) {
	if a.o.DataDir != "" {
		set.Config.DataDir = a.o.DataDir
	}
	if a.o.ExternalURL != "" {
		set.Config.Web.ExternalURL = a.o.ExternalURL
	}
	if a.o.NoScrape {
		set.Config.Sources.Embedded.Targets = nil
	}
}

// buildSources makes the queriers of a configuration: the embedded TSDB and
// one per sources.prometheus entry.
func (a *App) buildSources(set *config.Set) (map[string]asserts.Querier, error) {
	srcs := map[string]asserts.Querier{config.EmbeddedName: a.emb}
	for _, p := range set.Config.Sources.Prometheus {
		if a.o.Sources[p.Name] != nil {
			continue // replaced below
		}
		if a.o.RemoteSource != nil {
			q, err := a.o.RemoteSource(p, a.emb)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", p.Name, err)
			}
			srcs[p.Name] = q
			continue
		}
		r, err := sources.NewRemote(p, set.Dir(), a.o.Getenv) // its errors name the source
		if err != nil {
			return nil, err
		}
		srcs[p.Name] = r
	}
	for name, q := range a.o.Sources {
		srcs[name] = q
	}
	return srcs, nil
}
