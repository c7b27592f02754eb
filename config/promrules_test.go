package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrometheusRuleFiles: Prometheus rule files load among files: as
// promtool checks them (duplicate alert names are legal), and each problem
// is reported at file:line:col with what to write instead.
func TestPrometheusRuleFiles(t *testing.T) {
	const good = `groups:
  - name: db
    interval: 30s
    query_offset: 1m
    limit: 10
    labels: {team: dba}
    rules:
      - record: job:pg_up:sum
        expr: sum by (job) (pg_up)
      - alert: PgDown
        expr: pg_up == 0
        for: 5m
        keep_firing_for: 1m
        annotations: {summary: "{{ $labels.instance }} down"}
      - alert: PgDown
        expr: pg_up{role="primary"} == 0
        labels: {severity: critical}
`
	for _, tc := range []struct {
		name, cfg, rules string
		rem              bool     // with rem.yaml, a remediation verifying PgDown
		want             []string // substrings of the errors, in order; none: it loads
	}{
		{"loads", "", good, false, nil},
		{"bad expression", "", strings.Replace(good, "pg_up == 0", "pg_up ==", 1), false, []string{"rules.yml:11:15: group \"db\", rule 2, \"PgDown\": could not parse expression"}},
		{"unknown key", "", strings.Replace(good, "for: 5m", "for: 5m\n        severity: page", 1), false, []string{"rules.yml:13:9: field severity not found in a Prometheus rule (record or alert"}},
		{"bad template", "", strings.Replace(good, "{{ $labels.instance }}", "{{ $labels.instance", 1), false, []string{"rules.yml:10:9: group \"db\", rule 2, \"PgDown\": annotation \"summary\": template: __alert_PgDown:1: function \"down\" not defined"}},
		{"recording rule on a remote source", "sources: {prometheus: [{name: prom, url: \"http://127.0.0.1:9\"}]}\nprometheus_rules: {source: prom}\n", good,
			false, []string{"rules.yml:8:9: recording rule job:pg_up:sum cannot be written: the rules query the remote source prom"}},
		{"remote_write on the embedded source", "prometheus_rules: {remote_write: {url: \"http://127.0.0.1:9/api/v1/write\"}}\n", good,
			false, []string{"assertd.yaml:2:34: remote_write is for rules on a remote source"}},
		{"bad binding", "prometheus_rules:\n  bindings:\n    - {match: 'alertname=\"PgDown\"', remediate: nope, no_data: ok}\n", good,
			false, []string{"assertd.yaml:4:7: assert \"binding-1\" names no escalation policy", "assertd.yaml:4:15: match must be a selector",
				"assertd.yaml:4:48: unknown remediation \"nope\"; the remediations are: none", "assertd.yaml:4:54: unknown key \"no_data\": a rule that cannot be evaluated makes the alerts it could raise uncertain"}},
		{"verify step shorter than resolved_within", "defaults: {escalate: ops}\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\n" +
			"prometheus_rules:\n  bindings:\n    - {match: '{alertname=\"PgDown\"}', remediate: fix}\n", good,
			true, []string{"rem.yaml:4:9: verify step verify of fix waits up to resolved_within 5m for the alert of binding PgDown to resolve, longer than its timeout 30s: set timeout: above it, such as timeout: 5m30s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := "files: [rules.yml]\n"
			if tc.rem {
				files = "files: [rules.yml, rem.yaml]\n"
				os.WriteFile(filepath.Join(dir, "rem.yaml"), []byte("remediations:\n  - name: fix\n    steps:\n      - {name: verify, verify: PgDown}\n"), 0o644)
			}
			os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(files+tc.cfg), 0o644)
			os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(tc.rules), 0o644)
			set, errs := Load(filepath.Join(dir, "assertd.yaml"))
			var got []string
			for _, e := range errs {
				got = append(got, strings.TrimPrefix(e.Error(), dir+"/"))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d:\n%s\nwant it to contain %q", i, got[i], w)
				}
			}
			if tc.want == nil {
				if g, r := set.RuleCount(); g != 1 || r != 3 {
					t.Errorf("%d groups, %d rules; want 1, 3", g, r)
				}
			}
		})
	}
}
