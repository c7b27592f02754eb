package remediations

import (
	"strings"
	"testing"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

func run(name string, next ...string) Step {
	s := Step{Name: name, Run: []string{"true"}}
	if len(next) > 0 {
		s.OnSuccess = next[0]
	}
	if len(next) > 1 {
		s.OnFailure = next[1]
	}
	return s
}

func verify(name string, next ...string) Step {
	s := run(name, next...)
	s.Run, s.Verify = nil, &Verify{Assert: "a"}
	return s
}

func wait(name string, next ...string) Step {
	s := run(name, next...)
	s.Run, s.Wait = nil, assertd.Duration(1e9)
	return s
}

func compileSteps(steps ...Step) (*Compiled, strictyaml.Errors) {
	return Compile(&Remediation{Name: "r", Steps: steps}, (*strictyaml.Positions)(nil).In("remediations", 0))
}

// The graph validator on hand-built graphs: every path ends in a passing
// verify or in page, nothing is unreachable, nothing loops.
func TestGraph(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []Step
		want  []string // substrings, one per error, in order
	}{
		{"restart, settle, verify", []Step{run("restart"), wait("settle"), verify("verify")}, nil},
		{"fallback after a failed verify", []Step{run("restart"), verify("v1", "done", "failover"), run("failover"), verify("v2")}, nil},
		{"failure goes to a fallback that verifies", []Step{run("a", "", "b"), verify("va", "done"), run("b"), verify("vb")}, nil},
		{"two-step cycle", []Step{run("a", "", "b"), run("b", "", "a"), verify("v")},
			[]string{"steps form a cycle (a → b → a)"}},
		{"three-step cycle through success", []Step{run("a"), run("b"), verify("c", "a")},
			[]string{"steps form a cycle (a → b → c → a)"}},
		{"self loop", []Step{run("a", "a"), verify("v")}, []string{`step "a" sends itself to itself`}},
		{"unreachable step", []Step{verify("v", "done"), run("orphan"), verify("v2")},
			[]string{`step "orphan" can never run`, `step "v2" can never run`}},
		{"path without verify", []Step{verify("v", "done", "fallback"), run("fallback")},
			[]string{`the run ends after step "fallback" without verifying`}},
		{"no verify at all", []Step{run("a"), wait("b")},
			[]string{`the run ends after step "b" without verifying`, `has no verify step`}},
		{"done from a non-verify step", []Step{run("a", "done"), verify("v")},
			[]string{`step "v" can never run`, `the run ends after step "a" without verifying`}},
		{"unknown step reference", []Step{run("a", "", "fallbak"), run("fallback", "v"), verify("v")},
			[]string{`on_failure names step "fallbak", which does not exist (did you mean "fallback"?)`}},
		{"on_success page", []Step{run("a", "page"), verify("v")}, []string{"on_success cannot be page"}},
		{"on_failure done", []Step{run("a", "", "done"), verify("v")}, []string{"on_failure cannot be done"}},
		{"no steps", nil, []string{"has no steps"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := compileSteps(tc.steps...)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), errs)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Msg, w) {
					t.Errorf("error %d: %q does not contain %q", i, errs[i].Msg, w)
				}
			}
		})
	}
}

func TestGraphTargets(t *testing.T) {
	c, errs := compileSteps(run("restart", "", "failover"), wait("settle"), verify("verify", "done", "failover"), run("failover"), verify("verify2"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := [][2]int{{1, 3}, {2, Page}, {Done, 3}, {4, Page}, {Done, Page}}
	for i, s := range c.Steps {
		if s.OnSuccess != want[i][0] || s.OnFailure != want[i][1] {
			t.Errorf("step %s: success %d failure %d, want %v", s.Name, s.OnSuccess, s.OnFailure, want[i])
		}
	}
	if c.Steps[0].Timeout != DefaultTimeout || c.Steps[2].Timeout != DefaultVerifyTimeout || c.Mode != ModeOn || c.ApprovalExpire != DefaultApprovalTTL {
		t.Errorf("defaults not filled: %+v", c.Steps[0])
	}
}

// Errors are placed where the user wrote the offending value.
func TestGraphPositions(t *testing.T) {
	src := `remediations:
  - name: r
    steps:
      - name: a
        run: ["true"]
        on_failure: b
      - name: b
        run: ["true"]
        on_failure: a
      - name: v
        verify: x
        on_success: done
      - name: orphan
        wait: 1s
`
	var f struct {
		Remediations []Remediation `yaml:"remediations"`
	}
	pos, errs := strictyaml.Decode("r.yaml", []byte(src), &f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	_, errs = Compile(&f.Remediations[0], pos.In("remediations", 0))
	got := errs.Sort().Error()
	want := "r.yaml:9:21: steps form a cycle (a → b → a): loops are not allowed; use retries: N on a step to repeat it a bounded number of times\n" +
		"r.yaml:13:9: step \"orphan\" can never run: no step leads to it (name it in on_success or on_failure of an earlier step, or remove it)"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
