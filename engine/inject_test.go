package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/remediations"
)

// A label value that a remediation refuses (an option where a value goes,
// or one outside its allow pattern) starts nothing: the instance is paged
// with the reason, and the refusal is counted by kind.
func TestRefusedLabelValuePages(t *testing.T) {
	helper := helperProgram(t)
	for _, tc := range []struct {
		name, allow, value, kind, reason string
	}{
		{"an option where a value goes", "", "--help", "value", `refused before any step ran: step restart: run[3]: {{.Labels.instance}} gives "--help", which starts with "-" and would be read as an option`},
		{"outside the allow pattern", "    allow: {instance: '[a-z0-9-]+'}\n", "a/../b", "allow", `refused: allow: label instance="a/../b" does not match [a-z0-9-]+`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "argv")
			set := loadRunnerSet(t, `asserts:
  - {name: latency, query: {ms: latency_ms}, expect: ms < 50, remediate: restart}
remediations:
  - name: restart
`+tc.allow+`    steps:
      - {name: restart, run: [`+helper+`, argv, `+out+`, "{{ .Labels.instance }}"]}
      - {name: verify, verify: latency}
`, "")
			st, src, reg := openStore(t), &source{}, prometheus.NewRegistry()
			e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: src}, remediations.RunnerOptions{Clock: fakeclock.New(t0), Registerer: reg})
			src.set(map[string]float64{tc.value: 80}, nil)
			e.EvaluateNow(context.Background(), "latency", t0)
			settle(t, e)
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("the program ran")
			}
			ms := messages(t, st)
			if len(ms) != 1 || ms[0].Kind != "trigger" || !strings.Contains(notice(t, ms[0]).Reason, tc.reason) {
				t.Fatalf("want one page with %q: %+v", tc.reason, ms)
			}
			if in := e.Instances()[0]; in.State != assertd.Escalated {
				t.Fatalf("instance %s", in.State)
			}
			if n := refusals(t, reg, tc.kind); n != 1 {
				t.Fatalf("assertd_refusals_total{reason=%s} = %v, want 1", tc.kind, n)
			}
		})
	}
}
