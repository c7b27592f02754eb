package app

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/sources/promrules"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// Addr is the listener's address ("" before Start).
func (a *App) Addr() string {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// IngestAddr is the address of web.ingest_listen ("" before Start or
// without it).
func (a *App) IngestAddr() string {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	if a.ingestLn == nil {
		return ""
	}
	return a.ingestLn.Addr().String()
}

// Set is the configuration in force.
func (a *App) Set() *config.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.set
}

// Handler is the HTTP handler Start serves (API, UI, pings, metrics); nil
// with NoListener.
func (a *App) Handler() http.Handler { return a.handler }

// Engine is the engine (tests drive it with Tick and EvaluateNow).
func (a *App) Engine() *engine.Engine { return a.eng }

// Store is the store in use.
func (a *App) Store() store.Store { return a.st }

// Embedded is the embedded TSDB (tests append series to it).
func (a *App) Embedded() *sources.Embedded { return a.emb }

// Heartbeats is the heartbeat tracker.
func (a *App) Heartbeats() *heartbeat.Tracker { return a.hb }

// Runner is the remediation runner (tests wait for its runs).
func (a *App) Runner() *remediations.Runner { return a.runner }

// Deliverer is the notification deliverer (tests call DeliverDue).
func (a *App) Deliverer() *notifiers.Deliverer { return a.del }

// Gatherer serves the metrics.
func (a *App) Gatherer() prometheus.Gatherer { return a.o.Gatherer }

// Alerts is the alert feed that alert-triggered asserts read.
func (a *App) Alerts() *alerts.Feed { return a.feed }

// Rules is the evaluator of the Prometheus rule files (built by New, run by
// Start; a driver without a listener may run it itself).
func (a *App) Rules() *promrules.Evaluator { return a.rules }

// Getenv reads the environment as the App does (the secrets named by
// *_env settings).
func (a *App) Getenv(key string) string { return a.o.Getenv(key) }

// ConfigChanged reports whether the files of the configuration in force
// have changed since they were read: a reload is due, or was refused.
func (a *App) ConfigChanged() bool {
	a.mu.Lock()
	set, stamps := a.set, a.stamps
	a.mu.Unlock()
	return fileStamps(set) != stamps
}

// webReplay is Options.Replay for the web layer, nil without it.
func (a *App) webReplay() web.Replay {
	if a.o.Replay == nil {
		return nil
	}
	return func(ctx context.Context, w web.ReplayWindow) (web.ReplayReport, error) { return a.o.Replay(ctx, a, w) }
}
