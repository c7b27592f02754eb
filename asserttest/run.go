package asserttest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/value"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// Origin is the time the input series start at (as in promtool).
var Origin = time.Unix(0, 0).UTC()

// Result is the outcome of one test.
type Result struct {
	File     string
	Name     string
	Failures []string
	Duration time.Duration
}

// env is everything one test file runs on: one assertd built by app.New on
// a fake clock, with its SQLite store in a temporary directory.
type env struct {
	l      *Loaded
	clock  *fakeclock.Clock
	app    *app.App
	st     store.Store
	eng    *engine.Engine
	runner *remediations.Runner
	del    *notifiers.Deliverer
	hb     *heartbeat.Tracker
	chans  map[string]*fakeChannel
	closer []func()
	loaded int // input steps appended so far
}

// RunFile runs the tests of one file. Load errors are returned, not results.
func RunFile(ctx context.Context, path string) ([]Result, error) {
	l, errs := Load(path)
	if len(errs) > 0 {
		return nil, errs
	}
	e, err := setup(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer e.close()
	defer e.runner.Wait()
	order := make([]int, len(l.file.Tests)) // the tests by time; their index names their expressions
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return l.file.Tests[order[i]].At < l.file.Tests[order[j]].At })
	origin := l.origin
	step := l.file.EvaluationInterval.Std()
	if step <= 0 {
		step = time.Second
	}
	var out []Result
	now := origin
	pings := slices.Clone(l.file.Pings)
	sort.SliceStable(pings, func(i, j int) bool { return pings[i].At < pings[j].At })
	for _, ti := range order {
		t := l.file.Tests[ti]
		start := time.Now()
		until := origin.Add(t.At.Std())
		for !now.After(until) {
			// The samples at now are in before the clock reaches it: a run
			// whose wait ends at now verifies against them, as it would
			// live, whichever goroutine the scheduler runs first.
			if err := e.loadSeries(ctx, now); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			e.clock.Set(now)
			for len(pings) > 0 && !origin.Add(pings[0].At.Std()).After(now) {
				if err := e.ping(ctx, pings[0]); err != nil {
					return nil, err
				}
				pings = pings[1:]
			}
			if err := e.quiesce(); err != nil {
				return nil, err
			}
			e.eng.Tick(ctx, now)
			if err := e.quiesce(); err != nil {
				return nil, err
			}
			if err := e.del.DeliverDue(ctx, now); err != nil {
				return nil, fmt.Errorf("%s: delivering at %s: %w", path, now.Sub(origin), err)
			}
			now = now.Add(step)
		}
		r := Result{File: path, Name: t.Name, Failures: e.check(ctx, ti, until)}
		r.Duration = time.Since(start)
		out = append(out, r)
	}
	return out, nil
}

// testSecret is every secret a test run reads: from the environment, from
// secret files, as web tokens and notifier keys. Nothing real is called.
const testSecret = "assertd-test-secret-value"

// setup builds assertd for a test file through app.New, as assertd run
// does, with what a test replaces: the clock, the store (SQLite in a
// temporary directory, whatever the config says), every secret, the
// channels (fakes that record what reaches them), the effects of the steps
// (the file's outcomes), and the sources (every source reads the input
// series from the embedded TSDB, which scrapes nothing). No listener is
// built: RunFile drives the engine and the deliverer itself.
func setup(ctx context.Context, l *Loaded) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "assertd-test-")
	if err != nil {
		return nil, err
	}
	origin := l.origin
	e := &env{l: l, clock: fakeclock.New(origin)}
	e.closer = append(e.closer, func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.st, err = sqlite.Open(ctx, filepath.Join(dir, sqlite.File), sqlite.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.st.Close() })
	if err := e.putSilences(ctx); err != nil {
		return nil, err
	}
	// The channels are fakes that record what reached them; a channel can be
	// down for a while. The deliverer is the real one (retries, grouping,
	// threads), on the test's clock.
	e.chans = map[string]*fakeChannel{}
	fakes := map[string]notifiers.Notifier{}
	for _, n := range l.set.Config.Notifiers {
		c := &fakeChannel{name: n.Name, clock: e.clock, got: map[assertd.NoticeKind]int{}}
		for _, ch := range l.file.Channels {
			if ch.Name == n.Name && len(ch.Down) == 2 {
				c.down = append(c.down, [2]time.Time{origin.Add(ch.Down[0].Std()), origin.Add(ch.Down[1].Std())})
			}
		}
		e.chans[n.Name], fakes[n.Name] = c, c
	}
	e.app, err = app.New(ctx, app.Options{
		ConfigPath: l.set.ConfigPath,
		DataDir:    dir,
		Logger:     slog.New(slog.DiscardHandler),
		Getenv:     func(string) string { return testSecret },
		ReadFile:   func(string) ([]byte, error) { return []byte(testSecret), nil },
		Clock:      e.clock,
		Store:      e.st,
		Effects:    effects(l.file.Outcomes),
		Notifiers:  fakes,
		RemoteSource: func(_ config.Prometheus, embedded asserts.Querier) (asserts.Querier, error) {
			return embedded, nil // every source reads the input series
		},
		Stdout: io.Discard,
		Jitter: func() float64 { return 0.5 },
		// Evaluations at 0, every, 2×every … from the start, as promtool
		// evaluates rules: no per-name phase in tests.
		AlignEvaluations: origin,
		NoScrape:         true,
		NoListener:       true,
	})
	if err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { _ = e.app.Stop(context.WithoutCancel(ctx)) }) // a test run keeps nothing after it
	e.eng, e.runner, e.del, e.hb = e.app.Engine(), e.app.Runner(), e.app.Deliverer(), e.app.Heartbeats()
	return e, nil
}

// putSilences stores the test's silences, as an operator would create them.
func (e *env) putSilences(ctx context.Context) error {
	origin := e.l.origin
	for i, si := range e.l.file.Silences {
		s := assertd.Silence{ID: fmt.Sprintf("test-%d", i+1), Start: origin.Add(si.From.Std()), End: origin.Add(si.Until.Std()),
			Author: "assertd test", Comment: si.Comment, Created: origin}
		if s.Comment == "" {
			s.Comment = "assertd test"
		}
		for _, k := range slices.Sorted(maps.Keys(si.Labels)) {
			s.Matchers = append(s.Matchers, assertd.Matcher{Name: k, Op: assertd.MatchEqual, Value: si.Labels[k]})
		}
		if err := e.st.PutSilence(ctx, s); err != nil {
			return fmt.Errorf("silence %d: %w", i+1, err)
		}
	}
	return nil
}

// fakeChannel records the messages that reach a channel.
type fakeChannel struct {
	name  string
	clock *fakeclock.Clock
	down  [][2]time.Time
	mu    sync.Mutex
	got   map[assertd.NoticeKind]int
}

func (f *fakeChannel) Notify(_ context.Context, m *notifiers.Message) (bool, error) {
	now := f.clock.Now()
	for _, w := range f.down {
		if !now.Before(w[0]) && now.Before(w[1]) {
			return true, fmt.Errorf("channel %s is down (assertd test)", f.name)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[m.Kind]++
	return false, nil
}

func (f *fakeChannel) count(k assertd.NoticeKind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[k]
}

// quiesce waits until every remediation run in flight is blocked on the
// clock (or done), so that the clock only moves when nothing is running.
func (e *env) quiesce() error {
	if err := e.clock.Settle(e.runner.InFlight, 10*time.Second); err != nil {
		return fmt.Errorf("a remediation run did not settle: %w", err)
	}
	return nil
}

// effects fake the external effects of steps: nothing in a test runs a
// command or calls a URL. Run and http steps pass unless an outcome says
// otherwise; verify steps are evaluated for real unless an outcome is given.
type effects map[string]map[string]Outcome

func (f effects) Step(rem string, st *remediations.CompiledStep) (bool, string, bool) {
	o, listed := f[rem][st.Name]
	switch st.Kind {
	case "run":
		exit := 0
		if listed && o.Exit != nil {
			exit = *o.Exit
		}
		return exit == 0, fmt.Sprintf("assertd test: faked exit %d", exit), true
	case "http":
		status := 200
		if len(st.HTTP.ExpectStatus) > 0 {
			status = st.HTTP.ExpectStatus[0]
		}
		if listed && o.Status != nil {
			status = *o.Status
		}
		ok := status >= 200 && status < 300
		if len(st.HTTP.ExpectStatus) > 0 {
			ok = slices.Contains(st.HTTP.ExpectStatus, status)
		}
		return ok, fmt.Sprintf("assertd test: faked status %d", status), true
	case "verify":
		if listed && o.Pass != nil {
			return *o.Pass, fmt.Sprintf("assertd test: faked verify %t", *o.Pass), true
		}
	}
	return false, "", false
}

func (e *env) close() {
	for i := len(e.closer) - 1; i >= 0; i-- {
		e.closer[i]()
	}
}

// loadSeries appends the input samples up to till that are not in yet, in
// time order (the TSDB's head only takes recent samples, so all series
// advance together), as promtool's lazy loader does: over a long test the
// embedded TSDB's retention then never drops what an evaluation reads.
func (e *env) loadSeries(ctx context.Context, till time.Time) error {
	interval := e.l.file.Interval.Std()
	if interval <= 0 {
		interval = time.Minute
	}
	steps := 0
	for _, s := range e.l.series {
		steps = max(steps, len(s.values))
	}
	for ; e.loaded < steps && !e.l.origin.Add(time.Duration(e.loaded)*interval).After(till); e.loaded++ {
		i := e.loaded
		ap := e.app.Embedded().Appendable().Appender(ctx)
		ts := e.l.origin.Add(time.Duration(i) * interval).UnixMilli()
		for _, s := range e.l.series {
			if i >= len(s.values) || s.values[i].Omitted {
				continue
			}
			var err error
			if h := s.values[i].Histogram; h != nil {
				// A native histogram, as promtool loads it.
				_, err = ap.AppendHistogram(0, s.labels, ts, nil, h)
			} else {
				v := s.values[i].Value
				if isStale(v) {
					v = staleNaN()
				}
				_, err = ap.Append(0, s.labels, ts, v)
			}
			if err != nil {
				_ = ap.Rollback() // the append error is the one to report
				return fmt.Errorf("series %s at %s: %w", s.labels, time.Duration(i)*interval, err)
			}
		}
		if err := ap.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func staleNaN() float64 { return math.Float64frombits(value.StaleNaN) }

func (e *env) ping(ctx context.Context, p Ping) error {
	kind := assertd.PingKind(p.Kind)
	if kind == "" {
		kind = assertd.PingSuccess
	}
	return e.hb.Ping(ctx, assertd.Ping{Heartbeat: p.Heartbeat, Kind: kind, ExitCode: p.Exit, At: e.l.origin.Add(p.At.Std())})
}

// check compares what assertd did with the expectations of test ti at now.
func (e *env) check(ctx context.Context, ti int, now time.Time) []string {
	t := e.l.file.Tests[ti]
	fails := e.checkStates(t)
	fails = append(fails, e.checkAlerts(t)...)
	fails = append(fails, e.checkExprs(ctx, ti, now)...)
	if len(t.Runs) > 0 {
		runs, _ := e.st.Runs(ctx, store.RunFilter{})
		decisions, _ := e.st.Decisions(ctx, store.DecisionFilter{})
		for _, want := range t.Runs {
			var mine []assertd.Run
			for _, r := range runs {
				if r.Remediation == want.Remediation && !r.Shadow {
					mine = append(mine, r)
				}
			}
			if want.Count != nil && len(mine) != *want.Count {
				fails = append(fails, fmt.Sprintf("runs of %s:\n      want: %d\n      got:  %d", want.Remediation, *want.Count, len(mine)))
			}
			if want.Status != "" {
				got := "none"
				if len(mine) > 0 {
					got = string(mine[0].Status) // newest first
				}
				if got != want.Status {
					fails = append(fails, fmt.Sprintf("status of the latest run of %s:\n      want: %s\n      got:  %s", want.Remediation, want.Status, got))
				}
			}
			if want.Refused != "" {
				found := false
				var reasons []string
				for _, d := range decisions {
					if (d.Action == assertd.ActHold || d.Action == assertd.ActEscalate) && strings.Contains(d.Reason, want.Refused) {
						found = true
					}
					reasons = append(reasons, d.Reason)
				}
				if !found {
					fails = append(fails, fmt.Sprintf("a refusal of %s:\n      want: reason containing %q\n      got:  %s", want.Remediation, want.Refused, orNothing(strings.Join(reasons, "; "))))
				}
			}
		}
	}
	if len(t.Pages) > 0 || len(t.Info) > 0 || t.NoPage {
		// What reached each channel so far (a group is one message).
		pages, info := map[string]int{}, map[string]int{}
		for name, c := range e.chans {
			if n := c.count(assertd.NoticeTrigger); n > 0 {
				pages[name] = n
			}
			if n := c.count(assertd.NoticeInfo); n > 0 {
				info[name] = n
			}
		}
		for ch, n := range t.Pages {
			if pages[ch] != n {
				fails = append(fails, fmt.Sprintf("pages on %s:\n      want: %d\n      got:  %d", ch, n, pages[ch]))
			}
		}
		for ch, n := range t.Info {
			if info[ch] != n {
				fails = append(fails, fmt.Sprintf("informational messages on %s:\n      want: %d\n      got:  %d", ch, n, info[ch]))
			}
		}
		if t.NoPage && len(pages) > 0 {
			fails = append(fails, fmt.Sprintf("no page:\n      want: none\n      got:  %v", pages))
		}
	}
	return fails
}

func carries(ls assertd.Labels, want map[string]string) bool {
	for k, v := range want {
		if ls[k] != v {
			return false
		}
	}
	return true
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// Report prints results the way go test does and returns whether all passed.
func Report(w io.Writer, results []Result) bool {
	ok := true
	for _, r := range results {
		fmt.Fprintf(w, "=== RUN   %s\n", r.Name)
		if len(r.Failures) == 0 {
			fmt.Fprintf(w, "--- PASS: %s (%.2fs)\n", r.Name, r.Duration.Seconds())
			continue
		}
		ok = false
		fmt.Fprintf(w, "--- FAIL: %s (%.2fs)\n", r.Name, r.Duration.Seconds())
		for _, f := range r.Failures {
			fmt.Fprintf(w, "    %s: %s\n", filepath.Base(r.File), f)
		}
	}
	return ok
}

// JUnit writes results as JUnit XML.
func JUnit(w io.Writer, results []Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: "assertd", Tests: len(results)}
	for _, r := range results {
		c := testcase{Name: r.Name, Classname: r.File, Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
		if len(r.Failures) > 0 {
			s.Failures++
			c.Failure = &failure{Message: r.Failures[0], Text: strings.Join(r.Failures, "\n")}
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	return enc.Encode(s)
}
