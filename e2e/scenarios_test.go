package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/demo"
	"github.com/assertd/assertd/internal/testprom"
)

func latencyRules(settle string) string {
	return fmt.Sprintf(`asserts:
  - name: latency
    for: 2s
    query:
      p99_ms: '1000 * histogram_quantile(0.99, sum by (le, instance, addr, zone) (rate(http_request_duration_seconds_bucket{job="demo"}[4s])))'
    expect: p99_ms < 100
    remediate: restart
remediations:
  - name: restart
    lock: "{{ .Labels.instance }}"
    allow: {addr: '127\.0\.0\.1:[0-9]+'}
    steps:
      - name: restart
        http: {method: POST, url: "%s/services/{{ .Labels.addr }}/admin/restart", expect_status: [200]}
        timeout: 5s
        on_failure: page
      - {name: settle, wait: %s}
      - {name: verify, verify: latency, on_failure: page}
`, fleetURL, settle)
}

// 1. A latency fault that a restart fixes: one informational Slack message,
// zero PagerDuty events.
func TestRestartFixesLatency(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	r := newRig(t, targets(svc), latencyRules("6s"))
	r.start()
	r.waitOK("latency", 1)
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
	r.settled("latency", 2)
	if n := len(r.pd.Events()); n != 0 || r.state("latency", "demo-1") != assertd.OK {
		t.Fatalf("PagerDuty got %d events; state %s", n, r.state("latency", "demo-1"))
	}
}

// 2. A fault a restart cannot fix: PagerDuty trigger and a Slack page;
// clearing the fault resolves both.
func TestUnfixableFaultPagesAndResolves(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	r := newRig(t, targets(svc), latencyRules("5s"))
	r.start()
	r.waitOK("latency", 1)
	svc.SetFault(demo.FaultStuckLatency, true)
	r.eventually(45*time.Second, "paged", func() error {
		if runs := r.runs("restart"); len(runs) != 1 || runs[0].Status != assertd.RunFailed {
			return fmt.Errorf("runs %+v", runs)
		}
		if r.pdEvents("trigger") != 1 || r.pd.Incidents() != 1 || len(r.slack.TopLevel()) == 0 {
			return fmt.Errorf("pd %+v slack %+v", r.pd.Events(), r.slack.Posts())
		}
		return nil
	})
	svc.SetFault(demo.FaultStuckLatency, false)
	r.eventually(30*time.Second, "resolved on both", func() error {
		if r.pdEvents("resolve") != 1 {
			return fmt.Errorf("pd %+v", r.pd.Events())
		}
		updates := 0
		for _, p := range r.slack.Posts() {
			if p.Method == "chat.update" {
				updates++
			}
		}
		if updates == 0 {
			return fmt.Errorf("no Slack update: %+v", r.slack.Posts())
		}
		return nil
	})
	if r.pd.Incidents() != 1 || r.pdEvents("trigger") != 1 {
		t.Fatalf("want one incident: %+v", r.pd.Events())
	}
}

// 3. A heartbeat that stops: uncertain, then a page; no remediation runs.
func TestStoppedHeartbeatPagesWithoutRuns(t *testing.T) {
	t.Parallel()
	const jobUUID = "5b0e8a52-7c1d-4f3a-9e26-b8d4c1a7f093"
	r := newRig(t, "", `heartbeats: [{name: job, period: 1s, grace: 1s, uuid: `+jobUUID+`}]
asserts:
  - {name: job-alive, expect: 'heartbeat("job").age < duration("1m")', remediate: rerun}
remediations:
  - name: rerun
    steps:
      - {name: rerun, http: {url: "http://127.0.0.1:1/rerun"}}
      - {name: verify, verify: job-alive}
`)
	r.start()
	// An anonymous ping by name is refused: the job pings at its uuid.
	if resp, err := http.Post(r.base+"/ping/job/fail", "text/plain", nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous ping: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	for range 10 {
		resp, err := http.Post(r.base+"/ping/"+jobUUID, "text/plain", nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("ping: %v", err)
		}
		resp.Body.Close()
		time.Sleep(300 * time.Millisecond) // the job pings on real time: that is the scenario
	}
	if s := r.state("job-alive", ""); s != assertd.OK {
		t.Fatalf("while pinged: %s", s)
	}
	r.eventually(20*time.Second, "paged", func() error {
		if s := r.state("job-alive", ""); s != assertd.Escalated {
			return fmt.Errorf("state %s", s)
		}
		if r.pdEvents("trigger") != 1 {
			return fmt.Errorf("pd %+v", r.pd.Events())
		}
		return nil
	})
	trs, _ := r.st.Transitions(t.Context(), storeFilter("job-alive"))
	sawUncertain := false
	for _, tr := range trs {
		sawUncertain = sawUncertain || tr.To == assertd.Uncertain
	}
	if !sawUncertain || len(r.runs("rerun")) != 0 {
		t.Fatalf("want uncertain before the page and zero runs: %+v, runs %d", trs, len(r.runs("rerun")))
	}
}

// 4. Prometheus stops: every dependent instance uncertain, one grouped page,
// zero runs.
func TestPrometheusDownIsUncertainAndOnePage(t *testing.T) {
	t.Parallel()
	var hosts []string
	for range 3 {
		hosts = append(hosts, startService(t).addr)
	}
	prom := testprom.Start(t, testprom.Options{Targets: hosts})
	r := newRig(t, fmt.Sprintf("sources:\n  default: prom\n  prometheus: [{name: prom, url: %q, timeout: 2s}]\n", prom.URL), `asserts:
  - name: connections
    query: {c: 'sum by (instance) (api_active_connections)'}
    expect: c > 10
    remediate: restart
remediations:
  - name: restart
    steps:
      - {name: restart, http: {url: "http://127.0.0.1:1/restart"}}
      - {name: verify, verify: connections}
`)
	// Start assertd once Prometheus has its targets: before that, "no data"
	// for longer than uncertain_for (3s here) would rightly page.
	testprom.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(prom.URL + "/api/v1/query?query=count(api_active_connections)")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if len(body.Data.Result) != 1 || body.Data.Result[0].Value[1] != "3" {
			return fmt.Errorf("prometheus has not scraped the three services yet: %+v", body)
		}
		return nil
	})
	r.start()
	r.waitOK("connections", 3)
	prom.Stop()
	r.eventually(30*time.Second, "all uncertain, then paged once", func() error {
		ins, _ := r.st.Instances(t.Context(), "connections")
		for _, in := range ins {
			if in.State != assertd.Escalated {
				return fmt.Errorf("%s is %s", in.Labels, in.State)
			}
		}
		if r.pdEvents("trigger") != 1 {
			return fmt.Errorf("pd triggers %d", r.pdEvents("trigger"))
		}
		return nil
	})
	r.settled("connections", 2)
	if n := r.pdEvents("trigger"); n != 1 || len(r.runs("restart")) != 0 {
		var keys []string
		for _, e := range r.pd.Events() {
			keys = append(keys, e.Action+" "+e.DedupKey+" "+e.Payload.Summary)
		}
		trs, _ := r.st.Transitions(t.Context(), storeFilter("connections"))
		t.Fatalf("want one grouped page and zero runs: %d pages %q, %d runs\n%+v", n, keys, len(r.runs("restart")), trs)
	}
}

// 5. Half the fleet turns violated at once: the breaker stops automation,
// one page, zero runs.
func TestBlastRadiusBreaker(t *testing.T) {
	t.Parallel()
	var svcs []*service
	for range 4 {
		svcs = append(svcs, startService(t))
	}
	r := newRig(t, targets(svcs...), latencyRules("5s"))
	r.start()
	r.waitOK("latency", 4)
	svcs[0].SetFault(demo.FaultLatency, true)
	svcs[1].SetFault(demo.FaultLatency, true)
	r.eventually(30*time.Second, "one page", func() error {
		if r.pdEvents("trigger") != 1 {
			return fmt.Errorf("pd triggers %d", r.pdEvents("trigger"))
		}
		return nil
	})
	r.settled("latency", 2)
	if n, runs := r.pdEvents("trigger"), len(r.runs("restart")); n != 1 || runs != 0 {
		t.Fatalf("want zero runs and one page: %d runs, %d pages", runs, n)
	}
	for _, s := range svcs[:2] {
		if s.State().Restarts != 0 {
			t.Fatal("a service was restarted while the breaker was open")
		}
	}
}

// 6. kill -9 in the middle of a remediation: after the restart the run is
// interrupted and exactly one page goes out.
func TestKill9MidRemediation(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	r := newRig(t, targets(svc), latencyRules("30s"))
	r.start()
	r.waitOK("latency", 1)
	svc.SetFault(demo.FaultStuckLatency, true)
	r.eventually(30*time.Second, "a run in its settle step", func() error {
		if runs := r.runs("restart"); len(runs) != 1 || runs[0].Status != assertd.RunRunning {
			return fmt.Errorf("runs %+v", runs)
		}
		return nil
	})
	r.kill9()
	r.start()
	r.eventually(20*time.Second, "interrupted and paged", func() error {
		runs := r.runs("restart")
		if len(runs) == 0 || runs[len(runs)-1].Status != assertd.RunInterrupted {
			return fmt.Errorf("runs %+v", runs)
		}
		if r.pdEvents("trigger") != 1 {
			return fmt.Errorf("pd triggers %d", r.pdEvents("trigger"))
		}
		return nil
	})
	r.settled("latency", 2)
	if n := r.pdEvents("trigger"); n != 1 {
		t.Fatalf("want exactly one page, got %d", n)
	}
	// The restarted process counts the run it found interrupted.
	if _, m := r.get("/metrics", ""); !strings.Contains(m, `assertd_remediation_runs_total{outcome="interrupted",remediation="restart"} 1`) {
		t.Errorf("the interrupted run is not counted:\n%s", grepLines(m, "assertd_remediation_runs_total"))
	}
}
