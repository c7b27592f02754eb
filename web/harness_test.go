package web_test

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

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// The harness runs the real thing in-process, built by app.New as assertd
// run builds it: the configuration loaded from files, SQLite in a temporary
// directory, the embedded TSDB, the heartbeat tracker, the engine with the
// remediation runner, the deliverer and the handler on 127.0.0.1 — all on
// one fake clock (internal/fakeclock). Only the external effects of the
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
  - {name: nightly-backup, period: 24h, grace: 2h, public: true}
  - {name: log-rotate, period: 1h, grace: 10m, public: true}
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
	t      testing.TB
	ctx    context.Context
	clock  *fakeclock.Clock
	app    *app.App
	set    *config.Set
	st     store.Store
	eng    *engine.Engine
	run    *remediations.Runner
	fx     *fakeEffects
	config string // the path of assertd.yaml
	base   string
}

// start0 is when every harness starts: a fixed time, so screenshots and
// tests do not depend on the wall clock.
var start0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// newEnv builds assertd through app.New, as assertd run does, from the
// harness's files in a temporary directory, on a fake clock and with the
// fake effects, and serves its handler on 127.0.0.1. Nothing evaluates or
// delivers by itself: the tests move the clock and evaluate.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, harnessConfig, harnessRules)
}

// newEnvWith is newEnv with another configuration and rules.
func newEnvWith(t testing.TB, cfg, rules string) *env {
	t.Helper()
	return newEnvOptions(t, cfg, rules, app.Options{})
}

// newEnvOptions is newEnvWith with more of app.Options (those newApp does
// not set).
func newEnvOptions(t testing.TB, cfg, rules string, o app.Options) *env {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"assertd.yaml": cfg, "rules.yaml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, ctx: context.Background(), clock: fakeclock.New(start0), fx: &fakeEffects{}, config: filepath.Join(dir, "assertd.yaml")}
	a := e.newApp(o)
	e.app, e.set, e.st, e.eng, e.run = a, a.Set(), a.Store(), a.Engine(), a.Runner()
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config = web.Server(a.Handler())
	srv.Start()
	t.Cleanup(srv.Close)
	e.base = srv.URL
	if !strings.HasPrefix(e.base, "http://127.0.0.1:") {
		t.Fatalf("server on %s, not 127.0.0.1", e.base)
	}
	return e
}

// newApp builds an assertd of the harness's configuration, clock, secrets
// and effects, with o's Store and DataDir; it stops when the test ends.
func (e *env) newApp(o app.Options) *app.App {
	e.t.Helper()
	secrets := map[string]string{"T_ADMIN": adminSecret, "T_READ": readSecret,
		"SLACK_TOKEN": slackToken, "SLACK_SIGNING": slackSigning, "PD_KEY": pdKey, "PD_WEBHOOK": pdWebhookSecret}
	o.ConfigPath = e.config
	o.Logger = slog.New(slog.DiscardHandler)
	o.Getenv = func(k string) string { return secrets[k] }
	o.ReadFile = func(string) ([]byte, error) { return nil, errors.New("the web harness reads no secret files") }
	o.Clock, o.Effects, o.Stdout, o.EventEvery = e.clock, e.fx, io.Discard, 100*time.Millisecond
	a, err := app.New(e.ctx, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := a.Stop(e.ctx); err != nil {
			e.t.Error(err)
		}
	})
	return a
}

// restart builds a second assertd on the same configuration and store, as
// a restart finds them (the state in the store, nothing in memory). It has
// its own empty embedded TSDB: the first assertd still holds its directory.
func (e *env) restart() *app.App {
	e.t.Helper()
	return e.newApp(app.Options{Store: e.st, DataDir: e.t.TempDir()})
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
	ap := e.app.Embedded().Appendable().Appender(e.ctx)
	if _, err := ap.Append(0, labels.FromStrings(append([]string{"__name__", metric}, kv...)...), e.clock.Now().UnixMilli(), value); err != nil {
		return err
	}
	return ap.Commit()
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
	if err := e.clock.Settle(e.run.InFlight, 10*time.Second); err != nil {
		e.t.Fatalf("a remediation run did not settle: %v", err)
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
