package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
)

// Heartbeats gives the state of heartbeats at a time.
type Heartbeats interface {
	Status(name string, now time.Time) (asserts.HeartbeatStatus, bool)
}

// Store is the part of store.Store the engine uses.
type Store interface {
	Commit(ctx context.Context, c store.Change) (store.CommitResult, error)
	PutInstance(ctx context.Context, in assertd.Instance) error
	Instances(ctx context.Context, assert string) ([]assertd.Instance, error)
	DeleteInstance(ctx context.Context, assert, fingerprint string) error
	PendingDecisions(ctx context.Context) ([]assertd.Decision, error)
	Run(ctx context.Context, id string) (assertd.Run, error)
	InterruptRuns(ctx context.Context, at time.Time, reason string) ([]assertd.Run, error)
	DecideApproval(ctx context.Context, runID, by string, approved bool, at time.Time, comment string) error
	Silences(ctx context.Context, now time.Time, includeExpired bool) ([]assertd.Silence, error)
	Audit(ctx context.Context, e assertd.AuditEntry) (int64, error)
	Compact(ctx context.Context, before time.Time) (store.CompactStats, error)
	PutLifecycle(ctx context.Context, o assertd.LifecycleOverride) error
	Lifecycles(ctx context.Context) ([]assertd.LifecycleOverride, error)
	// The pages and acknowledgements of an incident from before a restart
	// (escalation.go).
	Messages(ctx context.Context, f store.MessageFilter) ([]assertd.Message, error)
	Decisions(ctx context.Context, f store.DecisionFilter) ([]assertd.Decision, error)
	Health(ctx context.Context) error
}

// Options configure an Engine.
type Options struct {
	Set        *config.Set
	Store      Store
	Sources    map[string]asserts.Querier // by source name
	Heartbeats Heartbeats                 // nil: heartbeat() is uncertain
	// Alerts is the alert feed of alert-triggered asserts (nil: they are
	// uncertain).
	Alerts AlertFeed
	// Silencer silences an alert in Alertmanager while a run fixes it
	// (trigger: {silence: …}); nil: nothing is silenced.
	Silencer AlertSilencer
	Now      func() time.Time // default time.Now
	// After waits on the clock of Now (default time.After): a verify that
	// waits for an alert to resolve uses it.
	After      func(time.Duration) <-chan time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: not registered
	// Concurrency bounds evaluations running at once (default 4).
	Concurrency int
	Flap        FlapThresholds // default from the config, else DefaultFlap
	// NewRemediator builds the remediation runner on the engine (see
	// NewRemediator); nil: violations are paged.
	NewRemediator NewRemediator
	// Enqueued, when set, is called after a change with outbox messages is
	// committed (the deliverer's Wake), so that pages go out at once.
	Enqueued func()
	// Retention of history (default 30 days); compaction runs hourly.
	Retention time.Duration
	// Shares, when set, says which asserts this replica evaluates (several
	// replicas share the store); nil: every assert is this engine's.
	Shares Shares
	// AlignedAt, when set, evaluates every assert at AlignedAt + k×every,
	// without the per-name phase that spreads asserts (assertd test:
	// evaluations at 0, every, 2×every … from the test's start).
	AlignedAt time.Time
	// Restored, when set, is the store's instances read beforehand
	// (ReadInstances, while the configuration loads); without Shares the
	// engine adopts them instead of reading the store again.
	Restored *Restored
}

// Engine evaluates asserts and acts on their instances.
type Engine struct {
	opts    Options
	rem     Remediator    // nil: no remediation runs
	wake    chan struct{} // poke: Run looks at the schedule again
	log     *slog.Logger
	metrics *metrics

	mu        sync.Mutex
	set       *config.Set
	sources   map[string]asserts.Querier // by source name; replaced with set on a reload
	flapCfg   bool                       // opts.Flap is the config's defaults.flapping: a reload changes it
	asserts   map[string]*asserts.Compiled
	hashes    map[string]string
	instances map[string]map[string]*tracked // assert → fingerprint → instance
	open      map[*tracked]struct{}          // instances with an incident to escalate (escalation.go)
	floods    map[string]*flood              // asserts past their max_instances (flood.go)
	baseline  map[string]bool                // asserts evaluated once: later instances are new (FirstSeen)
	next      map[string]time.Time           // assert → next evaluation
	last      map[string]time.Time           // assert → last evaluation
	reloadErr error
	reloadAt  time.Time
	// anySilenced: some instance is silenced, so that an overlay without
	// silences has something to lift (silences.go).
	anySilenced bool

	lifecycles   []lifecycleOverride
	lifecycleLog []assertd.LifecycleOverride // the same, as set: who, when, why

	heldMu sync.Mutex
	held   []store.Change // changes waiting for the store to come back, in order

	epochs map[string]int64 // with Options.Shares: the asserts owned, at which fencing epoch (shares.go)

	silenceMu sync.Mutex
	matchers  map[string]*assertd.MatcherSet // silence ID → its matchers, compiled (silences.go)

	amMu       sync.Mutex
	amSilenced map[string][]amSilence // assert/fingerprint → alerts silenced in Alertmanager by its run (alerts.go)
}

// New loads the instances stored by an earlier run, turns runs left running
// into interrupted ones (their instances uncertain, escalated once), and
// returns an engine ready to Run.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	flapFromConfig := o.Flap == (FlapThresholds{})
	if flapFromConfig {
		o.Flap = configFlap(o.Set)
	}
	if o.Retention <= 0 {
		o.Retention = store.DefaultRetention
	}
	e := &Engine{opts: o, log: o.Logger, flapCfg: flapFromConfig, wake: make(chan struct{}, 1), instances: map[string]map[string]*tracked{},
		open: map[*tracked]struct{}{}, matchers: map[string]*assertd.MatcherSet{}, amSilenced: map[string][]amSilence{}, floods: map[string]*flood{}, epochs: map[string]int64{}, baseline: map[string]bool{}, next: map[string]time.Time{}, last: map[string]time.Time{}}
	e.metrics = newMetrics(o.Registerer, e)
	e.install(o.Set)
	e.sources = o.Sources
	if o.NewRemediator != nil {
		e.rem = o.NewRemediator(e)
	}

	if o.Shares == nil {
		// One replica: every assert is this one's (with shares, each is
		// loaded when its share is claimed: shares.go).
		if o.Restored != nil {
			e.adoptRestored(o.Restored)
		} else if err := e.restore(ctx); err != nil {
			return nil, fmt.Errorf("loading instances: %w", err)
		}
	}
	lcs, err := o.Store.Lifecycles(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading lifecycle overrides: %w", err)
	}
	for _, lc := range lcs {
		e.applyLifecycle(lc)
	}
	if o.Shares != nil {
		return e, nil
	}
	now := o.Now()
	runs, err := o.Store.InterruptRuns(ctx, now, "assertd stopped while the run was in progress")
	if err != nil {
		return nil, fmt.Errorf("interrupting runs left running: %w", err)
	}
	for _, r := range runs {
		e.interrupted(ctx, r, now)
	}
	return e, nil
}

// install makes set the current configuration.
func (e *Engine) install(set *config.Set) {
	e.set = set
	e.asserts = map[string]*asserts.Compiled{}
	e.hashes = map[string]string{}
	for _, a := range set.Asserts {
		e.asserts[a.Name] = a
		e.hashes[a.Name] = definitionHash(a)
	}
}

// source returns the source in force with this name, or nil.
func (e *Engine) source(name string) asserts.Querier {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sources[name]
}

// current returns the configuration in force.
func (e *Engine) current() *config.Set {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

func (e *Engine) instancesOf(assert string) map[string]*tracked {
	m := e.instances[assert]
	if m == nil {
		m = map[string]*tracked{}
		e.instances[assert] = m
	}
	return m
}

// Run evaluates every assert on its schedule until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.resumeOwed(ctx)
	compactEvery := time.Hour
	nextCompact := e.opts.Now().Add(time.Minute)
	for {
		now := e.opts.Now()
		wake := e.Tick(ctx, now)
		if !now.Before(nextCompact) {
			e.compact(ctx, now)
			nextCompact = now.Add(compactEvery)
		}
		if wake.IsZero() || wake.After(nextCompact) {
			wake = nextCompact
		}
		timer := time.NewTimer(wake.Sub(e.opts.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-e.wake:
			timer.Stop()
		}
	}
}

// Tick evaluates every assert that is due at now, concurrently within the
// configured bound, pages the escalation steps that are due, and returns
// when the next evaluation or escalation step is due.
func (e *Engine) Tick(ctx context.Context, now time.Time) time.Time {
	e.flushHeld(ctx)
	e.syncShares(ctx, now)
	e.mu.Lock()
	var due []*asserts.Compiled
	for name, a := range e.asserts {
		if !e.ownsLocked(name) {
			continue
		}
		n, ok := e.next[name]
		if !ok {
			n = nextEvalAt(a, now.Add(-time.Nanosecond), e.phase(a)) // a new assert: at its first slot
			if last, seen := e.last[name]; seen {
				n = nextEvalAt(a, last, e.phase(a))
			}
			e.next[name] = n
		}
		if !n.After(now) {
			due = append(due, a)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(due, func(a, b *asserts.Compiled) int { return strings.Compare(a.Name, b.Name) })

	// The silences are read once for the whole tick, not once per assert.
	var silences []activeSilence
	if len(due) > 0 {
		silences = e.activeSilences(ctx, now)
		e.overlaySilences(silences)
	}
	ctx, groups := shareQueries(ctx, due, e.current().SourceName, now)
	sem := make(chan struct{}, e.opts.Concurrency)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, a := range g {
				e.evaluate(ctx, a, now, silences)
			}
		}()
	}
	wg.Wait()
	wake := e.escalateDue(ctx, now)

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range due {
		if e.asserts[a.Name] == nil {
			continue // removed by a reload during the tick
		}
		if last, ok := e.last[a.Name]; ok {
			if n := missedAt(a, last, now, e.phase(a)); n > 0 {
				e.metrics.missed.WithLabelValues(a.Name).Add(float64(n))
			}
		}
		e.last[a.Name] = now
		e.next[a.Name] = nextEvalAt(a, now, e.phase(a))
	}
	for _, n := range e.next {
		if wake.IsZero() || n.Before(wake) {
			wake = n
		}
	}
	return wake
}

// EvaluateNow evaluates one assert at now, outside its schedule.
func (e *Engine) EvaluateNow(ctx context.Context, name string, now time.Time) error {
	e.mu.Lock()
	a := e.asserts[name]
	e.mu.Unlock()
	if a == nil {
		return fmt.Errorf("no assert %q", name)
	}
	e.evaluate(ctx, a, now, e.activeSilences(ctx, now))
	return nil
}

// evaluate runs one evaluation of a and moves its instances; silences are
// the silences active at now.
func (e *Engine) evaluate(ctx context.Context, a *asserts.Compiled, now time.Time, silences []activeSilence) {
	ctx = e.fence(ctx, a.Name)
	start := time.Now()
	var ev asserts.Evaluation
	if src, q, err := e.querierOf(a); err != nil {
		ev = asserts.Evaluation{At: now, SourceErr: err}
	} else {
		if a.Trigger == nil {
			q = sharedQuerier(ctx, src, q)
		}
		ev = a.Judge(ctx, q, e.heartbeatFunc(now), now)
	}
	if a.Trigger != nil && errors.Is(ev.SourceErr, alerts.ErrNotHeard) {
		e.mu.Lock()
		known := len(e.instances[a.Name])
		e.mu.Unlock()
		if known == 0 {
			// Nothing fires that assertd knows of: no instance to be
			// unsure about. Instances from before a restart are uncertain
			// until the sender speaks again.
			ev.SourceErr = nil
		}
	}
	am := e.metrics.of(a.Name)
	am.evaluations.Inc()
	am.duration.Observe(time.Since(start).Seconds())
	if ev.SourceErr != nil {
		e.metrics.failures.WithLabelValues(a.Name).Inc()
		if errors.Is(ev.SourceErr, assertd.ErrBadQuery) {
			e.log.Error("query failed", "assert", a.Name, "at", a.Pos.String(), "err", ev.SourceErr)
		}
	}
	e.mu.Lock()
	if cur := e.asserts[a.Name]; cur != a && (cur == nil || e.hashes[a.Name] != definitionHash(a)) {
		// A reload removed or redefined the assert during the evaluation:
		// its result is about a definition no longer in force.
		e.mu.Unlock()
		return
	}
	insts := e.instancesOf(a.Name)
	seen := make(map[*tracked]bool, len(insts))
	todo := make([]work, 0, max(len(insts), len(ev.Verdicts)))
	var gone []retired
	var lcChanges []lcChange
	flooded := ""
	if ev.SourceErr == nil {
		flooded = e.checkFlood(a, ev.Verdicts, insts, now)
	}
	if ev.SourceErr != nil || flooded != "" {
		blind := input{now: now, srcErr: ev.SourceErr, uncertain: flooded}
		for _, t := range insts {
			todo = append(todo, work{t, t.advance(a, blind, e.opts.Flap)})
		}
		if len(insts) == 0 {
			// Nothing known yet: one instance stands for the assert.
			t := e.newTracked(a, assertd.Labels{}, now)
			insts[t.Fingerprint] = t
			todo = append(todo, work{t, t.advance(a, blind, e.opts.Flap)})
		}
	} else {
		var fpBuf [24]byte
		found := false // series found: the fleet as it is
		for i := range ev.Verdicts {
			v := &ev.Verdicts[i]
			lc := e.lifecycleOf(v.Label)
			if _, ok := v.Label(LifecycleLabel); ok {
				// The lifecycle is a property of the target, not part of
				// the instance's identity.
				v.Labels = v.LabelSet().Copy()
				delete(v.Labels, LifecycleLabel)
			}
			found = found || v.HasLabels()
			// The instance is found by its fingerprint, computed from the
			// series without building its labels (most are unchanged).
			fp := v.AppendFingerprint(fpBuf[:0])
			t := insts[string(fp)]
			if slices.Contains(notEvaluated, lc) {
				if t != nil {
					delete(insts, t.Fingerprint)
					gone = append(gone, retired{t, t.Instance, lc})
				}
				continue
			}
			if t == nil {
				t = e.newTracked(a, v.LabelSet(), now)
				t.Lifecycle = lc
				if !e.baseline[a.Name] {
					// Found by the assert's first evaluation: the fleet as
					// it is, not instances that appeared since.
					t.FirstSeen = time.Time{}
				}
				insts[t.Fingerprint] = t
			}
			seen[t] = true
			if t.Lifecycle != lc {
				lcChanges = append(lcChanges, lcChange{t.Instance, t.Lifecycle, lc})
				t.Lifecycle = lc
			}
			if !v.SameLabels(t.Labels) {
				// Keep the map the instance has (the instance as stored
				// shares it) while the labels are the same.
				t.Labels = v.LabelSet()
			}
			todo = append(todo, work{t, t.advance(a, input{now: now, verdict: v}, e.opts.Flap)})
		}
		for _, t := range insts {
			if !seen[t] {
				todo = append(todo, work{t, t.advance(a, input{now: now}, e.opts.Flap)})
			}
		}
		if found {
			// The first evaluation that found series is the fleet as it
			// is (one that found nothing, before the first scrape, is not).
			e.baseline[a.Name] = true
		}
	}
	// Only the instances with something to do are acted on, in the order
	// of their labels.
	acts := todo[:0]
	for _, w := range todo {
		w.t.silenced = matchSilence(silences, w.t.Assert, w.t.Labels)
		w.t.Silenced = w.t.silenced
		e.anySilenced = e.anySilenced || w.t.silenced != ""
		if w.c != nil || e.mayAct(a, w.t, now) {
			acts = append(acts, w)
		}
	}
	e.mu.Unlock()
	byLabels(acts, func(w work) assertd.Labels { return w.t.Labels })
	byLabels(lcChanges, func(c lcChange) assertd.Labels { return c.in.Labels })
	byLabels(gone, func(g retired) assertd.Labels { return g.in.Labels })

	for _, c := range lcChanges {
		e.lifecycleChange(ctx, c.in, c.from, c.to, now)
	}
	for _, g := range gone {
		e.retire(ctx, a, g.t, g.in, g.state, now)
	}
	for _, w := range acts {
		e.act(ctx, a, w.t, w.c, now)
	}
	// Instances whose series are gone and that resolved are forgotten
	// (their history stays).
	e.mu.Lock()
	var forget []string
	for fp, t := range insts {
		if !seen[t] && ev.SourceErr == nil && flooded == "" && t.missing >= 2 && t.State == assertd.OK {
			delete(insts, fp)
			forget = append(forget, fp)
		}
	}
	e.mu.Unlock()
	for _, fp := range forget {
		if err := e.opts.Store.DeleteInstance(ctx, a.Name, fp); err != nil {
			e.log.Warn("forgetting an instance whose series are gone", "assert", a.Name, "err", err)
		}
	}
}

// work is an instance and what its evaluation changed.
type work struct {
	t *tracked
	c *change
}

// retired is an instance whose target left the fleet (its lifecycle).
type retired struct {
	t     *tracked
	in    assertd.Instance
	state string
}

type lcChange struct {
	in       assertd.Instance
	from, to string
}

// byLabels orders s by the labels of its instances, as they read.
func byLabels[T any](s []T, labels func(T) assertd.Labels) {
	if len(s) < 2 {
		return
	}
	type keyed struct {
		key string
		x   T
	}
	ks := make([]keyed, len(s))
	for i, x := range s {
		ks[i] = keyed{labels(x).String(), x}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range ks {
		s[i] = ks[i].x
	}
}

func (e *Engine) newTracked(a *asserts.Compiled, ls assertd.Labels, now time.Time) *tracked {
	in := assertd.Instance{Assert: a.Name, Fingerprint: ls.Fingerprint(), Labels: ls, State: assertd.OK, Since: now, FirstSeen: now}
	return &tracked{Instance: in, saved: savedOf(in)}
}

func (e *Engine) heartbeatFunc(now time.Time) asserts.HeartbeatFunc {
	return func(name string) (asserts.HeartbeatStatus, error) {
		if e.opts.Heartbeats == nil {
			return asserts.HeartbeatStatus{Name: name}, fmt.Errorf("heartbeat %s: no heartbeats are tracked", name)
		}
		st, ok := e.opts.Heartbeats.Status(name, now)
		switch {
		case !ok:
			return st, fmt.Errorf("heartbeat %s is not declared", name)
		case !heartbeat.Certain(st):
			return st, errors.New(heartbeat.Describe(st))
		}
		return st, nil
	}
}

// Instances returns a snapshot of every instance as operators see it: a
// silenced instance has State Silenced (its own state in Underlying); one
// whose change waits for the store shows the stored state, with Held and
// HeldState. The decisions use the instances' own state (InstancesOf).
func (e *Engine) Instances() []assertd.Instance {
	e.mu.Lock()
	var out []assertd.Instance
	for _, m := range e.instances {
		for _, t := range m {
			out = append(out, t.view())
		}
	}
	e.mu.Unlock()
	SortWorstFirst(out) // outside the lock: the copies are the caller's
	return out
}

// SortWorstFirst orders instances by severity, then longest in that state.
func SortWorstFirst(in []assertd.Instance) {
	slices.SortStableFunc(in, func(a, b assertd.Instance) int {
		if d := b.State.Severity() - a.State.Severity(); d != 0 {
			return d
		}
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if c := strings.Compare(a.Assert, b.Assert); c != 0 {
			return c
		}
		return strings.Compare(a.Labels.String(), b.Labels.String())
	})
}

func (e *Engine) compact(ctx context.Context, now time.Time) {
	st, err := e.opts.Store.Compact(ctx, now.Add(-e.opts.Retention))
	if err != nil {
		e.log.Warn("compacting history", "err", err)
		return
	}
	e.log.Debug("compacted history", "transitions", st.Transitions, "pings", st.Pings)
}
