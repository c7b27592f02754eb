package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// The harness runs the real thing in-process: the configuration loaded from
// files, SQLite in a temporary directory, the embedded TSDB, the heartbeat
// tracker, the engine with the remediation runner and this handler on
// 127.0.0.1 — all on an injected clock. Only the external effects of the
// run steps (psql, systemctl) are faked: see fakeEffects.

const (
	adminSecret = "admin-secret-0123456789"
	readSecret  = "read-secret-0123456789ab"
)

const harnessConfig = `files: [rules.yaml]
data_dir: data
notifiers:
  - {name: slack, console: {}}
  - {name: pagerduty, console: {}}
escalation_policies:
  - name: dba
    info: [slack]
    levels: [{notify: [slack, pagerduty]}]
defaults: {escalate: dba}
heartbeats:
  - {name: nightly-backup, period: 24h, grace: 2h}
  - {name: log-rotate, period: 1h, grace: 10m}
safety: {max_concurrent_runs: 4, run_budget: {count: 20, within: 1h}}
web:
  tokens:
    - {name: alice, role: admin, token_env: T_ADMIN}
    - {name: rob, role: read, token_env: T_READ}
`

const harnessRules = `asserts:
  - name: pg-connections
    description: Every PostgreSQL instance accepts connections with headroom
    every: 15s
    query: {free: 'pg_free_connections'}
    expect: free > 10
    remediate: terminate-idle-connections
    labels: {team: dba}
  - name: pg-replication-lag
    description: Standbys stay within 30s of the primary
    every: 15s
    query: {lag_s: 'pg_replication_lag_seconds'}
    expect: lag_s < 30
    for: 1m
  - name: nightly-backup
    description: The nightly backup ran within 26h
    every: 1m
    expect: heartbeat("nightly-backup").age < duration("26h")
    remediate: rerun-backup
remediations:
  - name: terminate-idle-connections
    description: Terminate connections idle for more than 10 minutes
    lock: "pg/{{ .Labels.instance }}"
    max_runs: {count: 3, within: 1h}
    steps:
      - name: terminate
        run: [psql, "--host={{ .Labels.instance }}", --command=SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle']
        timeout: 30s
        on_failure: page
      - name: verify
        verify: pg-connections
        on_failure: page
  - name: rerun-backup
    lock: backup
    steps:
      - name: start-backup
        run: [systemctl, start, --wait, pg-backup.service]
        timeout: 3h
        on_failure: page
      - name: verify
        verify: nightly-backup
        on_failure: page
`

// clock is the injected time. Remediation runs wait on it (wait steps,
// retry backoff, approval expiry): After fires when Add moves the clock
// past the deadline, as in asserttest.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	timers []timer
}

type timer struct {
	at time.Time
	ch chan time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After fires when the clock reaches now+d.
func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.timers = append(c.timers, timer{at: c.t.Add(d), ch: ch})
	return ch
}

// Add moves the clock and fires the timers that are due.
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.t) {
			tm.ch <- tm.at
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
	return c.t
}

func (c *clock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fakeEffects stand in for what run and http steps do outside assertd. The
// harness runs the real remediation runner, but the machine running the
// tests has no PostgreSQL to psql into and no pg-backup.service to start
// (and a test must never run systemctl): so the runner's Effects answer for
// those steps, with the output the real command prints. Verify steps are
// left to the real engine. A test may add what a command does to the world
// (a terminate frees connections) with onRun.
type fakeEffects struct {
	mu    sync.Mutex
	hooks map[string]func() string // "remediation/step": called when the step runs; returns its output ("": the usual)
}

// stepOutput is what the real commands of harnessRules print.
var stepOutput = map[string]string{
	"terminate-idle-connections/terminate": "pg_terminate_backend\n----------------------\n t\n t\n t\n(3 rows)\n",
	"rerun-backup/start-backup":            "",
}

func (f *fakeEffects) onRun(remediation, step string, do func() string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hooks == nil {
		f.hooks = map[string]func() string{}
	}
	f.hooks[remediation+"/"+step] = do
}

func (f *fakeEffects) Step(remediation string, st *remediations.CompiledStep) (bool, string, bool) {
	switch st.Kind {
	case "run", "http":
		f.mu.Lock()
		hook := f.hooks[remediation+"/"+st.Name]
		f.mu.Unlock()
		out := stepOutput[remediation+"/"+st.Name]
		if hook != nil {
			if o := hook(); o != "" {
				out = o
			}
		}
		return true, out, true
	}
	return false, "", false
}

// env is one running assertd for a test.
type env struct {
	t     testing.TB
	ctx   context.Context
	clock *clock
	set   *config.Set
	st    store.Store
	emb   *sources.Embedded
	hb    *heartbeat.Tracker
	eng   *engine.Engine
	run   *remediations.Runner
	fx    *fakeEffects
	reg   *prometheus.Registry
	srv   *httptest.Server
	base  string
}

// start0 is when every harness starts: a fixed time, so screenshots and
// tests do not depend on the wall clock.
var start0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"assertd.yaml": harnessConfig, "rules.yaml": harnessRules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, clock: &clock{t: start0}, set: set, reg: prometheus.NewRegistry()}
	var err error
	if e.st, err = sqlite.Open(ctx, filepath.Join(dir, "assertd.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if e.emb, err = sources.OpenEmbedded(sources.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"),
		EngineOptions: sources.EngineOptions{Logger: slog.New(slog.DiscardHandler)}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.emb.Close() })
	if e.hb, err = heartbeat.New(ctx, set.Heartbeats, store.HeartbeatStore{Store: e.st}, heartbeat.Options{Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	e.fx = &fakeEffects{}
	if e.eng, err = engine.New(ctx, engine.Options{Set: set, Store: e.st, Sources: map[string]asserts.Querier{config.EmbeddedName: e.emb},
		Heartbeats: e.hb, Now: e.clock.Now, Registerer: e.reg, Logger: slog.New(slog.DiscardHandler), NewRemediator: func(h remediations.Host) engine.Remediator {
			e.run = remediations.NewRunner(remediations.RunnerOptions{Host: h, Store: e.st, Clock: e.clock, Effects: e.fx,
				Logger: slog.New(slog.DiscardHandler), LookupEnv: func(string) (string, bool) { return "", false },
				ReadFile: func(string) ([]byte, error) { return nil, errors.New("the web harness reads no secret files") }})
			return e.run
		}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.run.Wait) // before the store closes
	env := map[string]string{"T_ADMIN": adminSecret, "T_READ": readSecret}
	h, err := New(Deps{Engine: e.eng, Store: e.st, Heartbeats: e.hb, Web: set.Config.Web, ConfigDir: set.Dir(),
		Getenv: func(k string) string { return env[k] }, Pings: e.hb.Handler(e.clock.Now), Gatherer: e.reg, Registerer: e.reg,
		Now: e.clock.Now, EventEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(h)
	e.srv.Config = Server(h)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.base = e.srv.URL
	if !strings.HasPrefix(e.base, "http://127.0.0.1:") {
		t.Fatalf("server on %s, not 127.0.0.1", e.base)
	}
	return e
}

// sample writes one value of a series at the clock's time.
func (e *env) sample(metric string, value float64, kv ...string) {
	e.t.Helper()
	if err := e.write(metric, value, kv...); err != nil {
		e.t.Fatal(err)
	}
}

// write is sample without failing the test, for the runs' goroutines.
func (e *env) write(metric string, value float64, kv ...string) error {
	app := e.emb.Appendable().Appender(e.ctx)
	if _, err := app.Append(0, labels.FromStrings(append([]string{"__name__", metric}, kv...)...), e.clock.Now().UnixMilli(), value); err != nil {
		return err
	}
	return app.Commit()
}

// eval evaluates every assert at the clock's time.
func (e *env) eval() {
	e.t.Helper()
	for _, a := range e.set.Asserts {
		if err := e.eng.EvaluateNow(e.ctx, a.Name, e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	e.settle()
}

// settle waits until every remediation run in flight has ended or waits on
// the clock, so that tests see what the runs did and the clock only moves
// when nothing runs.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.run.InFlight() > e.clock.waiting() {
		if time.Now().After(deadline) {
			e.t.Fatalf("a remediation run did not settle within 10s")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// seed gives the instances a realistic few minutes: three databases, one of
// which runs out of connections, a standby that lags, backups that ping.
func (e *env) seed() {
	e.t.Helper()
	for i := 0; i < 8; i++ {
		db3 := 40.0 - float64(i)*6
		e.sample("pg_free_connections", 87, "instance", "db1", "cluster", "main")
		e.sample("pg_free_connections", 64, "instance", "db2", "cluster", "main")
		e.sample("pg_free_connections", max(db3, 3), "instance", "db3", "cluster", "reports")
		e.sample("pg_replication_lag_seconds", 1.2+float64(i)*6, "instance", "db2", "cluster", "main")
		if i == 0 {
			e.ping("nightly-backup")
			e.ping("log-rotate")
		}
		e.eval()
		e.clock.Add(30 * time.Second)
	}
}

// freeConnectionsOnTerminate makes the terminate step of
// terminate-idle-connections do what it does on a real database: the idle
// sessions of an instance go away (n of them) and it has free connections
// again.
func (e *env) freeConnectionsOnTerminate(in assertd.Instance, n int, free float64) {
	out := "pg_terminate_backend\n----------------------\n" + strings.Repeat(" t\n", n) + fmt.Sprintf("(%d rows)\n", n)
	e.fx.onRun("terminate-idle-connections", "terminate", func() string {
		if err := e.write("pg_free_connections", free, "instance", in.Labels["instance"], "cluster", in.Labels["cluster"]); err != nil {
			return "test harness: " + err.Error()
		}
		return out
	})
}

// ping sends a heartbeat ping through the listener.
func (e *env) ping(name string) {
	e.t.Helper()
	code, body := e.do("GET", "/ping/"+name, "", "")
	if code != 200 {
		e.t.Fatalf("ping %s: %d %s", name, code, body)
	}
}

// do sends a request with an optional bearer token and returns the status and body.
func (e *env) do(method, path, tok, body string) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getJSON reads a JSON answer with the read token.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	code, body := e.do("GET", path, readSecret, "")
	if code != 200 {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// instance finds an instance in the engine by assert and label value.
func (e *env) instance(assert, instance string) assertd.Instance {
	e.t.Helper()
	for _, in := range e.eng.Instances() {
		if in.Assert == assert && in.Labels["instance"] == instance {
			return in
		}
	}
	e.t.Fatalf("no instance %s %s in %+v", assert, instance, e.eng.Instances())
	return assertd.Instance{}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
