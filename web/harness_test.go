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
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
)

// The harness runs the real thing in-process: the configuration loaded from
// files, SQLite in a temporary directory, the embedded TSDB, the heartbeat
// tracker, the engine and this handler on 127.0.0.1 — all on an injected
// clock. Only the three operator actions that other branches add to the
// engine (BreakGlass, Approve, Acknowledge) are fakes, recorded for the tests.

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

// clock is the injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakeOps stands in for the engine's operator actions: it records the calls
// and, for break glass, writes a run with its steps to the real store.
type fakeOps struct {
	st    store.Store
	set   *config.Set
	mu    sync.Mutex
	calls []string
}

func (f *fakeOps) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeOps) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeOps) BreakGlass(ctx context.Context, req engine.BreakGlassRequest) (assertd.Run, error) {
	f.record(fmt.Sprintf("break-glass %s %s %s by=%s dry=%v reason=%q", req.Remediation, req.Assert, req.Labels, req.By, req.DryRun, req.Reason))
	rm := f.set.Remediation(req.Remediation)
	run := assertd.Run{ID: fmt.Sprintf("bg-%d", req.At.UnixMicro()), Remediation: req.Remediation, Assert: req.Assert,
		Fingerprint: req.Labels.Fingerprint(), Labels: req.Labels, LockKey: "pg/" + req.Labels["instance"], Shadow: req.DryRun,
		Status: assertd.RunRunning, Started: req.At}
	if _, err := f.st.CreateRun(ctx, run); err != nil {
		return run, err
	}
	at := req.At
	for i, step := range rm.Steps {
		out := "verified: " + req.Assert + " holds for " + req.Labels.String()
		if step.Kind == "run" {
			out = "pg_terminate_backend\n----------------------\n t\n t\n t\n(3 rows)\n"
			if req.DryRun {
				out = "dry run: would run " + step.Name
			}
		}
		s := assertd.RunStep{RunID: run.ID, Seq: i, Name: step.Name, Attempt: 1, Started: at, Ended: at.Add(1200 * time.Millisecond),
			Outcome: assertd.StepOK, Output: out}
		if err := f.st.PutStep(ctx, s); err != nil {
			return run, err
		}
		at = at.Add(1500 * time.Millisecond)
	}
	run.Status, run.Ended, run.Outcome = assertd.RunSucceeded, at, "verified"
	return run, f.st.FinishRun(ctx, run.ID, run.Status, run.Ended, run.Outcome)
}

func (f *fakeOps) Approve(ctx context.Context, runID, by string, approved bool, comment string, now time.Time) error {
	f.record(fmt.Sprintf("approve %s by=%s approved=%v", runID, by, approved))
	return f.st.DecideApproval(ctx, runID, by, approved, now, comment)
}

func (f *fakeOps) Acknowledge(ctx context.Context, assert, fp, by, comment string, now time.Time) error {
	f.record(fmt.Sprintf("ack %s/%s by=%s", assert, fp, by))
	return nil
}

// testEngine is the real engine with the fake operator actions.
type testEngine struct {
	*engine.Engine
	ops *fakeOps
}

func (e testEngine) BreakGlass(ctx context.Context, req engine.BreakGlassRequest) (assertd.Run, error) {
	return e.ops.BreakGlass(ctx, req)
}

func (e testEngine) Approve(ctx context.Context, runID, by string, approved bool, comment string, now time.Time) error {
	return e.ops.Approve(ctx, runID, by, approved, comment, now)
}

func (e testEngine) Acknowledge(ctx context.Context, assert, fp, by, comment string, now time.Time) error {
	return e.ops.Acknowledge(ctx, assert, fp, by, comment, now)
}

// hbStore keeps the heartbeat tracker's state in the store (as app does).
type hbStore struct{ st store.Store }

func (h hbStore) LoadHeartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error) {
	return h.st.Heartbeats(ctx)
}
func (h hbStore) SaveHeartbeat(ctx context.Context, r assertd.HeartbeatRecord) error {
	return h.st.PutHeartbeat(ctx, r)
}
func (h hbStore) RecordPing(ctx context.Context, p assertd.Ping, r assertd.HeartbeatRecord) error {
	_, err := h.st.RecordPing(ctx, r, p)
	return err
}
func (h hbStore) AddPing(ctx context.Context, p assertd.Ping) error {
	r, err := h.st.Heartbeat(ctx, p.Heartbeat)
	if errors.Is(err, store.ErrNotFound) {
		r, err = assertd.HeartbeatRecord{Name: p.Heartbeat, Created: p.At}, nil
	}
	if err != nil {
		return err
	}
	_, err = h.st.RecordPing(ctx, r, p)
	return err
}
func (h hbStore) RecentPings(ctx context.Context, name string, n int) ([]assertd.Ping, error) {
	return h.st.Pings(ctx, name, n)
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
	ops   *fakeOps
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
	if e.st, err = store.OpenSQLite(ctx, filepath.Join(dir, "assertd.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if e.emb, err = sources.OpenEmbedded(sources.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"),
		EngineOptions: sources.EngineOptions{Logger: slog.New(slog.DiscardHandler)}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.emb.Close() })
	if e.hb, err = heartbeat.New(ctx, set.Heartbeats, hbStore{e.st}, heartbeat.Options{Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if e.eng, err = engine.New(ctx, engine.Options{Set: set, Store: e.st, Sources: map[string]asserts.Querier{config.EmbeddedName: e.emb},
		Heartbeats: e.hb, Now: e.clock.Now, Registerer: e.reg}); err != nil {
		t.Fatal(err)
	}
	e.ops = &fakeOps{st: e.st, set: set}
	env := map[string]string{"T_ADMIN": adminSecret, "T_READ": readSecret}
	h, err := New(Deps{Engine: testEngine{e.eng, e.ops}, Store: e.st, Heartbeats: e.hb, Web: set.Config.Web, ConfigDir: set.Dir(),
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
	app := e.emb.Appendable().Appender(e.ctx)
	if _, err := app.Append(0, labels.FromStrings(append([]string{"__name__", metric}, kv...)...), e.clock.Now().UnixMilli(), value); err != nil {
		e.t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		e.t.Fatal(err)
	}
}

// eval evaluates every assert at the clock's time.
func (e *env) eval() {
	e.t.Helper()
	for _, a := range e.set.Asserts {
		if err := e.eng.EvaluateNow(e.ctx, a.Name, e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
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
