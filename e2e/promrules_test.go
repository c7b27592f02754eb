package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/demo"
	"github.com/assertd/assertd/internal/testsaas"
)

// An unmodified Prometheus rule file: a recording rule and an alert on it.
const demoPromRules = `groups:
  - name: demo
    interval: 1s
    rules:
      - record: instance:latency_p99:ms
        expr: 1000 * histogram_quantile(0.99, sum by (le, instance, addr, zone) (rate(http_request_duration_seconds_bucket{job="demo"}[4s])))
      - alert: DemoSlow
        expr: instance:latency_p99:ms > 100
        for: 2s
        labels: {severity: critical}
        annotations:
          summary: 'p99 {{ $value | humanize }}ms on {{ $labels.instance }}'
`

// 7. A binding in assertd.yaml gives an alert of an unmodified Prometheus
// rule file a remediation: the alert fires, the restart runs, the verify
// waits for the rule (evaluated on the data) to stop firing, the instance
// resolves; one informational Slack message, no PagerDuty event.
func TestBindingRemediatesAPrometheusAlert(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	r := &rig{t: t, dir: t.TempDir(), pd: testsaas.NewPagerDuty(t, pdKey), slack: testsaas.NewSlack(t, slackToken)}
	r.cfg = filepath.Join(r.dir, "assertd.yaml")
	os.WriteFile(r.cfg, []byte(fmt.Sprintf(`files: [demo.rules.yml, remediations.yaml]
data_dir: data
defaults: {every: 1s, uncertain_for: 3s, escalate: ops}
%s
prometheus_rules:
  bindings:
    - match: '{alertname="DemoSlow", severity="critical"}'
      remediate: restart
      escalate: ops
      verify: {resolved_within: 20s}
notifiers:
  - {name: slack, slack: {token_env: E2E_SLACK_TOKEN, channel: "#ops", api_url: %q}}
  - {name: pagerduty, pagerduty: {routing_key_env: E2E_PD_KEY, events_url: %q, rate_per_minute: 6000}}
escalation_policies:
  - {name: ops, info: [slack], group_wait: 1s, levels: [{after: 0s, notify: [pagerduty, slack]}]}
`, targets(svc), r.slack.APIURL, r.pd.URL)), 0o644)
	os.WriteFile(filepath.Join(r.dir, "demo.rules.yml"), []byte(demoPromRules), 0o644)
	os.WriteFile(filepath.Join(r.dir, "remediations.yaml"), []byte(fmt.Sprintf(`remediations:
  - name: restart
    lock: "{{ .Labels.instance }}"
    allow: {addr: '127\.0\.0\.1:[0-9]+'}
    steps:
      - name: restart
        http: {method: POST, url: "%s/services/{{ .Labels.addr }}/admin/restart", expect_status: [200]}
        timeout: 5s
        on_failure: page
      - {name: verify, verify: DemoSlow, timeout: 30s, on_failure: page}
`, fleetURL)), 0o644)
	out, err := exec.Command(binary, "check", "-c", r.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	r.start()
	// The rules evaluate, healthy, with their identity in the API.
	r.eventually(20*time.Second, "the rules evaluated", func() error {
		rs := r.rules()
		if len(rs) != 2 || rs[1].Name != "DemoSlow" || rs[1].Index != 2 || rs[1].Group != "demo" || rs[1].Health != "ok" || rs[0].Health != "ok" {
			return fmt.Errorf("rules %+v", rs)
		}
		return nil
	})
	svc.SetFault(demo.FaultLatency, true)
	r.eventually(40*time.Second, "the restart verified", func() error {
		runs := r.runs("restart")
		if len(runs) != 1 || runs[0].Status != assertd.RunSucceeded {
			return fmt.Errorf("runs %+v", runs)
		}
		if r.slackPosts("fixed by remediation restart") != 1 {
			return fmt.Errorf("no informational Slack message yet: %+v", r.slack.Posts())
		}
		return nil
	})
	if st := svc.State(); st.Restarts != 1 || st.Faults[demo.FaultLatency] {
		t.Fatalf("the service was not restarted: %+v", st)
	}
	if s := r.state("DemoSlow", "demo-1"); s != assertd.OK {
		t.Fatalf("DemoSlow on demo-1 is %s, want ok", s)
	}
	ins, _ := r.st.Instances(t.Context(), "DemoSlow")
	if len(ins) != 1 || ins[0].Labels["alertname"] != "DemoSlow" || ins[0].Labels["severity"] != "critical" {
		t.Fatalf("instances %+v: want one, with the alert's labels", ins)
	}
	if n := len(r.pd.Events()); n != 0 {
		t.Fatalf("PagerDuty got %d events", n)
	}
}

type ruleView struct {
	Name   string `json:"name"`
	Group  string `json:"group"`
	File   string `json:"file"`
	Index  int    `json:"index"`
	Health string `json:"health"`
}

// rules reads GET /api/v1/rules.
func (r *rig) rules() []ruleView {
	resp, err := http.Get(r.base + "/api/v1/rules")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Data struct {
			Groups []struct {
				Rules []ruleView `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	json.Unmarshal(b, &body)
	var out []ruleView
	for _, g := range body.Data.Groups {
		out = append(out, g.Rules...)
	}
	return out
}
