// Package replay runs assertd's engine over a stretch of real history: the
// configuration is built by app.New as assertd run builds it, on a fake
// clock that moves from the window's start to its end, with every source
// answered from range queries over the window (each distinct query once per
// chunk), the Prometheus rule files' groups evaluated at their slots on that
// clock (their alerts feeding the asserts bound to them), remediation steps
// not executed, verify steps evaluated on the data
// at the time they would have verified, and channels that record the pages
// instead of sending them. What the engine decided is read back from its
// store and summed up per assert (Report), and two versions of the rules are
// compared on the same window (Compare). InForce replays the configuration
// in force of a running assertd for its UI's Replay page.
package replay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/promrules"
	"github.com/assertd/assertd/store/sqlite"
)

// DefaultChunk is the span of one range query.
const DefaultChunk = 2 * time.Hour

// Options say what to replay.
type Options struct {
	ConfigPath string
	From, To   time.Time
	Step       time.Duration // default 30s
	Chunk      time.Duration // default DefaultChunk
	// Sources replace the configured sources by name (the embedded one is
	// config.EmbeddedName); by default a remote source is read through its
	// API and the embedded one from the TSDB in the configured data_dir.
	Sources map[string]RangeSource
	// DataDir holds the embedded TSDB to read (default the config's
	// data_dir): a compared version reads the same history.
	DataDir string
	// Getenv reads the remote sources' secrets. Default os.Getenv.
	Getenv func(string) string
	// Pings, when set, is the store the heartbeats' pings are read from
	// (a running assertd's) instead of opening the configured one.
	Pings  PingStore
	Logger *slog.Logger
}

// placeholderSecret is every secret the replayed stack reads (channels,
// web tokens, step environments): nothing it builds is called.
const placeholderSecret = "assertd-replay-placeholder"

// Run replays the window and reports what the engine decided.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Step <= 0 {
		o.Step = 30 * time.Second
	}
	if o.Chunk < o.Step {
		o.Chunk = max(DefaultChunk, o.Step)
	}
	if !o.To.After(o.From) {
		return nil, fmt.Errorf("the window is empty: --from %s is not before --to %s", o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339))
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.From = o.From.Truncate(o.Step)
	o.To = o.From.Add(o.To.Sub(o.From).Truncate(o.Step))
	set, errs := config.Load(o.ConfigPath)
	if len(errs) > 0 {
		return nil, errs
	}
	w := window{From: o.From.UTC(), To: o.To.UTC(), Step: o.Step, Chunk: o.Chunk.Truncate(o.Step)}
	hists, closeSources, err := openSources(set, o, w)
	if err != nil {
		return nil, err
	}
	defer closeSources()

	dir, err := os.MkdirTemp("", "assertd-replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.File), sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	clock := fakeclock.New(w.From)
	rec := &recorder{clock: clock}
	fakes := map[string]notifiers.Notifier{}
	for _, n := range set.Config.Notifiers {
		fakes[n.Name] = &channel{name: n.Name, rec: rec}
	}
	qs := map[string]asserts.Querier{}
	for name, h := range hists {
		qs[name] = h
	}
	a, err := app.New(ctx, app.Options{
		ConfigPath:        o.ConfigPath,
		DataDir:           dir,
		Logger:            o.Logger,
		Getenv:            func(string) string { return placeholderSecret },
		ReadFile:          func(string) ([]byte, error) { return []byte(placeholderSecret), nil },
		Clock:             clock,
		Store:             st,
		Effects:           effects{},
		Notifiers:         fakes,
		Sources:           qs,
		Stdout:            io.Discard,
		Jitter:            func() float64 { return 0.5 },
		NoScrape:          true,
		NoListener:        true,
		NoRemoteWrite:     true,
		RuleFilesRelative: true,
		AlignEvaluations:  w.From,
	})
	if err != nil {
		return nil, err
	}
	eng, runner, del, hb, rules := a.Engine(), a.Runner(), a.Deliverer(), a.Heartbeats(), a.Rules()
	pings, notes := storedPings(ctx, set, o, w)
	notes = append(notes, unreplayed(set)...)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = a.Stop(context.WithoutCancel(ctx))
			runner.Wait()
		}
	}
	defer stop()
	settle := func() error {
		if err := clock.Settle(runner.InFlight, 30*time.Second); err != nil {
			return fmt.Errorf("a remediation run did not settle: %w", err)
		}
		return nil
	}
	ticks, ruleEvals := 0, 0
	for now := w.From; !now.After(w.To); now = now.Add(w.Step) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clock.Set(now)
		for len(pings) > 0 && !pings[0].At.After(now) {
			p := pings[0]
			p.ID = 0
			if err := hb.Ping(ctx, p); err != nil {
				notes = append(notes, fmt.Sprintf("heartbeat %s: the ping at %s was not taken: %v", p.Heartbeat, p.At.UTC().Format(time.RFC3339), err))
			}
			pings = pings[1:]
		}
		if err := settle(); err != nil {
			return nil, err
		}
		// The rule groups whose slot has come, their alerts handed to the
		// feed and the asserts bound to them made due, as assertd run
		// does after each group evaluation.
		ruleEvals += rules.EvalDue(ctx, now)
		eng.Tick(ctx, now)
		if err := settle(); err != nil {
			return nil, err
		}
		if err := del.DeliverDue(ctx, now); err != nil {
			return nil, fmt.Errorf("delivering at %s: %w", now.Format(time.RFC3339), err)
		}
		ticks++
	}
	// What the series the rules read say of the data, for the asserts on
	// their alerts (an alert query returns nothing when its series are
	// missing as when its condition is false).
	reads := ruleReads(set)
	readRules(ctx, set, hists, reads)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep, err := build(ctx, set, st, rec, hists, reads, w)
	if err != nil {
		return nil, err
	}
	rep.Evaluations, rep.RuleEvaluations, rep.Notes = ticks, ruleEvals, notes
	return rep, nil
}

// openSources builds the history of every configured source.
func openSources(set *config.Set, o Options, w window) (map[string]*history, func(), error) {
	hists := map[string]*history{}
	var closers []func()
	closeAll := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	add := func(name string, src RangeSource) { hists[name] = newHistory(name, src, w) }
	if src := o.Sources[config.EmbeddedName]; src != nil {
		add(config.EmbeddedName, src)
	} else if usesEmbedded(set) {
		dir := o.DataDir
		if dir == "" {
			dir = set.DataDir()
		}
		ro, err := sources.OpenReadOnly(sources.TSDBDir(dir), sources.EngineOptions{Logger: o.Logger})
		if err != nil {
			return nil, nil, fmt.Errorf("source %s: %w", config.EmbeddedName, err)
		}
		closers = append(closers, func() { ro.Close() })
		add(config.EmbeddedName, ro)
	}
	for _, p := range set.Config.Sources.Prometheus {
		if src := o.Sources[p.Name]; src != nil {
			add(p.Name, src)
			continue
		}
		r, err := sources.NewRemote(p, set.Dir(), o.Getenv)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		add(p.Name, r)
	}
	return hists, closeAll, nil
}

// usesEmbedded reports whether an assert or the rules read the embedded
// TSDB.
func usesEmbedded(set *config.Set) bool {
	def := set.Config.Sources.Default
	if def == "" {
		def = config.EmbeddedName
	}
	for _, a := range set.Asserts {
		src := a.Source
		if src == "" {
			src = def
		}
		if src == config.EmbeddedName && len(a.Queries) > 0 {
			return true
		}
	}
	pr := set.Config.PrometheusRules
	return len(set.PromRules) > 0 && (pr.Source == "" || pr.Source == config.EmbeddedName)
}

// unreplayed says what of the configuration a replay does not evaluate,
// or evaluates with less than assertd run has: Alertmanager's alerts have
// no stored history, so the asserts they trigger see none; a rule reading
// both recorded series and others reads them from the history.
func unreplayed(set *config.Set) []string {
	var notes []string
	var names []string
	for _, a := range set.Asserts {
		if a.Trigger != nil && a.Trigger.Sender != alerts.SenderRules {
			names = append(names, a.Name)
		}
	}
	if len(names) > 0 {
		notes = append(notes, fmt.Sprintf("asserts triggered by Alertmanager see no alerts in a replay (no alert history is stored): %s", strings.Join(names, ", ")))
	}
	return append(notes, recordedReads(set)...)
}

// recordedReads names the rules that read both a series a recording rule
// of the rule files records and one none records: a replay writes the
// recorded samples to its own TSDB, where a rule reading only recorded
// series finds them, and runs a query that reads both on the history, which
// holds the recorded series only if the source recorded them.
func recordedReads(set *config.Set) []string {
	recorded := promrules.Recorded(set)
	if len(recorded) == 0 {
		return nil
	}
	src := set.Config.PrometheusRules.Source
	if src == "" {
		src = config.EmbeddedName
	}
	var notes []string
	for _, f := range set.PromRules {
		for _, g := range f.Groups.Groups {
			for _, r := range g.Rules {
				if rec, other := promrules.Reads(r.Expr, recorded); rec && other {
					notes = append(notes, fmt.Sprintf("%s: group %q, rule %q reads recorded series and others: it is run on the history of source %s, whose recorded series are those the source recorded, not those of these rules", relPath(set, f.Path), g.Name, r.Alert+r.Record, src))
				}
			}
		}
	}
	return notes
}

func relPath(set *config.Set, path string) string {
	if rel, err := filepath.Rel(set.Dir(), path); err == nil {
		return rel
	}
	return path
}

// effects stand in for the steps: a run or http step is not executed and
// counts as passed; a verify step is evaluated for real, on the history at
// the time it would have verified.
type effects struct{}

func (effects) Step(_ string, st *remediations.CompiledStep) (bool, string, bool) {
	switch st.Kind {
	case "run", "http":
		return true, "assertd replay: not executed", true
	}
	return false, "", false
}

// recorder keeps every message that reached a channel, with the replayed
// time it was sent at.
type recorder struct {
	clock *fakeclock.Clock
	mu    sync.Mutex
	sent  []sent
}

type sent struct {
	Channel string
	Kind    assertd.NoticeKind
	Level   int
	At      time.Time
	Notices []assertd.Notice
}

type channel struct {
	name string
	rec  *recorder
}

func (c *channel) Notify(_ context.Context, m *notifiers.Message) (bool, error) {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	c.rec.sent = append(c.rec.sent, sent{Channel: c.name, Kind: m.Kind, Level: m.Level, At: c.rec.clock.Now(), Notices: slices.Clone(m.Notices)})
	return false, nil
}

// all reads every record of a kind from the store, oldest first.
func all[T any](ctx context.Context, read func(context.Context, int) ([]T, error)) ([]T, error) {
	const most = 1 << 30
	xs, err := read(ctx, most)
	if err != nil {
		return nil, err
	}
	slices.Reverse(xs) // the store lists newest first
	return xs, nil
}
