// Package app is the one place assertd is wired together. An App loads the
// configuration, opens the store and the sources, follows the heartbeats,
// runs the engine, the remediation runner and the notification deliverer,
// and serves the HTTP listener. Reload builds a whole new configuration and
// swaps it into every component, or changes nothing; Stop shuts down within
// its context's deadline. cmd/assertd, the demo and the tests all start
// assertd through New.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/alerts/amclient"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/cluster"
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

// Options configure New. Zero values take the defaults of a production run.
type Options struct {
	ConfigPath string
	Listen     string // overrides web.listen; "127.0.0.1:0" in tests
	DataDir    string // overrides data_dir (the demo and tests run in a temporary directory)
	// ExternalURL overrides web.external_url: the UI's URL as people reach
	// it, the base of the links in messages.
	ExternalURL string
	// WebConfigFile is the Prometheus web configuration file
	// (--web.config.file: TLS, basic-auth users), read again when it changes.
	WebConfigFile string
	Logger        *slog.Logger
	// Getenv reads assertd's environment: secrets named by *_env settings,
	// the runner's env_allow. Default os.Getenv.
	Getenv func(string) string
	// ReadFile reads the runner's secret_file settings. Default os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// Clock is the time of every component: the engine's and the
	// deliverer's now, heartbeat pings, the runner's waits. Default the wall
	// clock; *fakeclock.Clock fits.
	Clock remediations.Clock
	// Store, when set, is used instead of opening the configured one; the
	// App does not close it.
	Store store.Store
	// Effects stand in for the external effects of remediation steps.
	Effects remediations.Effects
	// Notifiers replace channels by notifier name.
	Notifiers map[string]notifiers.Notifier
	// RemoteSource, when set, builds the source of each sources.prometheus
	// entry instead of sources.NewRemote; embedded is the embedded TSDB.
	RemoteSource func(p config.Prometheus, embedded asserts.Querier) (asserts.Querier, error)
	// Sources replace sources by name, the embedded one included: the
	// engine queries these instead (benchmarks).
	Sources map[string]asserts.Querier
	// Concurrency bounds the engine's evaluations at once (default 4).
	Concurrency int
	// DeliveryPoll is how often the deliverer looks for due messages when
	// nothing wakes it (default 1s).
	DeliveryPoll time.Duration
	// Stdout is where the console notifier writes. Default os.Stdout.
	Stdout io.Writer
	// Jitter of the deliverer's retry backoff (default random).
	Jitter func() float64
	// AlignEvaluations, when set, evaluates asserts at it and every
	// interval from it, without the per-name phase (assertd test).
	AlignEvaluations time.Time
	// Registerer and Gatherer take and serve the metrics. Default a new
	// registry with the Go and process collectors. A Registerer that is also
	// a Gatherer (a *prometheus.Registry) may come alone.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// ReloadEvery is how often Start checks the files for changes
	// (default 5s; <0: never). SIGHUP always reloads.
	ReloadEvery time.Duration
	// EventEvery is how often the UI's event stream looks for changes
	// (default 1s).
	EventEvery time.Duration
	// NoScrape: the embedded TSDB scrapes no target; whoever drives the App
	// appends its series (assertd test feeds it the input series).
	NoScrape bool
	// NoListener: New builds no HTTP handler and reads no web token, and
	// Start refuses; a driver that needs no listener (assertd test) runs
	// the engine, the runner and the deliverer through the accessors.
	NoListener bool
	// NoRemoteWrite: the Prometheus rule files' recording rules, ALERTS
	// and ALERTS_FOR_STATE stay in the embedded TSDB, whatever
	// prometheus_rules.remote_write says (a replay, whose samples are in
	// the past, writes none anywhere else), and the rules' queries that
	// read only recorded series are run there.
	NoRemoteWrite bool
	// RuleFilesRelative: the Prometheus rule groups are known by their
	// files' paths relative to the configuration's directory, which place
	// their evaluation slots, so that two versions of the rules in two
	// directories evaluate at the same times (a replay's comparison).
	RuleFilesRelative bool
	// Ready, when set, receives the listener's address once Start serves.
	Ready chan<- string
	// Replay runs a replay of the configuration in force of the App over a
	// window of its sources' history, for the UI's replay page; nil: the
	// page says replays are not offered. It is given here because what
	// replays (package replay) builds an App of its own through New.
	Replay func(ctx context.Context, a *App, w web.ReplayWindow) (web.ReplayReport, error)
}

// buildInfoGauge is assertd_build_info: 1, labelled with the binary's
// version, VCS revision and Go version.
func buildInfoGauge(b assertd.BuildInfo) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_build_info",
		Help:        "A metric with a constant 1 labelled by the version, VCS revision and Go version assertd was built with.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion}})
	g.Set(1)
	return g
}

// DefaultListen is the listener's address when the config names none.
const DefaultListen = "127.0.0.1:8080"

// StopTimeout bounds Stop when its context has no deadline.
const StopTimeout = 10 * time.Second

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// App is one assertd: every component, built from one configuration.
type App struct {
	o   Options
	log *slog.Logger
	now func() time.Time

	st      store.Store
	ownSt   bool
	emb     *sources.Embedded
	hb      *heartbeat.Tracker
	feed    *alerts.Feed
	states  *sources.StateRecorder
	del     *notifiers.Deliverer
	runner  *remediations.Runner
	eng     *engine.Engine
	member  *cluster.Member // nil unless the store is shared
	unlock  func() error    // releases the SQLite file's lock; nil when none
	access  *web.Access
	lc      *web.ListenerConfig // nil without --web.config.file
	chatops *web.ChatOps
	handler http.Handler

	// The Prometheus rule files: their evaluator, their groups' last
	// outcomes, and the alert feed as asserts read it (with the rules'
	// failures); how long the rules may stay silent (three intervals of the
	// slowest group).
	rules       *promrules.Evaluator
	ruleAlerts  *ruleAlerts
	ruleFeed    *ruleFeed
	ruleSilence atomic.Int64

	reloadMu sync.Mutex // one reload at a time; closed
	closed   bool       // Stop released the components
	mu       sync.Mutex // set, stamps, bound
	set      *config.Set
	stamps   string // of the files of set, when they were read (see fileStamps)
	bound    string // the listener's address once Start listens

	// Set by Start.
	startMu  sync.Mutex
	started  bool
	stopped  bool
	ln       net.Listener
	srv      *http.Server
	ingestLn net.Listener // web.ingest_listen; nil without
	ingest   *http.Server
	stop     context.CancelFunc
	wg       sync.WaitGroup
	failed   chan error // the first fatal error of a background part
	closeErr error
}

// New loads the configuration and builds every component. Nothing runs
// until Start; Stop releases what New opened. A configuration with errors,
// a secret that cannot be read or a store that cannot be reached is an
// error, and nothing is left open.
func New(ctx context.Context, o Options) (_ *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	if o.ReloadEvery == 0 {
		o.ReloadEvery = 5 * time.Second
	}
	if o.Registerer != nil && o.Gatherer == nil {
		g, ok := o.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("app: a Registerer without a Gatherer: give both")
		}
		o.Gatherer = g
	}
	if o.Registerer == nil {
		if o.Gatherer != nil {
			return nil, errors.New("app: a Gatherer without a Registerer: give both")
		}
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		o.Registerer, o.Gatherer = r, r
	}
	reg := o.Registerer
	if err := reg.Register(buildInfoGauge(assertd.Build())); err != nil {
		return nil, fmt.Errorf("app: build info metric: %w", err)
	}
	a := &App{o: o, log: o.Logger, now: o.Clock.Now, feed: alerts.New(0), failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			if rerr := a.release(); rerr != nil {
				a.log.Warn("releasing what New opened", "err", rerr)
			}
		}
	}()

	set, restored, err := a.loadAndOpen(ctx, reg)
	if err != nil {
		return nil, err
	}
	a.applyOverrides(set)
	a.set, a.stamps = set, fileStamps(set)
	a.logWarnings(set)

	a.member = a.newMember(set, reg)
	if a.emb, err = sources.OpenEmbedded(sources.EmbeddedOptions{
		Dir: sources.TSDBDir(set.DataDir()), Config: set.Config.Sources.Embedded,
		EngineOptions: sources.EngineOptions{Logger: a.log, Registerer: reg},
	}); err != nil {
		return nil, err
	}
	a.states = sources.NewStateRecorder(a.emb.Appendable())
	srcs, err := a.buildSources(set)
	if err != nil {
		return nil, err
	}
	a.newRules()
	nextRules, err := a.prepareRules(set, srcs)
	if err != nil {
		return nil, err
	}
	a.installRules(nextRules, set)
	if a.hb, err = heartbeat.New(ctx, set.Heartbeats, set.Config.Pings, store.HeartbeatStore{Store: a.st},
		heartbeat.Options{Now: a.now, Logger: a.log, LookupEnv: a.lookupEnv}); err != nil {
		return nil, err
	}
	if err = a.hb.Register(reg, a.now); err != nil {
		return nil, err
	}
	// Secrets are read now, so a missing one stops the start.
	if a.del, err = notifiers.New(set.Config, set.Dir(), o.Getenv, notifiers.Options{Store: a.st, Logger: a.log,
		Registerer: reg, Now: a.now, Notifiers: o.Notifiers, Stdout: o.Stdout, Jitter: o.Jitter, Poll: o.DeliveryPoll}); err != nil {
		return nil, err
	}
	// The runner needs the engine (verify, fleet counts, the loaded
	// remediations) and the engine needs the runner: the engine builds it.
	if a.eng, err = engine.New(ctx, engine.Options{Set: set, Store: a.st, Sources: srcs, Heartbeats: a.hb, Now: a.now, Alerts: a.ruleFeed, After: o.Clock.After, Silencer: amclient.Silencer{},
		Logger: a.log, Registerer: reg, Enqueued: a.del.Wake, Concurrency: o.Concurrency, AlignedAt: o.AlignEvaluations,
		Shares: a.shares(), Restored: restored,
		NewRemediator: func(h remediations.Host) engine.Remediator {
			a.runner = remediations.NewRunner(remediations.RunnerOptions{Host: h, Store: a.st, Logger: a.log, Clock: o.Clock,
				Effects: o.Effects, LookupEnv: a.lookupEnv, ReadFile: o.ReadFile, Registerer: reg, ApprovalPoll: a.approvalPoll()})
			return a.runner
		}}); err != nil {
		return nil, err
	}
	if o.NoListener {
		return a, nil
	}
	if a.access, err = web.LoadAccess(set.Config.Web, set.Dir(), o.Getenv); err != nil {
		return nil, err
	}
	if a.chatops, err = web.LoadChatOps(set.Config.Notifiers, set.Dir(), o.Getenv); err != nil {
		return nil, err
	}
	if o.WebConfigFile != "" {
		if a.lc, err = web.LoadListenerConfig(o.WebConfigFile, a.log); err != nil {
			return nil, err
		}
	}
	if _, err := web.CheckListen(a.listenAddr(set), a.access, a.lc); err != nil {
		return nil, err
	}
	if a.handler, err = web.New(web.Deps{
		Engine: a.eng, Store: a.st, Heartbeats: a.hb, Web: set.Config.Web, Access: a.access, Listener: a.lc, ChatOps: a.chatops, ConfigDir: set.Dir(), Getenv: o.Getenv,
		Pings: a.hb.Handler(a.now), Rules: func() any { return a.rules.API() }, RemoteWrite: sources.WriteHandler(a.emb.Appendable(), a.now), Alerts: a.feed, PromAPI: a.emb.PromAPI(a.now),
		Gatherer: o.Gatherer, Registerer: reg, Logger: a.log, Now: a.now, EventEvery: o.EventEvery, Ready: a.ready, Reload: a.Reload,
		Cluster: a.webCluster(), Replay: a.webReplay(),
	}); err != nil {
		return nil, err
	}
	return a, nil
}

// ready is /readyz: the store is there and takes changes.
func (a *App) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.st.Health(ctx); err != nil {
		return err
	}
	if n := a.eng.Held(); n > 0 {
		return fmt.Errorf("the store is unavailable: %d changes held", n)
	}
	if a.member != nil {
		return a.member.Ready()
	}
	return nil
}

// Start listens, serves, and runs the engine, the deliverer and the reload
// watch (SIGHUP, and the files every ReloadEvery) until Stop. It returns
// once the listener serves.
func (a *App) Start(ctx context.Context) error {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	if a.started || a.stopped {
		return errors.New("app: Start after Start or Stop")
	}
	if a.handler == nil {
		return errors.New("app: Start of an App built with NoListener")
	}
	set := a.Set()
	listen := a.listenAddr(set)
	open, err := web.CheckListen(listen, a.access, a.lc)
	if err != nil {
		return err
	}
	srv := web.Server(a.handler)
	srv.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelWarn) // TLS handshake errors among them
	if a.lc != nil {
		if srv.TLSConfig, err = a.lc.TLS(); err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
		if srv.TLSConfig != nil && !a.lc.HTTP2() {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
	}
	var ingest *http.Server
	if il := set.Config.Web.IngestListen; il != "" {
		if _, err := web.CheckListen(il, a.access, a.lc); err != nil {
			return fmt.Errorf("web.ingest_listen: %w", err)
		}
		ingest = web.Server(web.IngestOnly(a.handler))
		ingest.ErrorLog, ingest.TLSNextProto = srv.ErrorLog, srv.TLSNextProto
		if srv.TLSConfig != nil {
			ingest.TLSConfig = srv.TLSConfig.Clone()
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("web listener: %w", err)
	}
	var ingestLn net.Listener
	if ingest != nil {
		if ingestLn, err = net.Listen("tcp", set.Config.Web.IngestListen); err != nil {
			ln.Close()
			return fmt.Errorf("web.ingest_listen: %w", err)
		}
	}
	a.ln, a.srv, a.ingestLn, a.ingest, a.started = ln, srv, ingestLn, ingest, true
	tlsOn := srv.TLSConfig != nil // Serve changes srv.TLSConfig: read it before
	a.mu.Lock()
	a.bound = ln.Addr().String()
	a.mu.Unlock()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	serve := func(what string, srv *http.Server, ln net.Listener) {
		a.goPart(func() error {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
	}
	serve("web listener", srv, ln)
	if ingest != nil {
		serve("web.ingest_listen", ingest, ingestLn)
		a.log.Info("serving ingestion (remote-write, pings) on a second listener", "ingest_listen", ingestLn.Addr().String())
	}
	if a.member != nil {
		if err := a.member.Step(runCtx); err != nil {
			a.log.Warn("joining the cluster", "err", err)
		}
		a.goPart(func() error { return a.member.Run(runCtx) })
	}
	a.goPart(func() error { return a.eng.Run(runCtx) })
	a.rules.Start(runCtx)
	a.goPart(func() error { _ = a.del.Run(runCtx); return nil })
	a.goPart(func() error { a.recordStates(runCtx); return nil })
	hup, stopHUP := notifyHUP()
	a.goPart(func() error { defer stopHUP(); a.watch(runCtx, hup); return nil })
	a.log.Info("assertd running", "listen", ln.Addr().String(), "tls", tlsOn, "asserts", len(set.Asserts), "config", a.o.ConfigPath, "data", set.DataDir())
	if open {
		a.log.Warn("no tokens are configured: listening on loopback only, reads are open, changes and remote-write are refused; " +
			"add web.tokens (or basic_auth_users in --web.config.file) to listen on another address")
	}
	if a.o.Ready != nil {
		a.o.Ready <- ln.Addr().String()
	}
	return nil
}

// goPart runs one background part; its error, the first, ends Wait.
func (a *App) goPart(f func() error) {
	a.wg.Go(func() {
		if err := f(); err != nil {
			select {
			case a.failed <- err:
			default:
			}
		}
	})
}

// Wait blocks until ctx ends or a background part fails (the listener, the
// engine), and returns that failure.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.failed:
		return err
	}
}

// Stop shuts down: the listener, the engine, the deliverer and the reload
// watch stop, the runs in flight stop and record how they ended, then the
// TSDB and the store (when the App opened it) are closed. It waits at most
// until ctx ends (StopTimeout when ctx has no deadline), reporting what did
// not stop in time.
func (a *App) Stop(ctx context.Context) error {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	if a.stopped {
		return a.closeErr
	}
	a.stopped = true
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, StopTimeout)
		defer cancel()
	}
	var errs []error
	if a.started {
		a.stop()
		a.rules.Stop()
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("web shutdown: %w", err))
			a.srv.Close()
		}
		if a.ingest != nil {
			if err := a.ingest.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("web.ingest_listen shutdown: %w", err))
				a.ingest.Close()
			}
		}
		done := make(chan struct{})
		go func() { a.wg.Wait(); a.runner.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("the engine, the deliverer or a remediation run did not stop in time: %w", ctx.Err()))
			a.log.Warn("assertd did not stop in time; closing the store under what still runs")
		}
	} else if a.runner != nil {
		a.runner.Wait()
	}
	if a.member != nil && a.started {
		a.member.Leave() // after the runs' last writes under the shares' fences
	}
	a.reloadMu.Lock() // a reload in flight ends before the store closes
	a.closed = true
	a.reloadMu.Unlock()
	if err := a.release(); err != nil {
		errs = append(errs, err)
	}
	if a.started {
		a.log.Info("assertd stopped")
	}
	a.closeErr = errors.Join(errs...)
	return a.closeErr
}

// release closes what New opened.
func (a *App) release() error {
	var errs []error
	if a.emb != nil {
		if err := a.emb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("embedded TSDB: %w", err))
		}
	}
	if a.ownSt && a.st != nil {
		if err := a.st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	if a.unlock != nil {
		if err := a.unlock(); err != nil {
			errs = append(errs, fmt.Errorf("store lock: %w", err))
		}
		a.unlock = nil
	}
	return errors.Join(errs...)
}

// Run runs assertd until ctx ends or a part of it fails.
func Run(ctx context.Context, o Options) error {
	a, err := New(ctx, o)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		if serr := a.Stop(context.Background()); serr != nil {
			a.log.Warn("stopping after a failed start", "err", serr)
		}
		return err
	}
	err = a.Wait(ctx)
	if serr := a.Stop(context.Background()); serr != nil {
		a.log.Warn("stop", "err", serr)
	}
	return err
}
