// Package promrules evaluates Prometheus rule files with Prometheus' own rule
// code (github.com/prometheus/prometheus/rules): the groups are built by the
// rule manager, evaluated by rules.Group at group-aligned timestamps of the
// group interval, their recording rules and their ALERTS and
// ALERTS_FOR_STATE series are written to the appendable (the embedded TSDB),
// and the for state of alerts is restored from ALERTS_FOR_STATE as
// Prometheus restores it on start. Only the schedule is assertd's: each
// group runs on the injected clock, with the timing of Prometheus' own
// group loop. A reload keeps unchanged groups running, hands a changed
// group's state to its successor and marks a removed group's series stale,
// as the rule manager does. After each evaluation of a group its alerts and
// the rules that failed are handed to a callback.
package promrules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/strutil"

	"github.com/assertd/assertd/config"
)

// Clock is the time the groups run on.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Options configure an Evaluator.
type Options struct {
	// Query runs the rules' queries (rules.EngineQueryFunc over the
	// embedded TSDB, or a remote source) unless Prepare is given another.
	Query rules.QueryFunc
	// Queryable is where ALERTS_FOR_STATE is read back at start.
	Queryable storage.Queryable
	// Appendable takes the recording rules' samples, ALERTS and
	// ALERTS_FOR_STATE.
	Appendable storage.Appendable
	Clock      Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: the rule metrics are not registered
	// OnEval receives each group's outcome after each evaluation.
	OnEval func(Evaluation)
}

// RuleID is an imported rule's identity: rule names need not be unique,
// so a rule is its file, its group, its place in the group (from 1, as
// promtool numbers rules) and its name.
type RuleID struct {
	File  string `json:"file"`
	Group string `json:"group"`
	Index int    `json:"index"`
	Name  string `json:"name"`
}

func (r RuleID) String() string {
	return fmt.Sprintf("%s: group %q, rule %d, %q", r.File, r.Group, r.Index, r.Name)
}

// Alert is one active alert of an alerting rule.
type Alert struct {
	Rule            RuleID
	State           string // pending or firing
	Labels          labels.Labels
	Annotations     labels.Labels
	Value           float64
	ActiveAt        time.Time
	FiredAt         time.Time
	KeepFiringSince time.Time
	GeneratorURL    string
}

// Failure is an alerting rule whose last evaluation failed: its alerts are
// not known.
type Failure struct {
	Rule RuleID
	// Labels are what every alert of the rule carries: alertname, the
	// group's and the rule's labels.
	Labels labels.Labels
	Err    error
}

// Evaluation is a group's outcome at one evaluation.
type Evaluation struct {
	File, Group string
	At          time.Time
	Alerts      []Alert
	Failures    []Failure
}

// Evaluator runs the groups of the Prometheus rule files of a
// configuration.
type Evaluator struct {
	o       Options
	loader  *loader
	metrics *rules.Metrics
	query   atomic.Pointer[rules.QueryFunc]

	mu       sync.Mutex
	groups   map[string]*running // by rules.GroupKey
	loaded   bool                // the first configuration was applied: later groups do not restore
	started  bool
	ctx      context.Context
	stopping chan struct{} // closed by Stop
	ext      extern
}

// extern is what the groups of a configuration take from outside the rule
// files; when it changes, every group is rebuilt (keeping its state).
type extern struct {
	labels labels.Labels
	url    string
	other  string // the remote-write endpoint, the outage tolerance and grace period
}

func (x extern) equal(y extern) bool {
	return labels.Equal(x.labels, y.labels) && x.url == y.url && x.other == y.other
}

// Target is where a configuration's rules query and write.
type Target struct {
	// ExternalURL is $externalURL and the base of generator URLs.
	ExternalURL string
	// Query, when set, replaces Options.Query (a remote source).
	Query rules.QueryFunc
	// RemoteWrite, when set, takes the recording rules' samples instead of
	// Options.Appendable (a remote source).
	RemoteWrite *RemoteWrite
	// RelativeTo, when set, names the groups' files relative to this
	// directory: a group's file and name place its slots, so two versions
	// of the rules in two directories evaluate at the same times.
	RelativeTo string
}

type running struct {
	g       *rules.Group
	url     string // $externalURL, the base of generator URLs
	restore bool
	stop    chan struct{}
	done    chan struct{}
	// Of a group evaluated by EvalDue: its next slot (zero: not yet
	// scheduled) and how many times it was evaluated.
	due   time.Time
	evals int
}

// New builds an evaluator; nothing runs until Start.
func New(o Options) *Evaluator {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &loader{}
	var reg prometheus.Registerer
	if o.Registerer != nil {
		reg = prometheus.WrapRegistererWithPrefix("assertd_", o.Registerer)
	}
	e := &Evaluator{o: o, loader: l, groups: map[string]*running{}, metrics: rules.NewGroupMetrics(reg)}
	e.query.Store(&o.Query)
	return e
}

// loader hands the rule manager the files config has already parsed and
// checked, so that what runs is what was checked.
type loader struct {
	mu    sync.Mutex
	files map[string]*rulefmt.RuleGroups
}

func (l *loader) Load(identifier string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rg, ok := l.files[identifier]; ok {
		return rg, nil
	}
	return nil, []error{fmt.Errorf("%s: not loaded", identifier)}
}

func (*loader) Parse(query string) (parser.Expr, error) {
	return config.RuleFileParser.ParseExpr(query)
}

// Next is a configuration's groups, built and not running.
type Next struct {
	groups map[string]*rules.Group
	ext    extern
	query  rules.QueryFunc
	opts   *rules.ManagerOptions // of the groups' manager
}

// Groups counts the groups of n.
func (n *Next) Groups() int { return len(n.groups) }

// MaxInterval is the longest interval among the groups of n (0: none).
func (n *Next) MaxInterval() time.Duration {
	var d time.Duration
	for _, g := range n.groups {
		d = max(d, g.Interval())
	}
	return d
}

// Prepare builds the groups of the rule files of set for tg, changing
// nothing.
func (e *Evaluator) Prepare(set *config.Set, tg Target) (*Next, error) {
	query, externalURL := tg.Query, tg.ExternalURL
	if query == nil {
		query = e.o.Query
	}
	appendable := e.o.Appendable
	if tg.RemoteWrite != nil {
		appendable = SplitAppendable(e.o.Appendable, *tg.RemoteWrite)
	}
	var pr config.PrometheusRules
	if set.Config != nil {
		pr = set.Config.PrometheusRules
	}
	interval := config.DefaultEvaluationInterval
	if d := pr.EvaluationInterval.Std(); d > 0 {
		interval = d
	}
	extURL, err := url.Parse(externalURL)
	if err != nil {
		return nil, fmt.Errorf("external URL: %w", err)
	}
	files := map[string]*rulefmt.RuleGroups{}
	var names []string
	for _, f := range set.PromRules {
		name := f.Path
		if tg.RelativeTo != "" {
			if rel, err := filepath.Rel(tg.RelativeTo, f.Path); err == nil {
				name = rel
			}
		}
		files[name] = f.Groups
		names = append(names, name)
	}
	other := fmt.Sprintf("%s %s", pr.OutageTolerance, pr.ForGracePeriod)
	if rw := tg.RemoteWrite; rw != nil {
		other += fmt.Sprintf(" %s\x00%s\x00%s", rw.URL, rw.Token, rw.Timeout) // never printed
	}
	ext := extern{labels: labels.FromMap(pr.ExternalLabels), url: externalURL, other: other}
	e.loader.mu.Lock()
	e.loader.files = files
	e.loader.mu.Unlock()
	// A manager per configuration, as its options (the external URL
	// among them) are read by the groups it builds at every evaluation.
	opts := &rules.ManagerOptions{
		ExternalURL: extURL,
		QueryFunc: func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
			return (*e.query.Load())(ctx, q, t)
		},
		NotifyFunc:      func(context.Context, string, ...*rules.Alert) {},
		Appendable:      appendable,
		Queryable:       e.o.Queryable,
		Logger:          e.o.Logger.With("component", "rules"),
		Metrics:         e.metrics,
		OutageTolerance: durationOr(pr.OutageTolerance.Std(), time.Hour),
		ForGracePeriod:  durationOr(pr.ForGracePeriod.Std(), 10*time.Minute),
		ResendDelay:     time.Minute,
		GroupLoader:     e.loader,
	}
	mgr := rules.NewManager(opts)
	e.mu.Lock()
	restored := e.loaded
	e.mu.Unlock()
	if restored {
		// Only the groups of the first configuration restore their for
		// state, as in Prometheus after its first update.
		_ = mgr.Update(interval, nil, labels.EmptyLabels(), "", nil)
	}
	groups, errs := mgr.LoadGroups(interval, ext.labels, ext.url, nil, false, names...)
	if errs != nil {
		return nil, fmt.Errorf("the Prometheus rule files: %w", errors.Join(errs...))
	}
	return &Next{groups: groups, ext: ext, query: query, opts: opts}, nil
}

// Apply puts n in force as Prometheus' rule manager updates its groups: a
// group whose definition is unchanged keeps running; a changed one stops
// after its evaluation in flight and its successor takes its alerts' state
// (rules.Group.CopyState); a removed one stops. The groups of the first
// configuration restore their alerts' for state from ALERTS_FOR_STATE.
func (e *Evaluator) Apply(n *Next) {
	e.mu.Lock()
	defer e.mu.Unlock()
	extChanged := !e.ext.equal(n.ext)
	e.query.Store(&n.query)
	old := e.groups
	e.groups = make(map[string]*running, len(n.groups))
	for key, g := range n.groups {
		if prev, ok := old[key]; ok {
			delete(old, key)
			if !extChanged && prev.g.Equals(g) {
				e.groups[key] = prev
				continue
			}
			prev.halt()
			g.CopyState(prev.g)
			e.groups[key] = &running{g: g, url: n.ext.url}
		} else {
			e.groups[key] = &running{g: g, url: n.ext.url, restore: !e.loaded}
		}
		if e.started {
			e.start(e.groups[key])
		}
	}
	for _, r := range old {
		r.halt()
		if e.started {
			e.markStale(r.g, n.opts)
		}
	}
	e.ext = n.ext
	e.loaded = true
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func withGroupOrigin(ctx context.Context, g *rules.Group) context.Context {
	return promql.NewOriginContext(ctx, map[string]any{"ruleGroup": map[string]string{"file": g.File(), "name": g.Name()}})
}

// Start runs the groups until ctx ends or Stop.
func (e *Evaluator) Start(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return
	}
	e.started, e.ctx, e.stopping = true, ctx, make(chan struct{})
	for _, r := range e.groups {
		e.start(r)
	}
}

// Stop stops every group after its evaluation in flight.
func (e *Evaluator) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.groups {
		r.halt()
	}
	e.groups = map[string]*running{}
	if e.started {
		close(e.stopping)
	}
	e.started = false
}

// markStale writes stale markers for the series a removed group wrote at
// its last evaluation, two intervals after it stopped (so that a rule
// renamed into another group writes them first), as Prometheus' rule
// manager does: an empty group of the same name takes its state and
// evaluates once.
func (e *Evaluator) markStale(g *rules.Group, opts *rules.ManagerOptions) {
	stopped := e.o.Clock.Now()
	if last := g.GetLastEvalTimestamp(); !stopped.After(last) {
		stopped = last.Add(time.Millisecond) // after the last samples, on a clock that did not move
	}
	empty := rules.NewGroup(rules.GroupOptions{Name: g.Name(), File: g.File(), Interval: g.Interval(), Opts: opts})
	empty.CopyState(g)
	ctx, done := e.ctx, e.stopping
	due := e.o.Clock.After(2 * g.Interval()) // from now, not from when the goroutine runs
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		case <-due:
			empty.Eval(ctx, stopped)
		}
	}()
}

func (e *Evaluator) start(r *running) {
	if r.stop != nil {
		return
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	first := r.g.EvalTimestamp(e.o.Clock.Now().UnixNano()).Add(r.g.Interval())
	go func() {
		defer close(r.done)
		e.loop(e.ctx, r, first)
	}()
}

func (r *running) halt() {
	if r.stop == nil {
		return
	}
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// loop is rules.Group's run on the injected clock: the first evaluation at
// the group's next slot (its interval, offset by a hash of its file and
// name), then one per interval, skipping missed slots; a group that
// restores does so after its second evaluation.
func (e *Evaluator) loop(ctx context.Context, r *running, ts time.Time) {
	g := r.g
	itv := g.Interval()
	ctx = withGroupOrigin(ctx, g)
	wait := func(until time.Time) bool {
		select {
		case <-r.stop:
			return false
		case <-ctx.Done():
			return false
		case <-e.at(until):
			return true
		}
	}
	next := func() {
		missed := e.o.Clock.Now().Sub(ts)/itv - 1
		if missed < 0 {
			missed = 0
		}
		ts = ts.Add((missed + 1) * itv)
	}
	if !wait(ts) {
		return
	}
	e.eval(ctx, r, ts)
	if r.restore {
		if !wait(ts.Add(itv)) {
			return
		}
		next()
		// Prometheus restores at time.Now() right after this evaluation:
		// the time read before the outcome is told, so that whoever moves
		// a test's clock on seeing it does not move the restore too.
		g.RestoreForState(e.eval(ctx, r, ts))
	}
	for wait(ts.Add(itv)) {
		next()
		e.eval(ctx, r, ts)
	}
}

// EvalDue evaluates, in the caller's goroutine, every group whose slot has
// come by now, with the timing of a started evaluator's group loop: a
// group's first slot is the one after the first call's now and is
// evaluated when it comes, later slots are evaluated at the latest one at
// or before now (the missed ones are skipped), and a group that restores
// its for state does so after its second evaluation. It is how whoever
// owns the clock (a replay) steps the groups in lock-step with it, on an
// evaluator that is not started (a started one is left to its loops:
// nothing is evaluated); calls must not overlap, and now must not go back.
// It returns how many group evaluations ran.
func (e *Evaluator) EvalDue(ctx context.Context, now time.Time) int {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return 0
	}
	rs := make([]*running, 0, len(e.groups))
	for _, r := range e.groups {
		rs = append(rs, r)
	}
	e.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].g.File() != rs[j].g.File() {
			return rs[i].g.File() < rs[j].g.File()
		}
		return rs[i].g.Name() < rs[j].g.Name()
	})
	n := 0
	for _, r := range rs {
		g, itv := r.g, r.g.Interval()
		if r.due.IsZero() {
			r.due = g.EvalTimestamp(now.UnixNano()).Add(itv)
		}
		for !r.due.After(now) {
			ts := r.due
			if r.evals > 0 {
				ts = ts.Add(now.Sub(ts) / itv * itv) // the missed slots are skipped
			}
			done := e.eval(withGroupOrigin(ctx, g), r, ts)
			r.evals++
			n++
			if r.restore && r.evals == 2 {
				g.RestoreForState(done) // at the time the evaluation ended, as the loop restores
			}
			r.due = ts.Add(itv)
		}
	}
	return n
}

// at fires when the clock reaches t: exactly so on a clock that can wait
// for a time (the tests' fake clock, moved by the test while this
// goroutine reads it), else after t minus now.
func (e *Evaluator) at(t time.Time) <-chan time.Time {
	if c, ok := e.o.Clock.(interface {
		At(time.Time) <-chan time.Time
	}); ok {
		return c.At(t)
	}
	return e.o.Clock.After(t.Sub(e.o.Clock.Now()))
}

// eval evaluates the group at ts, tells the outcome and returns the time
// the evaluation ended.
func (e *Evaluator) eval(ctx context.Context, r *running, ts time.Time) time.Time {
	rules.DefaultEvalIterationFunc(ctx, r.g, ts)
	done := e.o.Clock.Now()
	if e.o.OnEval != nil {
		e.o.OnEval(Outcome(r.g, ts, r.url))
	}
	return done
}

// Outcome is what a group's last evaluation (at ts) left: its active alerts
// and its failed alerting rules. Generator URLs are those Prometheus sends
// to Alertmanager, on externalURL.
func Outcome(g *rules.Group, ts time.Time, externalURL string) Evaluation {
	ev := Evaluation{File: g.File(), Group: g.Name(), At: ts}
	for i, rule := range g.Rules() {
		ar, ok := rule.(*rules.AlertingRule)
		if !ok {
			continue
		}
		id := RuleID{File: g.File(), Group: g.Name(), Index: i + 1, Name: ar.Name()}
		if err := ar.LastError(); err != nil {
			lb := labels.NewBuilder(ar.Labels())
			lb.Set(model.AlertNameLabel, ar.Name())
			ev.Failures = append(ev.Failures, Failure{Rule: id, Labels: lb.Labels(), Err: err})
		}
		gen := externalURL + strutil.TableLinkForExpression(ar.Query().String())
		for _, a := range ar.ActiveAlerts() {
			ev.Alerts = append(ev.Alerts, Alert{Rule: id, State: a.State.String(), Labels: a.Labels, Annotations: a.Annotations,
				Value: a.Value, ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, KeepFiringSince: a.KeepFiringSince, GeneratorURL: gen})
		}
	}
	sort.SliceStable(ev.Alerts, func(i, j int) bool { return labels.Compare(ev.Alerts[i].Labels, ev.Alerts[j].Labels) < 0 })
	return ev
}

// Groups returns the groups in force, ordered by file and name.
func (e *Evaluator) Groups() []*rules.Group {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*rules.Group, 0, len(e.groups))
	for _, r := range e.groups {
		out = append(out, r.g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File() != out[j].File() {
			return out[i].File() < out[j].File()
		}
		return out[i].Name() < out[j].Name()
	})
	return out
}
