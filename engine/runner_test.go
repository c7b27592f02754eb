package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/remediations"
	"github.com/assertd/assertd/store"
)

// The runner implements the engine's Remediator (RunResult is an alias of
// assertd.RunResult, so the callback types are the same).
var _ Remediator = (*remediations.Runner)(nil)

// runnerConfig pages one channel (pager) and informs another (slack), so
// that "one page" is one message.
const runnerConfig = `files: [rules.yaml]
notifiers:
  - {name: slack, console: {}}
  - {name: pager, console: {}}
escalation_policies:
  - name: ops
    info: [slack]
    levels: [{after: 0s, notify: [pager]}]
defaults: {escalate: ops}
`

func loadRunnerSet(t *testing.T, rules, extra string) *config.Set {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(runnerConfig+extra), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// helperProgram builds remediations/testdata/helper once.
func helperProgram(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "engine-helper-")
		if err != nil {
			helperErr = err
			return
		}
		helperPath = filepath.Join(dir, "helper")
		if out, err := exec.Command("go", "build", "-o", helperPath, "../remediations/testdata/helper").CombinedOutput(); err != nil {
			helperErr = &buildError{err, string(out)}
		}
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helperPath
}

type buildError struct {
	err error
	out string
}

func (b *buildError) Error() string { return "building the helper: " + b.err.Error() + "\n" + b.out }

// withRunner makes an engine with a real runner over the real store.
func withRunner(t *testing.T, set *config.Set, st store.Store, srcs map[string]asserts.Querier, o remediations.RunnerOptions) (*Engine, *remediations.Runner) {
	t.Helper()
	o.Store = st
	if o.Grace == 0 {
		o.Grace = 200 * time.Millisecond
	}
	var r *remediations.Runner
	e, err := New(context.Background(), Options{Set: set, Store: st, Sources: srcs, NewRemediator: func(h remediations.Host) Remediator {
		o.Host = h
		r = remediations.NewRunner(o)
		return r
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Wait)
	return e, r
}

// settle waits for the runs started so far to end (the runner's goroutine
// returns after the engine committed the outcome) and checks that no
// instance is left remediating.
func settle(t *testing.T, e *Engine) {
	t.Helper()
	if r, ok := e.rem.(*remediations.Runner); ok {
		r.Wait()
	}
	for _, in := range e.Instances() {
		if in.State == assertd.Remediating {
			t.Fatalf("still remediating after every run ended: %s", states(e))
		}
	}
}

func runs(t *testing.T, st store.Store) []assertd.Run {
	t.Helper()
	rs, err := st.Runs(context.Background(), store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func notice(t *testing.T, m assertd.Message) assertd.Notice {
	t.Helper()
	var n assertd.Notice
	if err := json.Unmarshal([]byte(m.Payload), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// healthSource probes a service's /health: up is 1 when it answers 200.
type healthSource struct{ dir string }

func (h healthSource) Query(ctx context.Context, _ string, _ time.Time) (assertd.Vector, error) {
	up := 0.0
	if addr, err := os.ReadFile(filepath.Join(h.dir, "addr")); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+string(addr)+"/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				up = 1
			}
		}
	}
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"instance": "svc"}, Value: up}}}, nil
}

// supervise runs the helper's service and restarts it whenever it exits,
// as systemd's Restart=always would. It returns once the first one says it
// is ready.
func supervise(t *testing.T, helper, dir string) {
	t.Helper()
	var mu sync.Mutex
	var cur *exec.Cmd
	stopped := false
	done, ready := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for first := true; ; first = false {
			mu.Lock()
			if stopped {
				mu.Unlock()
				return
			}
			cur = exec.Command(helper, "serve", dir)
			var out, w *os.File
			if first {
				var err error
				if out, w, err = os.Pipe(); err != nil {
					mu.Unlock()
					return
				}
				cur.Stdout = w
				defer out.Close()
			}
			err := cur.Start()
			if w != nil {
				w.Close() // the child has its copy
			}
			mu.Unlock()
			if err != nil {
				return
			}
			if out != nil {
				go func() {
					if line, _ := bufio.NewReader(out).ReadString('\n'); line == "ready\n" {
						close(ready)
					}
				}()
			}
			cur.Wait()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		stopped = true
		if cur != nil && cur.Process != nil {
			cur.Process.Kill()
		}
		mu.Unlock()
		<-done
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the service did not start")
	}
}

func restartRules(dir, helper string) string {
	return `asserts:
  - {name: svc-up, query: {up: health}, expect: up == 1, remediate: restart-svc}
remediations:
  - name: restart-svc
    lock: "svc/{{ .Labels.instance }}"
    max_runs: {count: 3, within: 1h}
    steps:
      - name: restart
        run: [` + helper + `, kill, ` + filepath.Join(dir, "service.pid") + `]
        timeout: 10s
      - name: settle
        wait: 300ms
      - name: verify
        verify: svc-up
        retries: 5
        backoff: 50ms
`
}

// A violated instance with a working restart remediation ends ok
// with one run recorded (steps, outputs, verify result) and one
// informational message, and no page; the same with a remediation whose
// verify fails ends escalated with exactly one page carrying the step log.
func TestRestartRemediation(t *testing.T) {
	helper := helperProgram(t)
	for _, broken := range []bool{false, true} {
		t.Run(map[bool]string{false: "restart fixes it", true: "verify fails"}[broken], func(t *testing.T) {
			dir := t.TempDir()
			supervise(t, helper, dir)
			set := loadRunnerSet(t, restartRules(dir, helper), "")
			st := openStore(t)
			e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: healthSource{dir}}, remediations.RunnerOptions{})
			ctx := context.Background()
			e.EvaluateNow(ctx, "svc-up", t0)
			if got := states(e); got != "svc=ok" {
				t.Fatalf("before: %s", got)
			}
			addr, _ := os.ReadFile(filepath.Join(dir, "addr"))
			if broken {
				os.WriteFile(filepath.Join(dir, "broken"), nil, 0o644) // on disk: a restart does not help
			} else {
				resp, err := http.Get("http://" + string(addr) + "/wedge") // in memory: a restart helps
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			e.EvaluateNow(ctx, "svc-up", t0.Add(10*time.Second))
			settle(t, e)

			rs := runs(t, st)
			if len(rs) != 1 {
				t.Fatalf("%d runs", len(rs))
			}
			steps, _ := st.Steps(ctx, rs[0].ID)
			ms := messages(t, st)
			if !broken {
				if got := states(e); got != "svc=ok" {
					t.Fatalf("after: %s\n%s", got, transitions(t, st))
				}
				if rs[0].Status != assertd.RunSucceeded || !strings.Contains(rs[0].Outcome, "verified: svc-up holds") {
					t.Fatalf("run %+v", rs[0])
				}
				if len(steps) < 3 || steps[0].Name != "restart" || !strings.Contains(steps[0].Output, "sent SIGTERM") ||
					steps[len(steps)-1].Name != "verify" || steps[len(steps)-1].Outcome != assertd.StepOK {
					t.Fatalf("steps %+v", steps)
				}
				if len(ms) != 1 || ms[0].Kind != string(assertd.NoticeInfo) || ms[0].Channel != "slack" {
					t.Fatalf("want one informational message and no page: %+v", ms)
				}
				return
			}
			if got := states(e); got != "svc=escalated" {
				t.Fatalf("after: %s", got)
			}
			if rs[0].Status != assertd.RunFailed || len(steps) != 8 { // restart, settle, 6 verify attempts
				t.Fatalf("run %+v, %d steps", rs[0], len(steps))
			}
			if len(ms) != 1 || ms[0].Kind != string(assertd.NoticeTrigger) || ms[0].Channel != "pager" {
				t.Fatalf("want exactly one page: %+v", ms)
			}
			n := notice(t, ms[0])
			if n.RunID != rs[0].ID || !strings.Contains(n.StepLog, "restart (attempt 1): ok, exit 0") ||
				!strings.Contains(n.StepLog, "verify (attempt 6): failed: the assert still fails") {
				t.Fatalf("page without the step log: %+v", n)
			}
		})
	}
}
