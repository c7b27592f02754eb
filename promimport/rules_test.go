package promimport

import (
	"strings"
	"testing"
)

func TestImportRules(t *testing.T) {
	res, err := Import([]string{"../asserttest/promunit/testdata/corpus/postgres.rules.yml"},
		Options{ExternalLabels: map[string]string{"cluster": "payments"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res.Rules {
		names = append(names, r.Assert)
	}
	if got := strings.Join(names, " "); got != "PostgresqlDown PostgresqlTooManyConnections PostgresqlTooManyConnections-2" {
		t.Errorf("asserts: %s", got)
	}
	out := string(res.Files["../asserttest/promunit/testdata/corpus/postgres.rules.yml"])
	for _, want := range []string{
		"  - name: PostgresqlDown\n    description: Prometheus alerting rule PostgresqlDown (postgres.rules.yml, group postgresql, rule 1)\n    every: 1m\n    for: 1m\n    query:\n      value: pg_up == 0\n    expect: \"false\"\n    no_data: ok\n",
		`description: '{{ $labels := .Labels }}{{ $labels.instance }} has been down; cluster {{ "payments" | title }}.'`,
		`summary: '{{ $labels := .Labels }}{{ $value := .Values.value }}{{ $labels.instance }}: {{ $value | humanize }} connections (over 80% of max)'`,
		"      alertname: PostgresqlTooManyConnections\n      severity: critical\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if got := strings.Join(res.Skipped, "\n"); !strings.Contains(got, "rule 4 (PostgresqlReplicationLag): keep_firing_for has no equivalent") ||
		!strings.Contains(got, "rule 5 (PostgresqlBackupTooOld): annotation summary: calls query") {
		t.Errorf("skipped:\n%s", got)
	}
	if len(res.Recorded) != 1 || res.Recorded[0] != "instance:pg_connections:ratio" {
		t.Errorf("recorded: %v", res.Recorded)
	}
}
