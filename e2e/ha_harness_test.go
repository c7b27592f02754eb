package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/postgres"
)

// faults is the target of the HA tests: it exposes chaos_fault{id} at
// /metrics (1: faulty) and records every call of a remediation step at
// POST /fix/{step}/{id}.
type faults struct {
	mu    sync.Mutex
	fault map[string]bool
	calls []fixCall
	srv   *httptest.Server
}

type fixCall struct {
	Step, ID string
	At       time.Time
}

func newFaults(t *testing.T, ids []string) *faults {
	f := &faults{fault: map[string]bool{}}
	for _, id := range ids {
		f.fault[id] = false
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		io.WriteString(w, "# TYPE chaos_fault gauge\n")
		for id, on := range f.fault {
			v := 0
			if on {
				v = 1
			}
			fmt.Fprintf(w, "chaos_fault{id=%q} %d\n", id, v)
		}
	})
	mux.HandleFunc("POST /fix/{step}/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, fixCall{Step: r.PathValue("step"), ID: r.PathValue("id"), At: time.Now()})
		f.mu.Unlock()
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faults) set(id string, on bool) {
	f.mu.Lock()
	f.fault[id] = on
	f.mu.Unlock()
}

// callsOf counts the calls of a step for an id in [from, to).
func (f *faults) callsOf(step, id string, from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Step == step && c.ID == id && !c.At.Before(from) && c.At.Before(to) {
			n++
		}
	}
	return n
}

// cluster is several assertd processes on one PostgreSQL database.
type haCluster struct {
	t        *testing.T
	dir      string
	dsn      string
	st       store.Store
	pd       *testsaas.PagerDuty
	slack    *testsaas.Slack
	target   *faults
	replicas []*replica
}

type replica struct {
	c    *haCluster
	name string
	cfg  string
	p    *exec.Cmd
	log  string
	base string
	runs int // starts so far
}

type haOptions struct {
	replicas     int
	lease, renew string
	every        string
	rules        func(target string) string // the asserts and remediations file
	ids          []string
}

func newHACluster(t *testing.T, o haOptions) *haCluster {
	pg := testpg.Start(t)
	dsn, err := pg.CreateDB(context.Background(), "ha")
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &haCluster{t: t, dir: t.TempDir(), dsn: dsn, st: st, pd: testsaas.NewPagerDuty(t, pdKey), slack: testsaas.NewSlack(t, slackToken)}
	c.target = newFaults(t, o.ids)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range c.replicas {
			for i := 1; i <= r.runs; i++ {
				b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", r.name, i)))
				t.Logf("--- %s run %d (tail)\n%s", r.name, i, tail(string(b), 25))
			}
		}
	})
	if err := os.WriteFile(filepath.Join(c.dir, "rules.yaml"), []byte(o.rules(c.target.srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range o.replicas {
		name := fmt.Sprintf("r%d", i)
		cfg := fmt.Sprintf(`files: [rules.yaml]
data_dir: data-%s
defaults: {every: %s, uncertain_for: 1m, escalate: ops}
sources:
  embedded:
    scrape_interval: 200ms
    targets: [{url: "%s/metrics", labels: {job: chaos}}]
store: {driver: postgres, dsn_env: E2E_PG_DSN}
cluster: {name: %s, lease: %s, renew: %s, replicas: %d}
notifiers:
  - {name: slack, slack: {token_env: E2E_SLACK_TOKEN, channel: "#ops", api_url: %q}}
  - {name: pagerduty, pagerduty: {routing_key_env: E2E_PD_KEY, events_url: %q, rate_per_minute: 6000}}
escalation_policies:
  - {name: ops, info: [slack], levels: [{after: 0s, notify: [pagerduty, slack]}]}
safety:
  max_concurrent_runs: 64
  blast_radius: {disabled: true}
`, name, o.every, c.target.srv.URL, name, o.lease, o.renew, o.replicas, c.slack.APIURL, c.pd.URL)
		path := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.replicas = append(c.replicas, &replica{c: c, name: name, cfg: path})
	}
	if out, err := exec.Command(binary, "check", "-c", c.replicas[0].cfg).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	return c
}

// start runs the replica's process and waits until it serves.
func (r *replica) start() {
	t := r.c.t
	t.Helper()
	r.runs++
	r.log = filepath.Join(r.c.dir, fmt.Sprintf("%s-%d.log", r.name, r.runs))
	f, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.p = exec.Command(binary, "run", "-c", r.cfg, "--listen", "127.0.0.1:0")
	r.p.Env = append(os.Environ(), "E2E_PD_KEY="+pdKey, "E2E_SLACK_TOKEN="+slackToken, "E2E_PG_DSN="+r.c.dsn)
	r.p.Stdout, r.p.Stderr = f, f
	if err := r.p.Start(); err != nil {
		t.Fatal(err)
	}
	p := r.p
	t.Cleanup(func() { p.Process.Signal(syscall.SIGCONT); p.Process.Signal(syscall.SIGKILL); p.Wait() })
	testprom.Eventually(t, 20*time.Second, func() error {
		m := listenRE.FindStringSubmatch(r.output())
		if m == nil {
			return fmt.Errorf("%s not serving yet:\n%s", r.name, tail(r.output(), 10))
		}
		r.base = "http://" + m[1]
		return nil
	})
}

func (r *replica) output() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

func (r *replica) kill9() {
	r.p.Process.Signal(syscall.SIGKILL)
	r.p.Wait()
}

func (r *replica) signal(s syscall.Signal) { r.p.Process.Signal(s) }

var replicaIDRE = regexp.MustCompile(`^(r\d+)-[0-9a-f]+$`)

// owner returns the replica that owns a share now (nil when none or
// when its owner is not one of the processes running), and the epoch.
func (c *haCluster) owner(share string) (*replica, int64) {
	shares, err := c.st.(store.Cluster).Shares(context.Background())
	if err != nil {
		return nil, 0
	}
	for _, s := range shares {
		if s.Name != share {
			continue
		}
		m := replicaIDRE.FindStringSubmatch(s.Owner)
		if m == nil {
			return nil, s.Epoch
		}
		for _, r := range c.replicas {
			if r.name == m[1] {
				return r, s.Epoch
			}
		}
	}
	return nil, 0
}

// evaluations reads assertd_evaluations_total of an assert on a replica.
func (r *replica) evaluations(assert string) float64 {
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := `assertd_evaluations_total{assert="` + assert + `"} `
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func (r *replica) get(path string) (int, string) {
	resp, err := http.Get(r.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// chaosRules writes an assert on chaos_fault per id, each remediated by
// its own fix: a call, a pause (a kill or a pause can fall between the
// steps), a second call and a verify that fails while the fault stays, so
// that every violation is paged once.
func chaosRules(ids []string, forD, pause string) func(target string) string {
	return func(target string) string {
		var b strings.Builder
		b.WriteString("asserts:\n")
		for _, id := range ids {
			fmt.Fprintf(&b, "  - name: chaos-%s\n    for: %s\n    query: {f: 'max by (id) (chaos_fault{id=\"%s\"})'}\n    expect: f < 1\n    remediate: fix-%s\n", id, forD, id, id)
		}
		b.WriteString("remediations:\n")
		for _, id := range ids {
			fmt.Fprintf(&b, `  - name: fix-%s
    lock: "{{ .Labels.id }}"
    allow: {id: '[0-9]+'}
    steps:
      - name: call
        http: {method: POST, url: "%s/fix/call/{{ .Labels.id }}", expect_status: [200]}
        timeout: 5s
        on_failure: page
      - {name: pause, wait: %s}
      - name: again
        http: {method: POST, url: "%s/fix/again/{{ .Labels.id }}", expect_status: [200]}
        timeout: 5s
        on_failure: page
      - {name: verify, verify: chaos-%s, on_failure: page}
`, id, target, pause, target, id)
		}
		return b.String()
	}
}

// chaosIDs are n ids, 00 to n-1.
func chaosIDs(n int) []string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("%02d", i))
	}
	return ids
}
