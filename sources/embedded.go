package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promcfg "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// Embedded is the in-process Prometheus TSDB with its PromQL engine, fed by
// scraping configured targets and by remote-write.
type Embedded struct {
	db     *tsdb.DB
	engine *promql.Engine
	logger *slog.Logger
	reg    prometheus.Registerer

	mu      sync.Mutex // the scraper: started by the first targets
	scraper *scrape.Manager
	targets chan map[string][]*targetgroup.Group
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// EmbeddedOptions configure the embedded source.
type EmbeddedOptions struct {
	Dir    string          // the TSDB directory
	Config config.Embedded // retention, scrape interval/timeout, targets
	EngineOptions
}

// Embedded source defaults.
const (
	DefaultRetention      = 15 * 24 * time.Hour
	DefaultScrapeInterval = 15 * time.Second
	DefaultScrapeTimeout  = 10 * time.Second
)

// OpenEmbedded opens (or creates) the TSDB in o.Dir and starts scraping the
// configured targets until Close.
func OpenEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // tsdb and scrape insist on one
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = DefaultRetention.Milliseconds()
	if r := o.Config.Retention.Std(); r > 0 {
		opts.RetentionDuration = r.Milliseconds()
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded TSDB: %w", err)
	}
	db, err := tsdb.Open(o.Dir, o.Logger.With("component", "tsdb"), prefixed(reg, "embedded"), opts, nil)
	if err != nil {
		return nil, fmt.Errorf("embedded TSDB in %s: %w", o.Dir, err)
	}
	e := &Embedded{db: db, engine: newEngine(o.EngineOptions), logger: o.Logger, reg: prefixed(reg, "embedded")}
	t, err := PrepareTargets(o.Config)
	if err == nil {
		err = e.ApplyTargets(t)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// prefixed keeps the TSDB's and scraper's own metrics apart from assertd's.
func prefixed(reg prometheus.Registerer, component string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"component": component}, reg)
}

// ScrapeConfig turns the embedded source's targets into a Prometheus
// configuration: one scrape job per target, so that each target keeps its
// own scheme and path.
func ScrapeConfig(c config.Embedded) (*promcfg.Config, map[string][]*targetgroup.Group, error) {
	interval, timeout := DefaultScrapeInterval, DefaultScrapeTimeout
	if d := c.ScrapeInterval.Std(); d > 0 {
		interval = d
	}
	if d := c.ScrapeTimeout.Std(); d > 0 {
		timeout = d
	}
	timeout = min(timeout, interval)
	type job struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		ScrapeTimeout  string `yaml:"scrape_timeout"`
		Scheme         string `yaml:"scheme"`
		MetricsPath    string `yaml:"metrics_path"`
	}
	var jobs []job
	groups := map[string][]*targetgroup.Group{}
	for i, t := range c.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("scrape target %q: not a URL", t.URL)
		}
		name := fmt.Sprintf("target-%d", i)
		path := u.Path
		if path == "" {
			path = "/metrics"
		}
		jobs = append(jobs, job{JobName: name, ScrapeInterval: model.Duration(interval).String(),
			ScrapeTimeout: model.Duration(timeout).String(), Scheme: u.Scheme, MetricsPath: path})
		ls := model.LabelSet{}
		for k, v := range t.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if _, ok := ls[model.JobLabel]; !ok {
			ls[model.JobLabel] = model.LabelValue(u.Hostname())
		}
		groups[name] = []*targetgroup.Group{{
			Source:  name,
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
			Labels:  ls,
		}}
	}
	text, err := yaml.Marshal(map[string]any{"scrape_configs": jobs})
	if err != nil {
		return nil, nil, err
	}
	cfg, err := promcfg.Load(string(text), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("scrape configuration: %w", err)
	}
	return cfg, groups, nil
}

// Targets are scrape targets checked by PrepareTargets, for ApplyTargets.
type Targets struct {
	cfg    *promcfg.Config
	groups map[string][]*targetgroup.Group
}

// PrepareTargets checks the embedded source's scrape targets.
func PrepareTargets(c config.Embedded) (*Targets, error) {
	cfg, groups, err := ScrapeConfig(c)
	if err != nil {
		return nil, err
	}
	return &Targets{cfg: cfg, groups: groups}, nil
}

// ApplyTargets scrapes t from now on: new targets start, removed ones stop,
// and a changed interval or timeout takes effect. The samples stay. Scraping
// starts with the first targets and runs until Close.
func (e *Embedded) ApplyTargets(t *Targets) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.scraper == nil {
		if len(t.groups) == 0 {
			return nil
		}
		m, err := scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(100 * time.Millisecond)}, e.logger.With("component", "scrape"), nil, e.db, nil, e.reg)
		if err != nil {
			return fmt.Errorf("scrape manager: %w", err)
		}
		if err := m.ApplyConfig(t.cfg); err != nil {
			return fmt.Errorf("scrape configuration: %w", err)
		}
		e.targets = make(chan map[string][]*targetgroup.Group, 1)
		e.targets <- t.groups
		ctx, cancel := context.WithCancel(context.Background())
		e.scraper, e.stop = m, cancel
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := m.Run(e.targets); err != nil {
				e.logger.Error("scrape manager stopped", "err", err)
			}
		}()
		go func() { <-ctx.Done(); m.Stop() }()
		return nil
	}
	if err := e.scraper.ApplyConfig(t.cfg); err != nil {
		return fmt.Errorf("scrape configuration: %w", err)
	}
	select { // the last targets sent win; Run may not have read the ones before
	case <-e.targets:
	default:
	}
	e.targets <- t.groups
	return nil
}

// TargetHealth reports, for each scrape target URL, its last error ("" when
// the last scrape worked; "not scraped yet" before the first).
func (e *Embedded) TargetHealth() map[string]string {
	out := map[string]string{}
	e.mu.Lock()
	m := e.scraper
	e.mu.Unlock()
	if m == nil {
		return out
	}
	for _, ts := range m.TargetsActive() {
		for _, t := range ts {
			switch t.Health() {
			case scrape.HealthGood:
				out[t.URL().String()] = ""
			case scrape.HealthUnknown:
				out[t.URL().String()] = "not scraped yet"
			default:
				msg := "down"
				if err := t.LastError(); err != nil {
					msg = err.Error()
				}
				out[t.URL().String()] = msg
			}
		}
	}
	return out
}

// Query runs an instant query at ts.
func (e *Embedded) Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error) {
	return instantQuery(ctx, e.engine, e.db, q, ts)
}

// Appendable is where samples are written (remote-write, tests, the demo).
func (e *Embedded) Appendable() storage.Appendable { return e.db }

// Close stops scraping and closes the TSDB, flushing what it holds.
func (e *Embedded) Close() error {
	e.mu.Lock()
	stop := e.stop
	e.mu.Unlock()
	if stop != nil {
		stop()
		e.wg.Wait()
	}
	return e.db.Close()
}

// ReadOnly queries a TSDB directory that another process (assertd run) may
// be writing, as `assertd eval` does.
type ReadOnly struct {
	db     *tsdb.DBReadOnly
	engine *promql.Engine
	// whole is one querier over all of the directory, for range queries
	// (rangequery.go): a DBReadOnly loads its WAL again for each querier,
	// and only its first one sees it whole.
	mu    sync.Mutex
	whole storage.Querier
}

// OpenReadOnly opens the TSDB in dir for reading.
func OpenReadOnly(dir string, o EngineOptions) (*ReadOnly, error) {
	if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
		return nil, fmt.Errorf("%w: no embedded TSDB at %s (is assertd run collecting data?)", assertd.ErrSourceUnavailable, dir)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := tsdb.OpenDBReadOnly(dir, "", o.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded TSDB at %s: %v", assertd.ErrSourceUnavailable, dir, err)
	}
	return &ReadOnly{db: db, engine: newEngine(o)}, nil
}

// Query runs an instant query at ts.
func (r *ReadOnly) Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error) {
	return instantQuery(ctx, r.engine, r.db, q, ts)
}

// Close releases the directory.
func (r *ReadOnly) Close() error {
	r.mu.Lock()
	if r.whole != nil {
		_ = r.whole.Close() // the directory's close reports what matters
		r.whole = nil
	}
	r.mu.Unlock()
	if err := r.db.Close(); err != nil && !errors.Is(err, tsdb.ErrClosed) {
		return err
	}
	return nil
}
