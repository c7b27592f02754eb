package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/testprom"
)

const reloadBase = `files: ["rules*.yaml"]
data_dir: data
defaults: {escalate: ops}
heartbeats:
  - {name: hb-a, period: 1h, public: true}
notifiers:
  - {name: pd, pagerduty: {routing_key_env: PD_KEY, events_url: "http://127.0.0.1:1/v2/enqueue"}}
escalation_policies:
  - {name: ops, levels: [{notify: [pd]}]}
`

// reloadNext changes every component: a heartbeat, a notifier, a token, a
// source, a policy.
const reloadNext = `files: ["rules*.yaml"]
data_dir: data
defaults: {escalate: ops}
heartbeats:
  - {name: hb-a, period: 5s, public: true}
  - {name: hb-new, period: 1h, public: true}
notifiers:
  - {name: pd, pagerduty: {routing_key_env: PD_KEY, events_url: "http://127.0.0.1:2/v2/enqueue"}}
  - {name: console, console: {}}
escalation_policies:
  - {name: ops, levels: [{notify: [pd, console]}]}
sources:
  prometheus:
    - {name: prom, url: "http://127.0.0.1:3", bearer_token_env: PROM_TOKEN}
web:
  tokens: [{name: ci, role: read, token_env: CI_TOKEN}]
`

var reloadEnv = map[string]string{"PD_KEY": "pd-key-0123456789", "PROM_TOKEN": "prom-token-0123456789", "CI_TOKEN": "ci-token-0123456789abcdef"}

type testApp struct {
	*App
	t    *testing.T
	dir  string
	logs *lockedBuffer
}

func newTestApp(t *testing.T, cfg string, clock *fakeclock.Clock) *testApp {
	t.Helper()
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir, logs: &lockedBuffer{}}
	ta.write("assertd.yaml", cfg)
	ta.write("rules.yaml", "asserts:\n  - {name: hb-a, every: 1s, expect: 'heartbeat(\"hb-a\").up'}\n")
	o := Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", ReloadEvery: -1,
		Logger: slog.New(slog.NewTextHandler(ta.logs, nil)), Getenv: func(k string) string { return reloadEnv[k] }}
	if clock != nil {
		o.Clock = clock
	}
	a, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	ta.App = a
	return ta
}

// lockedBuffer is a log that the parts of a started App may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (ta *testApp) write(name, text string) {
	ta.t.Helper()
	if err := os.WriteFile(filepath.Join(ta.dir, name), []byte(text), 0o644); err != nil {
		ta.t.Fatal(err)
	}
}

func (ta *testApp) request(method, path, token string) int {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	ta.Handler().ServeHTTP(rec, req)
	return rec.Code
}

func (ta *testApp) reloadGauge() float64 {
	ta.t.Helper()
	mfs, err := ta.Gatherer().Gather()
	if err != nil {
		ta.t.Fatal(err)
	}
	i := slices.IndexFunc(mfs, func(m *dto.MetricFamily) bool { return m.GetName() == "assertd_config_last_reload_successful" })
	if i < 0 {
		ta.t.Fatal("no reload metric")
	}
	return mfs[i].GetMetric()[0].GetGauge().GetValue()
}

func channels(a *App) []string {
	var out []string
	for _, h := range a.Deliverer().Health() {
		out = append(out, h.Name)
	}
	return out
}

// A reload where one part cannot be built changes nothing in any component:
// not the heartbeats, the channels, the tokens, the sources or the asserts.
func TestReloadChangesNothingWhenOnePartIsInvalid(t *testing.T) {
	for name, broken := range map[string]string{
		"a notifier's secret is unset":     "  - {name: pd2, pagerduty: {routing_key_env: UNSET_KEY}}\n",
		"a source's secret is unset":       "sources:\n  prometheus:\n    - {name: prom, url: \"http://127.0.0.1:3\", bearer_token_env: UNSET_TOKEN}\n",
		"a source's CA file is missing":    "sources:\n  prometheus:\n    - {name: prom, url: \"http://127.0.0.1:3\", tls: {ca_file: missing-ca.pem}}\n",
		"a token's secret is unset":        "web:\n  tokens: [{name: ci, role: read, token_env: UNSET_TOKEN}]\n",
		"a heartbeat's key is unset":       "heartbeats:\n  - {name: hb-a, period: 5s, public: true}\n  - {name: hb-new, period: 1h, key_env: UNSET_KEY}\n",
		"the YAML does not parse":          "heartbeats: [\n",
		"a rule file is not valid":         "",
		"a notifier's key file is missing": "  - {name: pd2, pagerduty: {routing_key_file: missing-key.txt}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			ta := newTestApp(t, reloadBase, nil)
			if err := ta.Heartbeats().Ping(context.Background(), assertd.Ping{Heartbeat: "hb-a", Kind: assertd.PingSuccess, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			old := ta.Set()
			cfg := reloadNext
			switch {
			case name == "a rule file is not valid":
				ta.write("rules-2.yaml", "asserts:\n  - {name: b, expect: 'x <'}\n")
			case strings.HasPrefix(broken, "  - {name: pd2"):
				cfg = strings.Replace(cfg, "  - {name: console, console: {}}\n", "  - {name: console, console: {}}\n"+broken, 1)
			case strings.HasPrefix(broken, "sources:"), strings.HasPrefix(broken, "web:"), strings.HasPrefix(broken, "heartbeats:"):
				// The section replaces the valid one.
				cfg = replaceSection(cfg, strings.SplitN(broken, ":", 2)[0]+":", broken)
			default:
				cfg += broken
			}
			ta.write("assertd.yaml", cfg)
			err := ta.Reload(context.Background())
			if err == nil {
				t.Fatal("the reload worked")
			}
			t.Logf("refused: %v", err)
			for _, secret := range reloadEnv {
				if strings.Contains(err.Error(), secret) || strings.Contains(ta.logs.String(), secret) {
					t.Fatalf("a secret reached the error or the log: %v", err)
				}
			}
			ta.checkOld(t, old)
			if rs := ta.Engine().LastReload(); rs.Err == nil || ta.reloadGauge() != 0 {
				t.Fatalf("reload status %+v, gauge %v; want the failure", rs, ta.reloadGauge())
			}

			// Fixed, the same reload puts everything in force.
			os.Remove(filepath.Join(ta.dir, "rules-2.yaml"))
			ta.write("assertd.yaml", reloadNext)
			if err := ta.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if next, _ := ta.Heartbeats().NextDeadline("hb-a", time.Now()); next.After(time.Now().Add(30 * time.Minute)) {
				t.Errorf("hb-a's next deadline is %s: the new period is not in force", next)
			}
			if !ta.Heartbeats().Known("hb-new") || !slices.Equal(channels(ta.App), []string{"pd", "console"}) ||
				ta.request("GET", "/api/v1/status", "") != http.StatusUnauthorized ||
				ta.request("GET", "/api/v1/status", reloadEnv["CI_TOKEN"]) != http.StatusOK ||
				ta.Engine().LastReload().Err != nil || ta.reloadGauge() != 1 || ta.Set() == old {
				t.Fatalf("the good reload is not in force: channels %v, reload %+v", channels(ta.App), ta.Engine().LastReload())
			}
		})
	}
}

// replaceSection replaces the top-level section key (with its indented
// lines) of a config with text.
func replaceSection(cfg, key, text string) string {
	lines := strings.SplitAfter(cfg, "\n")
	var out []string
	skipping := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, key):
			skipping = true
			out = append(out, text)
		case skipping && (strings.HasPrefix(l, " ") || l == ""):
		default:
			skipping = false
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// checkOld checks that the configuration loaded first is in force in every
// component.
func (ta *testApp) checkOld(t *testing.T, old any) {
	t.Helper()
	if ta.Set() != old || ta.Engine().Config() != old {
		t.Error("the configuration in force changed")
	}
	if ta.Heartbeats().Known("hb-new") || ta.request("GET", "/ping/hb-new", "") != http.StatusNotFound {
		t.Error("hb-new is known")
	}
	if next, ok := ta.Heartbeats().NextDeadline("hb-a", time.Now()); !ok || next.Before(time.Now().Add(30*time.Minute)) {
		t.Errorf("hb-a's next deadline is %s (%v): the new period is in force", next, ok)
	}
	if got := channels(ta.App); !slices.Equal(got, []string{"pd"}) {
		t.Errorf("channels %v, want [pd]", got)
	}
	if code := ta.request("GET", "/api/v1/status", ""); code != http.StatusOK {
		t.Errorf("status without a token: %d; the new token is in force", code)
	}
}

// An unchanged assert keeps its instances and an unchanged heartbeat its
// pings across a reload; a changed heartbeat keeps its pings under its new
// period.
func TestReloadKeepsTheStateOfWhatIsUnchanged(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ta := newTestApp(t, reloadBase, clock)
	ctx := context.Background()
	cfg := strings.Replace(reloadBase, "  - {name: hb-a, period: 1h, public: true}\n", "  - {name: hb-a, period: 1h, public: true}\n  - {name: hb-b, period: 1h, public: true}\n", 1)
	ta.write("assertd.yaml", cfg)
	if err := ta.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, hb := range []string{"hb-a", "hb-b"} {
		if err := ta.Heartbeats().Ping(ctx, assertd.Ping{Heartbeat: hb, Kind: assertd.PingSuccess, At: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ta.Engine().EvaluateNow(ctx, "hb-a", clock.Now()); err != nil {
		t.Fatal(err)
	}
	before := ta.Engine().Instances()
	if len(before) != 1 || before[0].State != assertd.OK {
		t.Fatalf("instances %+v", before)
	}
	clock.Add(10 * time.Second)
	// hb-a every 5s now (with its grace); hb-b unchanged.
	ta.write("assertd.yaml", strings.Replace(cfg, "{name: hb-a, period: 1h, public: true}", "{name: hb-a, period: 5s, grace: 1s, public: true}", 1))
	if err := ta.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	after := ta.Engine().Instances()
	if len(after) != 1 || after[0].Fingerprint != before[0].Fingerprint || !after[0].Since.Equal(before[0].Since) {
		t.Fatalf("the unchanged assert's instance did not carry over: %+v, was %+v", after, before)
	}
	for _, hb := range []string{"hb-a", "hb-b"} {
		if r, _ := ta.Heartbeats().Record(hb); !r.LastSuccess.Equal(clock.Now().Add(-10 * time.Second)) {
			t.Errorf("%s lost its last ping: %+v", hb, r)
		}
	}
	if st, _ := ta.Heartbeats().Status("hb-a", clock.Now()); st.State != "down" {
		t.Errorf("hb-a is %s 10s after its last ping with a 5s period and 1s grace", st.State)
	}
	if st, _ := ta.Heartbeats().Status("hb-b", clock.Now()); st.State != "up" {
		t.Errorf("hb-b is %s", st.State)
	}
	if !strings.Contains(ta.logs.String(), `change="heartbeat hb-a: period 1h → 5s"`) || !strings.Contains(ta.logs.String(), `change="heartbeat hb-a: grace unset → 1s"`) {
		t.Errorf("the log lacks the heartbeat's changes:\n%s", ta.logs)
	}
}

// The periodic check notices a new file matching a files: pattern.
func TestReloadPicksUpANewFileMatchingThePattern(t *testing.T) {
	ta := newTestApp(t, reloadBase, nil)
	ta.o.ReloadEvery = 20 * time.Millisecond
	logs := ta.logs
	if err := ta.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ta.write("rules-more.yaml", "asserts:\n  - {name: more, every: 1s, expect: 'heartbeat(\"hb-a\").up'}\n")
	// The periodic check runs on real time: poll for its reload.
	testprom.Eventually(t, 10*time.Second, func() error {
		if ta.Engine().LastReload().At.IsZero() || ta.Engine().Config().Assert("more") == nil {
			return fmt.Errorf("the new file was not loaded:\n%s", logs)
		}
		return nil
	})
	if !strings.Contains(logs.String(), `change="file rules-more.yaml: added"`) || !strings.Contains(logs.String(), `change="assert more: added"`) {
		t.Errorf("the log lacks the changes:\n%s", logs)
	}
}

// A rotated secret (a key file rewritten) is read again by a reload and
// logged as changed, without its value.
func TestReloadReadsRotatedSecrets(t *testing.T) {
	cfg := strings.Replace(reloadBase, "escalation_policies:", "  - {name: pd-file, pagerduty: {routing_key_file: pd.key}}\nescalation_policies:", 1) +
		"web:\n  tokens: [{name: ci, role: read, token_file: ci.token}]\n"
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir, logs: &lockedBuffer{}}
	ta.write("pd.key", "first-key-0123456789")
	ta.write("ci.token", "first-token-0123456789")
	ta.write("assertd.yaml", cfg)
	ta.write("rules.yaml", "asserts:\n  - {name: hb-a, expect: 'heartbeat(\"hb-a\").up'}\n")
	a, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), ReloadEvery: -1,
		Logger: slog.New(slog.NewTextHandler(ta.logs, nil)), Getenv: func(k string) string { return reloadEnv[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	ta.App = a
	ta.write("pd.key", "second-key-0123456789")
	ta.write("ci.token", "second-token-0123456789")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := ta.logs.String()
	for _, want := range []string{`change="notifier pd-file: its secret changed"`, `change="token ci: its secret changed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if strings.Contains(logs, `change="notifier pd:`) {
		t.Error("the unchanged notifier is reported changed")
	}
	if strings.Contains(logs, "key-0123456789") || strings.Contains(logs, "token-0123456789") {
		t.Error("a secret reached the log")
	}
	if ta.request("GET", "/api/v1/status", "first-token-0123456789") != http.StatusUnauthorized ||
		ta.request("GET", "/api/v1/status", "second-token-0123456789") != http.StatusOK {
		t.Error("the rotated token is not in force")
	}
}
