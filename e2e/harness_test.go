// Package e2e runs assertd end to end on real processes: the built binary,
// demo services, a real Prometheus in one scenario, and fake Slack and
// PagerDuty servers that speak their real APIs (the real client libraries run
// inside assertd). Every server listens on 127.0.0.1.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/demo"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "assertd-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "assertd")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/assertd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	fleet := httptest.NewServer(fleetHandler())
	fleetURL = fleet.URL
	code := m.Run()
	fleet.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fleetURL is the supervisor the scenarios' remediations call, the way a
// load balancer's or a supervisor's API is called: its host is written in
// the url, the instance is a path segment (a remediation's url cannot take
// its host from a label).
var fleetURL string

// services are the demo services started so far, by address: the fleet
// restarts only those.
var services sync.Map

// fleetHandler serves POST /services/{addr}/admin/restart by calling that
// service's /admin/restart.
func fleetHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/{addr}/admin/restart", func(w http.ResponseWriter, r *http.Request) {
		addr := r.PathValue("addr")
		if _, ok := services.Load(addr); !ok {
			http.Error(w, "no such service", http.StatusNotFound)
			return
		}
		resp, err := http.Post("http://"+addr+"/admin/restart", "text/plain", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	})
	return mux
}

const (
	pdKey      = "pd-routing-key-e2e-0123456789"
	slackToken = "xoxb-e2e-token"
)

// service is a demo service with its own traffic.
type service struct {
	*demo.Service
	addr string
}

func startService(t *testing.T) *service {
	s := demo.New(nil)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.Run(ctx, 100, "", time.Hour)
	u, _ := url.Parse(srv.URL)
	services.Store(u.Host, s)
	t.Cleanup(func() { services.Delete(u.Host) })
	return &service{Service: s, addr: u.Host}
}

// rig is one scenario's world.
type rig struct {
	t     *testing.T
	dir   string
	cfg   string
	pd    *testsaas.PagerDuty
	slack *testsaas.Slack
	st    store.Store
	p     *exec.Cmd
	log   string
	base  string
}

// newRig writes the config (sources: the YAML of the sources section; rules:
// the rule file) with Slack and PagerDuty notifiers pointed at the fakes.
func newRig(t *testing.T, sources, rules string) *rig {
	r := &rig{t: t, dir: t.TempDir(), pd: testsaas.NewPagerDuty(t, pdKey), slack: testsaas.NewSlack(t, slackToken)}
	r.cfg = filepath.Join(r.dir, "assertd.yaml")
	cfg := fmt.Sprintf(`files: [rules.yaml]
data_dir: data
defaults: {every: 1s, uncertain_for: 3s, escalate: ops}
%s
notifiers:
  - {name: slack, slack: {token_env: E2E_SLACK_TOKEN, channel: "#ops", api_url: %q}}
  - {name: pagerduty, pagerduty: {routing_key_env: E2E_PD_KEY, events_url: %q, rate_per_minute: 6000}}
escalation_policies:
  - {name: ops, info: [slack], group_wait: 1s, levels: [{after: 0s, notify: [pagerduty, slack]}]}
safety:
  blast_radius: {share: 0.3, window: 1m}
`, sources, r.slack.APIURL, r.pd.URL)
	os.WriteFile(r.cfg, []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(r.dir, "rules.yaml"), []byte(rules), 0o644)
	if out, err := exec.Command(binary, "check", "-c", r.cfg).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	return r
}

func targets(svcs ...*service) string {
	var b strings.Builder
	b.WriteString("sources:\n  embedded:\n    scrape_interval: 250ms\n    targets:\n")
	for i, s := range svcs {
		fmt.Fprintf(&b, "      - {url: \"http://%s/metrics\", labels: {job: demo, instance: demo-%d, addr: %q, zone: z%d}}\n", s.addr, i+1, s.addr, i%2)
	}
	return b.String()
}

var listenRE = regexp.MustCompile(`msg="assertd running" listen=(\S+)`)

// start runs the binary with the fake SaaS secrets and waits until it serves.
func (r *rig) start() {
	r.t.Helper()
	r.startWith("E2E_PD_KEY="+pdKey, "E2E_SLACK_TOKEN="+slackToken)
}

// startWith runs the binary with these environment variables and waits
// until it serves.
func (r *rig) startWith(env ...string) {
	r.t.Helper()
	f, err := os.CreateTemp(r.dir, "assertd-*.log")
	if err != nil {
		r.t.Fatal(err)
	}
	r.log = f.Name()
	r.p = exec.Command(binary, "run", "-c", r.cfg, "--listen", "127.0.0.1:0")
	r.p.Env = append(os.Environ(), env...)
	r.p.Stdout, r.p.Stderr = f, f
	if err := r.p.Start(); err != nil {
		r.t.Fatal(err)
	}
	p := r.p
	r.t.Cleanup(func() { p.Process.Signal(syscall.SIGKILL); p.Wait() })
	r.eventually(20*time.Second, "assertd serving", func() error {
		m := listenRE.FindStringSubmatch(r.output())
		if m == nil {
			return fmt.Errorf("not serving yet")
		}
		r.base = "http://" + m[1]
		return nil
	})
	if r.st == nil {
		st, err := sqlite.Open(context.Background(), filepath.Join(r.dir, "data", sqlite.File))
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { st.Close() })
		r.st = st
	}
}

// kill9 kills assertd without a goodbye.
func (r *rig) kill9() {
	r.p.Process.Signal(syscall.SIGKILL)
	r.p.Wait()
}

func (r *rig) output() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

func (r *rig) eventually(timeout time.Duration, what string, f func() error) {
	r.t.Helper()
	testprom.Eventually(r.t, timeout, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w\n--- assertd log (tail)\n%s", what, err, tail(r.output(), 15))
		}
		return nil
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (r *rig) runs(rem string) []assertd.Run {
	runs, _ := r.st.Runs(context.Background(), store.RunFilter{Remediation: rem})
	return runs
}

func (r *rig) pdEvents(action string) int {
	n := 0
	for _, e := range r.pd.Events() {
		if e.Action == action {
			n++
		}
	}
	return n
}

func (r *rig) slackPosts(contains string) int {
	n := 0
	for _, p := range r.slack.Posts() {
		if strings.Contains(p.Text+p.Blocks, contains) {
			n++
		}
	}
	return n
}

func (r *rig) state(assert, instance string) assertd.State {
	ins, _ := r.st.Instances(context.Background(), assert)
	for _, in := range ins {
		if instance == "" || in.Labels["instance"] == instance {
			return in.State
		}
	}
	return ""
}

func storeFilter(assert string) store.TransitionFilter { return store.TransitionFilter{Assert: assert} }

// waitOK waits until n instances of assert (with an instance label) are ok.
func (r *rig) waitOK(assert string, n int) {
	r.t.Helper()
	r.eventually(40*time.Second, fmt.Sprintf("%d instances of %s ok", n, assert), func() error {
		ins, _ := r.st.Instances(context.Background(), assert)
		ok := 0
		for _, in := range ins {
			if in.State == assertd.OK && in.Labels["instance"] != "" {
				ok++
			}
		}
		if ok != n {
			return fmt.Errorf("%d ok", ok)
		}
		return nil
	})
}
