package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Promtool is Debian's promtool, the baseline of the promtool rows.
const Promtool = "/usr/bin/promtool"

// promtoolRules is the alert and recording groups of the rules.yml of
// Prometheus' cmd/promtool/testdata (Apache License 2.0, The Prometheus
// Authors), the groups its unittest.yml tests.
const promtoolRules = `groups:
  - name: alerts
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels:
          severity: page
        annotations:
          summary: "Instance {{ $labels.instance }} down"
          description: "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes."
      - alert: AlwaysFiring
        expr: 1
  - name: rules
    rules:
      - record: job:test:count_over_time1m
        expr: sum without(instance) (count_over_time(test[1m]))
      - record: fixed_data
        expr: 1
      - record: suquery_interval_test
        expr: count_over_time(up[5m:])
`

// PromtoolRig is a directory with a promtool test file of few series and
// many evaluations, a larger rule file to check, and a built assertd.
type PromtoolRig struct {
	Dir     string
	Assertd string // the assertd binary
	Test    string // the test file
	Rules   string // the rule file checked
	Evals   int
	NRules  int
}

// NewPromtoolRig writes the files into dir and builds assertd there.
// The test evaluates the two groups evals times at 1m; the checked file
// has nrules alerting rules in groups of 10, each with labels and
// templated annotations.
func NewPromtoolRig(ctx context.Context, dir string, evals, nrules int) (*PromtoolRig, error) {
	r := &PromtoolRig{Dir: dir, Assertd: filepath.Join(dir, "assertd"), Test: filepath.Join(dir, "long.test.yml"),
		Rules: filepath.Join(dir, "many.rules.yml"), Evals: evals, NRules: nrules}
	last := fmt.Sprintf("%dm", evals-1)
	test := fmt.Sprintf(`rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="prometheus", instance="localhost:9090"}'
        values: '0x%[1]d'
      - series: 'up{job="node", instance="localhost:9100"}'
        values: '1x%[1]d'
      - series: 'test{job="test", instance="x"}'
        values: '1+1x%[1]d'
    alert_rule_test:
      - eval_time: %[2]s
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {severity: page, instance: "localhost:9090", job: prometheus}
            exp_annotations:
              summary: "Instance localhost:9090 down"
              description: "localhost:9090 of job prometheus has been down for more than 5 minutes."
      - eval_time: %[2]s
        alertname: AlwaysFiring
        exp_alerts: [{}]
    promql_expr_test:
      - expr: fixed_data
        eval_time: %[2]s
        exp_samples:
          - labels: 'fixed_data'
            value: 1
`, evals-1, last)
	var many strings.Builder
	many.WriteString("groups:\n")
	for i := range nrules {
		if i%10 == 0 {
			fmt.Fprintf(&many, "  - name: group-%d\n    interval: 30s\n    rules:\n", i/10)
		}
		fmt.Fprintf(&many, `      - alert: Alert%[1]d
        expr: sum by (instance, job) (rate(http_requests_total{job="svc%[1]d",code=~"5.."}[5m])) / sum by (instance, job) (rate(http_requests_total{job="svc%[1]d"}[5m])) > 0.05
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: %[2]s
          team: team-%[3]d
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} answers {{ $value | humanizePercentage }} errors"
          runbook: "https://runbooks.example.com/svc%[1]d"
`, i, []string{"warning", "critical"}[i%2], i%7)
	}
	for name, content := range map[string]string{"rules.yml": promtoolRules, "long.test.yml": test, "many.rules.yml": many.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", r.Assertd, "github.com/assertd/assertd/cmd/assertd")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build assertd: %w\n%s", err, out)
	}
	return r, nil
}

// PromtoolResult holds the medians of the promtool rows: wall time, and
// the process's CPU time (user+system), which a loaded machine disturbs
// less.
type PromtoolResult struct {
	AssertdTest, PromtoolTest         time.Duration
	AssertdCheck, PromtoolCheck       time.Duration
	AssertdTestCPU, PromtoolTestCPU   time.Duration
	AssertdCheckCPU, PromtoolCheckCPU time.Duration
	// CheckErr is set when assertd check did not accept the rule file.
	CheckErr string
}

// MeasurePromtool times `assertd test` against `promtool test rules` on the
// test file and `assertd check` against `promtool check rules` on the rule
// file, each as a process, round-robin over rounds; both must pass.
func MeasurePromtool(ctx context.Context, r *PromtoolRig, rounds int) (PromtoolResult, error) {
	var at, pt, ac, pc, atc, ptc, acc, pcc []time.Duration
	var res PromtoolResult
	cpuOf := map[*[]time.Duration]*[]time.Duration{&at: &atc, &pt: &ptc, &ac: &acc, &pc: &pcc}
	timed := func(into *[]time.Duration, mustPass bool, name string, args ...string) error {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr, cmd.Dir = &out, &out, r.Dir
		start := time.Now()
		err := cmd.Run()
		*into = append(*into, time.Since(start))
		if cmd.ProcessState != nil {
			*cpuOf[into] = append(*cpuOf[into], cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		}
		if err != nil {
			if !mustPass {
				res.CheckErr = strings.TrimSpace(out.String())
				return nil
			}
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	for range rounds {
		for _, step := range []func() error{
			func() error { return timed(&at, true, r.Assertd, "test", r.Test) },
			func() error { return timed(&pt, true, Promtool, "test", "rules", r.Test) },
			func() error { return timed(&ac, false, r.Assertd, "check", r.Rules) },
			func() error { return timed(&pc, true, Promtool, "check", "rules", r.Rules) },
		} {
			if err := step(); err != nil {
				return res, err
			}
		}
	}
	res.AssertdTest, res.PromtoolTest = median(at), median(pt)
	res.AssertdCheck, res.PromtoolCheck = median(ac), median(pc)
	res.AssertdTestCPU, res.PromtoolTestCPU = median(atc), median(ptc)
	res.AssertdCheckCPU, res.PromtoolCheckCPU = median(acc), median(pcc)
	return res, nil
}
