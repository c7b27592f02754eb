package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testsaas"
)

const ciToken = "ci-read-token-e2e-0123456789"

// reloadConfig is assertd.yaml of the reload scenario: heartbeat hb-a with
// this period, then hb-old, or hb-new and the ci token when added;
// PagerDuty at this URL.
func reloadConfig(period, pdURL string, added bool) string {
	extra, tokens := "  - {name: hb-old, period: 1h, public: true}\n", ""
	if added {
		extra = "  - {name: hb-new, period: 1h, grace: 1s, public: true}\n"
		tokens = "web:\n  tokens: [{name: ci, role: read, token_env: E2E_CI_TOKEN}]\n"
	}
	return fmt.Sprintf(`files: ["rules*.yaml"]
data_dir: data
defaults: {every: 1s, uncertain_for: 3s, escalate: ops}
heartbeats:
  - {name: hb-a, period: %s, grace: 1s, public: true}
%snotifiers:
  - {name: pagerduty, pagerduty: {routing_key_env: E2E_PD_KEY, events_url: %q, rate_per_minute: 6000}}
escalation_policies:
  - {name: ops, group_wait: 0s, levels: [{notify: [pagerduty]}]}
%s`, period, extra, pdURL, tokens)
}

// The reload scenario on the real binary: SIGHUP after changing a heartbeat's
// period, adding a heartbeat (and its assert, in a new file matching
// files:), removing one, pointing the notifier at another server and adding a token puts
// all of it in force and logs each change; a broken config then changes
// nothing.
func TestReloadPutsEveryChangeInForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pdOld, pdNew := testsaas.NewPagerDuty(t, pdKey), testsaas.NewPagerDuty(t, pdKey)
	cfg := filepath.Join(dir, "assertd.yaml")
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("assertd.yaml", reloadConfig("1h", pdOld.URL, false))
	write("rules.yaml", "asserts:\n  - {name: hb-a, expect: 'heartbeat(\"hb-a\").up'}\n")
	if out, err := exec.Command(binary, "check", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	r := &rig{t: t, dir: dir, cfg: cfg}
	r.startWith("E2E_PD_KEY="+pdKey, "E2E_CI_TOKEN="+ciToken)

	if code := r.ping("hb-a"); code != 200 {
		t.Fatalf("ping hb-a: %d", code)
	}
	if code := r.ping("hb-new"); code != 404 {
		t.Fatalf("ping hb-new before the reload: %d, want 404", code)
	}
	if code := r.ping("hb-old"); code != 200 {
		t.Fatalf("ping hb-old before the reload: %d", code)
	}
	r.eventually(20*time.Second, "hb-a ok", func() error {
		if st := r.assertState("", "hb-a"); st != "ok" {
			return fmt.Errorf("hb-a is %q", st)
		}
		return nil
	})

	// The new configuration: hb-a every 5s, hb-new and its assert (a new file
	// the files: pattern matches), PagerDuty elsewhere, a token.
	write("rules-new.yaml", "asserts:\n  - {name: hb-new, expect: 'heartbeat(\"hb-new\").up'}\n")
	write("assertd.yaml", reloadConfig("5s", pdNew.URL, true))
	if out, err := exec.Command(binary, "check", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	r.p.Process.Signal(syscall.SIGHUP)
	r.eventually(20*time.Second, "hb-new answering its pings", func() error {
		if code := r.ping("hb-new"); code != 200 {
			return fmt.Errorf("ping hb-new: %d", code)
		}
		return nil
	})
	r.eventually(10*time.Second, "the reload logged", func() error {
		if !strings.Contains(r.output(), `msg="configuration reloaded"`) {
			return fmt.Errorf("no reload in the log yet")
		}
		return nil
	})
	for _, line := range []string{
		`change="heartbeat hb-a: period 1h → 5s"`,
		`change="heartbeat hb-new: added"`,
		`change="heartbeat hb-old: removed"`,
		`change="notifier pagerduty: pagerduty.events_url changed"`,
		`change="token ci: added"`,
		`change="file rules-new.yaml: added"`,
	} {
		if !strings.Contains(r.output(), line) {
			t.Errorf("the log lacks %s\n%s", line, tail(r.output(), 20))
		}
	}
	for _, l := range strings.Split(r.output(), "\n") {
		if strings.Contains(l, "configuration changed") || strings.Contains(l, "configuration reloaded") {
			t.Log(l)
		}
	}
	if strings.Contains(r.output(), pdKey) || strings.Contains(r.output(), ciToken) {
		t.Error("a secret reached the log")
	}
	if code := r.ping("hb-old"); code != 404 {
		t.Errorf("ping of the removed hb-old: %d, want 404", code)
	}
	// The token is in force: reads need it now.
	if code, _ := r.get("/api/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("status without a token after the reload: %d, want 401", code)
	}

	// hb-a is not pinged again: by its new period (5s + 1s grace) it is
	// down, its assert violated and paged — on the new PagerDuty only.
	r.eventually(30*time.Second, "hb-a paged on the new PagerDuty", func() error {
		if n := triggers(pdNew, "hb-a"); n != 1 {
			return fmt.Errorf("%d triggers for hb-a on the new server", n)
		}
		return nil
	})
	if n := len(pdOld.Events()); n != 0 {
		t.Fatalf("the old PagerDuty got %d events after the reload", n)
	}
	hb := r.heartbeat("hb-a")
	if hb != "down" {
		t.Errorf("hb-a is %q, want down", hb)
	}
	if st := r.assertState(ciToken, "hb-new"); st != "ok" {
		t.Errorf("hb-new's assert is %q, want ok (its heartbeat is declared and pinged)", st)
	}
	hash := r.status(ciToken).Reload.ConfigHash

	// A broken configuration: nothing changes.
	write("assertd.yaml", reloadConfig("5s", pdNew.URL, true)+"heartbeats: [\n")
	r.p.Process.Signal(syscall.SIGHUP)
	r.eventually(20*time.Second, "the failed reload reported", func() error {
		st := r.status(ciToken)
		if st.Reload.OK || !strings.Contains(st.Reload.Error, "assertd.yaml:") {
			return fmt.Errorf("reload %+v", st.Reload)
		}
		return nil
	})
	if st := r.status(ciToken); st.Reload.ConfigHash != hash {
		t.Errorf("config hash %s after a failed reload, want %s", st.Reload.ConfigHash, hash)
	}
	if _, body := r.get("/metrics", ""); !strings.Contains(body, "assertd_config_last_reload_successful 0") {
		t.Errorf("metrics do not report the failed reload")
	}
	if code := r.ping("hb-new"); code != 200 {
		t.Errorf("ping hb-new after a failed reload: %d", code)
	}
	if code, _ := r.get("/api/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("status without a token after a failed reload: %d, want 401", code)
	}
	// The next message still goes to the new PagerDuty: hb-a pinged again
	// resolves its incident there.
	if code := r.ping("hb-a"); code != 200 {
		t.Fatalf("ping hb-a: %d", code)
	}
	r.eventually(30*time.Second, "hb-a resolved on the new PagerDuty", func() error {
		if n := resolves(pdNew); n != 1 {
			return fmt.Errorf("%d resolves on the new server", n)
		}
		return nil
	})
	if n := len(pdOld.Events()); n != 0 {
		t.Fatalf("the old PagerDuty got %d events", n)
	}
}

func triggers(pd *testsaas.PagerDuty, contains string) int {
	n := 0
	for _, e := range pd.Events() {
		if e.Action == "trigger" && e.Payload != nil && strings.Contains(e.Payload.Summary, contains) {
			n++
		}
	}
	return n
}

func resolves(pd *testsaas.PagerDuty) int {
	n := 0
	for _, e := range pd.Events() {
		if e.Action == "resolve" {
			n++
		}
	}
	return n
}

func (r *rig) get(path, token string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *rig) ping(name string) int {
	code, _ := r.get("/ping/"+name, "")
	return code
}

type statusResp struct {
	Reload struct {
		OK         bool   `json:"ok"`
		Error      string `json:"error"`
		ConfigHash string `json:"config_hash"`
	} `json:"reload"`
}

func (r *rig) status(token string) statusResp {
	r.t.Helper()
	code, body := r.get("/api/v1/status", token)
	var s statusResp
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 {
		r.t.Fatalf("status %d: %v: %s", code, err, body)
	}
	return s
}

// assertState is the state of the one instance of assert, through the API.
func (r *rig) assertState(token, assert string) string {
	r.t.Helper()
	return r.instanceView(token, assert).State
}

// instanceView is how the API shows the first instance of an assert.
type instanceView struct {
	Assert    string `json:"assert"`
	State     string `json:"state"`
	Held      bool   `json:"held"`
	HeldState string `json:"held_state"`
}

func (r *rig) instanceView(token, assert string) instanceView {
	r.t.Helper()
	_, body := r.get("/api/v1/instances", token)
	var resp struct {
		Instances []instanceView `json:"instances"`
	}
	json.Unmarshal([]byte(body), &resp)
	for _, in := range resp.Instances {
		if in.Assert == assert {
			return in
		}
	}
	return instanceView{}
}

// heartbeat is the state of a heartbeat, through the API.
func (r *rig) heartbeat(name string) string {
	r.t.Helper()
	_, body := r.get("/api/v1/heartbeats", ciToken)
	var resp struct {
		Heartbeats []struct {
			Name   string `json:"name"`
			Status struct {
				State string
			} `json:"status"`
		} `json:"heartbeats"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		r.t.Fatalf("heartbeats: %v: %s", err, body)
	}
	for _, h := range resp.Heartbeats {
		if h.Name == name {
			return h.Status.State
		}
	}
	return ""
}
