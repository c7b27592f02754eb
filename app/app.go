// Package app wires assertd together: it loads the configuration, opens the
// store and the sources, follows the heartbeats, runs the engine and serves
// the HTTP listener, reloads on SIGHUP or when a file changes, and shuts
// down gracefully. cmd/assertd calls Run; tests run the whole thing
// in-process on 127.0.0.1:0 with a temporary directory.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
	"github.com/assertd/assertd/store/sqlite"
	"github.com/assertd/assertd/web"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Listen     string // overrides web.listen; "127.0.0.1:0" in tests
	Logger     *slog.Logger
	Getenv     func(string) string
	// Ready, when set, receives the address the listener serves on.
	Ready chan<- string
	// ReloadEvery is how often files are checked for changes (default 5s; <0: never).
	ReloadEvery time.Duration
	// DataDir overrides data_dir (the demo runs in a temporary directory).
	DataDir string
}

// DefaultListen is the listener's address when the config names none.
const DefaultListen = "127.0.0.1:8080"

// Run runs assertd until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	log := o.Logger
	set, errs := config.Load(o.ConfigPath)
	if len(errs) > 0 {
		return fmt.Errorf("%s has errors (run assertd check):\n%w", o.ConfigPath, errs)
	}
	if o.DataDir != "" {
		set.Config.DataDir = o.DataDir
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := OpenStore(ctx, set, o.Getenv, sqlite.WithLogger(log), sqlite.WithRegisterer(reg))
	if err != nil {
		return err
	}
	defer st.Close()

	emb, err := sources.OpenEmbedded(sources.EmbeddedOptions{
		Dir: sources.TSDBDir(set.DataDir()), Config: embeddedConfig(set),
		EngineOptions: sources.EngineOptions{Logger: log, Registerer: reg},
	})
	if err != nil {
		return err
	}
	defer emb.Close()
	srcs := map[string]asserts.Querier{config.EmbeddedName: emb}
	for _, p := range set.Config.Sources.Prometheus {
		r, err := sources.NewRemote(p, set.Dir(), o.Getenv)
		if err != nil {
			return err
		}
		srcs[p.Name] = r
	}

	hb, err := heartbeat.New(ctx, set.Heartbeats, store.HeartbeatStore{Store: st}, heartbeat.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := hb.Register(reg, time.Now); err != nil {
		return err
	}

	// Notifications: secrets are read now, so a missing one stops the start.
	del, err := notifiers.New(set.Config, set.Dir(), o.Getenv, notifiers.Options{Store: st, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	// The runner needs the engine (verify, fleet counts, the loaded
	// remediations) and the engine needs the runner: the engine builds it.
	var runner *remediations.Runner
	eng, err := engine.New(ctx, engine.Options{Set: set, Store: st, Sources: srcs, Heartbeats: hb, Logger: log, Registerer: reg, Enqueued: del.Wake,
		NewRemediator: func(h remediations.Host) engine.Remediator {
			runner = remediations.NewRunner(remediations.RunnerOptions{Host: h, Store: st, Logger: log,
				LookupEnv: func(k string) (string, bool) { v := o.Getenv(k); return v, v != "" }})
			return runner
		}})
	if err != nil {
		return err
	}
	defer runner.Wait() // runs stop with runCtx; their last records go in before the store closes

	listen := o.Listen
	if listen == "" {
		listen = set.Config.Web.Listen
	}
	if listen == "" {
		listen = DefaultListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("web listener: %w", err)
	}
	h, err := web.New(web.Deps{
		Engine: eng, Store: st, Heartbeats: hb, Web: set.Config.Web, ConfigDir: set.Dir(), Getenv: o.Getenv,
		Pings: hb.Handler(time.Now), RemoteWrite: sources.WriteHandler(emb.Appendable(), time.Now),
		Gatherer: reg, Registerer: reg, Logger: log, Ready: func() error {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := st.Health(hctx); err != nil {
				return err
			}
			if n := eng.Held(); n > 0 {
				return fmt.Errorf("the store is unavailable: %d changes held", n)
			}
			return nil
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := web.Server(h)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("assertd running", "listen", ln.Addr().String(), "asserts", len(set.Asserts), "config", o.ConfigPath, "data", set.DataDir())
	if o.Ready != nil {
		o.Ready <- ln.Addr().String()
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(runCtx) }()
	delDone := make(chan struct{})
	go func() { defer close(delDone); _ = del.Run(runCtx) }()
	go watchReload(runCtx, o, set, eng, log)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("web listener: %w", err)
	case err = <-engDone:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		log.Warn("web shutdown", "err", serr)
	}
	select {
	case <-engDone:
	case <-shutdownCtx.Done():
		log.Warn("engine did not stop within 10s")
	}
	select {
	case <-delDone:
	case <-shutdownCtx.Done():
		log.Warn("notification delivery did not stop within 10s")
	}
	log.Info("assertd stopped")
	return err
}

func embeddedConfig(set *config.Set) config.Embedded {
	if set.Config == nil {
		return config.Embedded{}
	}
	return set.Config.Sources.Embedded
}

// OpenStore opens the configured store: SQLite under the data dir by
// default (with opts), or PostgreSQL. An unreachable store is an error that
// says which.
func OpenStore(ctx context.Context, set *config.Set, getenv func(string) string, opts ...sqlite.Option) (store.Store, error) {
	c := set.Config.Store
	if c.Driver == "postgres" {
		dsn := ""
		if c.DSNEnv != "" {
			dsn = getenv(c.DSNEnv)
			if dsn == "" {
				return nil, fmt.Errorf("store: dsn_env names $%s, which is empty or unset", c.DSNEnv)
			}
		} else {
			b, err := os.ReadFile(resolve(set, c.DSNFile))
			if err != nil {
				return nil, fmt.Errorf("store: dsn_file: %w", err)
			}
			dsn = strings.TrimSpace(string(b))
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	path := c.Path
	if path == "" {
		path = sqlite.File
		if err := os.MkdirAll(set.DataDir(), 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		path = set.DataDir() + string(os.PathSeparator) + path
	} else {
		path = resolve(set, path)
	}
	st, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

func resolve(set *config.Set, p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return set.Dir() + string(os.PathSeparator) + p
}

// watchReload reloads the configuration on SIGHUP and when a loaded file
// changes. A failed reload keeps the last good configuration.
func watchReload(ctx context.Context, o Options, set *config.Set, eng *engine.Engine, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	every := o.ReloadEvery
	if every == 0 {
		every = 5 * time.Second
	}
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	seen := fileStamps(set)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading")
		case <-tick:
			now := fileStamps(set)
			if now == seen {
				continue
			}
			seen = now
			log.Info("a configuration file changed: reloading")
		}
		next, errs := config.Load(o.ConfigPath)
		if err := eng.Reload(next, errs, time.Now()); err == nil {
			set = next
			seen = fileStamps(set)
		} else {
			for _, e := range errs {
				log.Error("reload", "error", e.Error())
			}
		}
	}
}

// fileStamps summarises the modification times and sizes of the loaded files.
func fileStamps(set *config.Set) string {
	var b strings.Builder
	for _, f := range append([]string{set.ConfigPath}, set.Files...) {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
		} else {
			fmt.Fprintf(&b, "%s:missing;", f)
		}
	}
	return b.String()
}

// The tracker keeps its state in the store.
var (
	_ heartbeat.Store        = store.HeartbeatStore{}
	_ heartbeat.PingRecorder = store.HeartbeatStore{}
)
