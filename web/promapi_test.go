package web_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const promAPIConfig = `files: [rules.yaml]
data_dir: data
notifiers:
  - {name: slack, console: {}}
escalation_policies:
  - {name: ops, levels: [{after: 1h, notify: [slack]}]}
defaults: {escalate: ops}
web:
  public_read: true
  tokens:
    - {name: alice, role: admin, token_env: T_ADMIN}
`

const promAPIRules = `asserts:
  - name: api-latency
    every: 15s
    query: {ms: 'api_latency_ms'}
    expect: ms < 50
    labels: {team: web}
`

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// promtool, Prometheus' own client, queries assertd as it queries
// Prometheus: the instances' states as ASSERTS series, and a range over a
// scraped metric.
func TestPromtoolQueriesAssertd(t *testing.T) {
	e := newEnvWith(t, promAPIConfig, promAPIRules)
	start := e.clock.Now()
	for i := range 4 {
		// web1 is being upgraded: violated, neither remediated nor paged yet.
		e.sample("api_latency_ms", 20+float64(i)*30, "instance", "web1", "lifecycle", "upgrading")
		e.sample("api_latency_ms", 10, "instance", "web2")
		e.eval()
		if err := e.app.RecordStates(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(15 * time.Second)
	}
	at := e.clock.Now().Add(-15 * time.Second)
	out := promtool(t, "query", "instant", "--time="+at.Format(time.RFC3339), e.base, `ASSERTS{state="violated"}`)
	want := `ASSERTS{assert="api-latency", instance="web1", state="violated", team="web"} => 1 @[` + fmt.Sprint(at.Unix())
	if !strings.Contains(out, want) || strings.Contains(out, "web2") {
		t.Fatalf("promtool query instant:\n%s\nwant %s", out, want)
	}
	// web1 was ok before it was violated: its ok series ended (stale) when it turned.
	out = promtool(t, "query", "instant", "--time="+at.Format(time.RFC3339), e.base, `count by (state) (ASSERTS)`)
	if !strings.Contains(out, `{state="ok"} => 1`) || !strings.Contains(out, `{state="violated"} => 1`) {
		t.Fatalf("states:\n%s", out)
	}
	out = promtool(t, "query", "range", "--start="+start.Format(time.RFC3339), "--end="+at.Format(time.RFC3339), "--step=15s", e.base, `api_latency_ms{instance="web1"}`)
	if !strings.Contains(out, `lifecycle="upgrading"`) {
		t.Fatalf("range: %s", out)
	}
	for i, v := range []string{"20", "50", "80", "110"} {
		if !strings.Contains(out, v+" @["+fmt.Sprint(start.Add(time.Duration(i)*15*time.Second).Unix())) {
			t.Fatalf("promtool query range: no %s at step %d:\n%s", v, i, out)
		}
	}
	// The other endpoints, in Prometheus' JSON.
	for path, want := range map[string]string{
		"/api/v1/labels":                                    `"assert"`,
		"/api/v1/label/assert/values":                       `"data":["api-latency"]`,
		"/api/v1/series?match[]=ASSERTS{instance=\"web2\"}": `"state":"ok"`,
		"/api/v1/query?query=up{":                           `"errorType":"bad_data"`,
	} {
		code, body := e.do("GET", path, "", "")
		if !strings.Contains(body, want) || (code != 200) != strings.Contains(want, "bad_data") {
			t.Errorf("%s: %d %s, want %s", path, code, body, want)
		}
	}
}
