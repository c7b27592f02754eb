package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// EvalRig holds one workload loaded into the embedded TSDB, an assertd
// engine over it (SQLite store) and the Prometheus baselines over the same
// TSDB.
type EvalRig struct {
	W       Workload
	Series  int
	dir     string
	emb     *sources.Embedded
	db      storage.Queryable
	prom    *promql.Engine
	set     *config.Set
	st      store.Store
	eng     *engine.Engine
	group   *rules.Group
	alerts  []*rules.AlertingRule
	queries []string // the asserts' distinct queries, for the raw PromQL baseline
	src     *pinned
	qf      rules.QueryFunc
	now     time.Time // the engine's clock: one cycle later at each Tick
}

// pinned answers every query at EvalTime, so that the engine's clock can
// move on cycle after cycle while the data it sees stays the same; it
// counts the queries it answers.
type pinned struct {
	q    asserts.Querier
	sent atomic.Int64
}

func (p *pinned) Query(ctx context.Context, q string, _ time.Time) (assertd.Vector, error) {
	p.sent.Add(1)
	return p.q.Query(ctx, q, EvalTime)
}

// NewEvalRig generates w into a fresh embedded TSDB under a temporary
// directory and builds assertd and the baselines over it. The engine's first
// cycle (which stores every new instance) is run before it returns: the
// cycles measured afterwards are steady ones.
func NewEvalRig(ctx context.Context, w Workload) (_ *EvalRig, err error) {
	dir, err := os.MkdirTemp("", "assertd-bench-eval-")
	if err != nil {
		return nil, err
	}
	r := &EvalRig{W: w, dir: dir}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	r.emb, err = sources.OpenEmbedded(sources.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb")})
	if err != nil {
		return nil, err
	}
	var ok bool
	if r.db, ok = r.emb.Appendable().(storage.Queryable); !ok {
		return nil, errors.New("the embedded TSDB is not queryable")
	}
	if r.Series, err = w.Fill(ctx, r.emb.Appendable()); err != nil {
		return nil, err
	}
	// The same engine options as sources' embedded engine.
	r.prom = promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: 2 * time.Minute,
		LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true})
	r.qf = rules.EngineQueryFunc(r.prom, r.db)

	if r.set, err = w.LoadSet(dir); err != nil {
		return nil, err
	}
	if r.st, err = sqlite.Open(ctx, filepath.Join(dir, "assertd.db")); err != nil {
		return nil, err
	}
	r.src = &pinned{q: r.emb}
	r.eng, err = engine.New(ctx, engine.Options{Set: r.set, Store: r.st,
		Sources:     map[string]asserts.Querier{config.EmbeddedName: r.src},
		Concurrency: runtime.GOMAXPROCS(0)})
	if err != nil {
		return nil, err
	}

	logger := slog.New(slog.DiscardHandler)
	var rs []rules.Rule
	seen := map[string]bool{}
	for j := 0; j < w.Asserts; j++ {
		q, alert := w.Query(j)
		if !seen[q] {
			seen[q] = true
			r.queries = append(r.queries, q)
		}
		e, err := promParser.ParseExpr(alert)
		if err != nil {
			return nil, fmt.Errorf("alert %d: %w", j, err)
		}
		ann := labels.EmptyLabels()
		if w.Annotate {
			ann = labels.FromStrings("summary", "{{ $labels.instance }} is at {{ $value }}")
		}
		ar := rules.NewAlertingRule(fmt.Sprintf("a%05d", j), e, 0, 0, labels.EmptyLabels(), ann, labels.EmptyLabels(), "", true, logger)
		r.alerts = append(r.alerts, ar)
		rs = append(rs, ar)
	}
	r.group = rules.NewGroup(rules.GroupOptions{Name: "bench", File: "bench.rules", Interval: 15 * time.Second, Rules: rs,
		Opts: &rules.ManagerOptions{QueryFunc: r.qf, Appendable: r.emb.Appendable(), Queryable: r.db, Context: ctx, Logger: logger,
			NotifyFunc: func(context.Context, string, ...*rules.Alert) {}}})

	// The engine's first evaluation stores every instance; the first Tick
	// evaluates the asserts due at once, the second all the others. The
	// cycle after a change stores each changed instance once more (the
	// engine marks an instance stored only when it stores its clocks), so
	// a third cycle is needed before the steady state.
	r.now = EvalTime
	r.eng.Tick(ctx, r.now)
	r.AssertdCycle(ctx)
	r.AssertdCycle(ctx)
	return r, nil
}

// Close removes everything the rig made.
func (r *EvalRig) Close() {
	if r.st != nil {
		r.st.Close()
	}
	if r.emb != nil {
		r.emb.Close()
	}
	os.RemoveAll(r.dir)
}

// Instances is how many instances the engine holds, and how many of them
// are not ok.
func (r *EvalRig) Instances() (total, violating int) {
	for _, in := range r.eng.Instances() {
		total++
		if in.State != assertd.OK {
			violating++
		}
	}
	return total, violating
}

// AssertdCycle is one cycle of assertd: every assert evaluated once by
// engine.Tick (concurrency: one per core). It returns how many queries the
// engine sent to the source.
func (r *EvalRig) AssertdCycle(ctx context.Context) int {
	r.now = r.now.Add(15 * time.Second)
	before := r.src.sent.Load()
	r.eng.Tick(ctx, r.now)
	return int(r.src.sent.Load() - before)
}

// Queries is how many distinct queries the workload's asserts send, and how
// many rules the Prometheus baseline evaluates.
func (r *EvalRig) Queries() (distinct, rules int) { return len(r.queries), len(r.alerts) }

// GroupCycle is one rules.Group.Eval of every alerting rule (sequential, as
// Prometheus runs a group by default), alerts sent to a no-op notifier and
// ALERTS series written to the same TSDB.
func (r *EvalRig) GroupCycle(ctx context.Context) {
	r.group.Eval(ctx, EvalTime)
}

// AlertingRuleCycle is AlertingRule.Eval of every rule, sequentially: the
// rule manager without its group bookkeeping.
func (r *EvalRig) AlertingRuleCycle(ctx context.Context) error {
	for _, ar := range r.alerts {
		if _, err := ar.Eval(ctx, 0, EvalTime, r.qf, nil, 0); err != nil {
			return err
		}
	}
	return nil
}

// PromQLCycle runs every distinct query of the asserts once on the raw promql.Engine with
// workers goroutines.
func (r *EvalRig) PromQLCycle(ctx context.Context, workers int) error {
	next := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range next {
				qry, err := r.prom.NewInstantQuery(ctx, r.db, nil, q, EvalTime)
				if err != nil {
					errs <- err
					continue
				}
				res := qry.Exec(ctx)
				qry.Close()
				if res.Err != nil {
					errs <- res.Err
				}
			}
		}()
	}
	for _, q := range r.queries {
		next <- q
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

var promParser = parser.NewParser(parser.Options{})
