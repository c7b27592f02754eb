package remediations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

func verifyStep() Step { return Step{Name: "verify", Verify: &Verify{Assert: "latency"}} }

// The runner on real child processes (testdata/helper), step by step.
func TestRunSteps(t *testing.T) {
	type want struct {
		verified bool
		outcome  string   // contained in the run's outcome
		steps    []string // name:outcome of each recorded attempt
		output   string   // contained in the first step's output
		notIn    string   // not contained in any output, error or step log
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	counter := filepath.Join(dir, "counter")
	pidfile := filepath.Join(dir, "child.pid")
	for _, tc := range []struct {
		name     string
		steps    []Step
		in       func(assertd.Instance) assertd.Instance
		verifyOK bool
		want     want
		check    func(t *testing.T, g *rig, elapsed time.Duration)
	}{
		{name: "argv templated from labels and values; verify passes",
			steps:    []Step{{Name: "restart", Run: []string{helper, "echo", "restart", "{{ .Labels.instance }}", "{{ .Values.ms }}", "{{ .RunID }}"}}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, outcome: "verified: latency holds", steps: []string{"restart:ok", "verify:ok"}, output: "restart a 80 r1"}},
		{name: "the command succeeds but the assert still fails",
			steps: []Step{{Name: "restart", Run: []string{helper, "echo", "ok"}}, verifyStep()},
			want:  want{outcome: "step verify failed: the assert still fails: latency is violated", steps: []string{"restart:ok", "verify:failed"}}},
		{name: "exit code is the outcome; on_failure page",
			steps: []Step{{Name: "restart", Run: []string{helper, "exit", "3"}}, verifyStep()},
			want:  want{outcome: "step restart failed: " + helper + " exited with code 3", steps: []string{"restart:failed"}, output: "exiting with 3"}},
		{name: "on_failure goes to a fallback step",
			steps: []Step{{Name: "drain", Run: []string{helper, "exit", "1"}, OnFailure: "restart"}, {Name: "skip", Run: []string{helper, "echo"}},
				{Name: "restart", Run: []string{helper, "echo", "fallback"}}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"drain:failed", "restart:ok", "verify:ok"}}},
		{name: "a template that renders empty is refused before the first step: nothing runs",
			steps: []Step{{Name: "restart", Run: []string{helper, "touch", marker, "{{ .Labels.missing }}"}}, verifyStep()},
			want:  want{outcome: "refused before any step ran: step restart: run[3] renders empty", steps: []string{}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
					t.Fatal("the program ran")
				}
			}},
		{name: "a label with a NUL byte is refused before the first step",
			steps: []Step{{Name: "restart", Run: []string{helper, "touch", marker + "{{ .Labels.instance }}"}}, verifyStep()},
			in: func(in assertd.Instance) assertd.Instance {
				in.Labels = assertd.Labels{"instance": "a\x00b"}
				return in
			},
			want: want{outcome: "refused before any step ran: step restart: run[2]: {{.Labels.instance}} gives \"a\\x00b\", which holds the control character U+0000", steps: []string{}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if m, _ := filepath.Glob(marker + "*"); len(m) > 0 {
					t.Fatal("the program ran")
				}
			}},
		{name: "retries with doubling backoff on the injected clock",
			steps:    []Step{{Name: "restart", Run: []string{helper, "fail-until", counter, "3"}, Retries: 3, Backoff: assertd.Duration(time.Second)}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"restart:failed", "restart:failed", "restart:ok", "verify:ok"}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if g.clock.Slept() != 3*time.Second {
					t.Fatalf("backoff waited %s, want 1s + 2s", g.clock.Slept())
				}
			}},
		{name: "wait settles on the injected clock",
			steps:    []Step{{Name: "restart", Run: []string{helper, "echo"}}, {Name: "settle", Wait: assertd.Duration(20 * time.Second)}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"restart:ok", "settle:ok", "verify:ok"}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if g.clock.Slept() != 20*time.Second {
					t.Fatalf("waited %s", g.clock.Slept())
				}
			}},
		{name: "a step that ignores SIGTERM is killed with its process group after the grace",
			steps: []Step{{Name: "restart", Run: []string{helper, "ignore-term", pidfile}, Timeout: assertd.Duration(300 * time.Millisecond)}, verifyStep()},
			want:  want{outcome: "timed out after 300ms: process group killed", steps: []string{"restart:timeout"}, output: "ignoring SIGTERM"},
			check: func(t *testing.T, g *rig, elapsed time.Duration) {
				if elapsed > 5*time.Second {
					t.Fatalf("took %s", elapsed)
				}
				b, err := os.ReadFile(pidfile)
				if err != nil {
					t.Fatal(err)
				}
				pid, _ := strconv.Atoi(string(b))
				// The child is a real process reaped by init: a bounded poll.
				deadline := time.Now().Add(2 * time.Second)
				for syscall.Kill(pid, 0) == nil { // a zombie until reaped by init: check its state
					if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(st), ") Z ") || len(st) == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the child %d in the group survived", pid)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}},
		{name: "an output flood is cut to its tail",
			steps:    []Step{{Name: "restart", Run: []string{helper, "flood", "10000000"}}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"restart:ok", "verify:ok"}, output: "end of flood"},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				out := g.steps(t, "r1")[0].Output
				if len(out) > 65<<10 || !strings.Contains(out, "[assertd: 100") {
					t.Fatalf("output of %d bytes: %.200s", len(out), out)
				}
			}},
		{name: "env: allow-list and secret refs; the secret is redacted from the output",
			steps: []Step{{Name: "restart", Run: []string{helper, "env"}, EnvAllow: []string{"ALLOWED"},
				Env: map[string]Value{"TOKEN": {SecretEnv: "S"}, "TARGET": {Value: "{{ .Labels.instance }}"}}}, verifyStep()},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"restart:ok", "verify:ok"}, output: "ALLOWED=yes\nTARGET=a\nTOKEN=[redacted]", notIn: "hunter2-secret"},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if out := g.steps(t, "r1")[0].Output; strings.Contains(out, "NOT_ALLOWED") || strings.Contains(out, "PATH=") {
					t.Fatalf("the environment leaked: %s", out)
				}
			}},
		{name: "a missing secret fails before exec",
			steps: []Step{{Name: "restart", Run: []string{helper, "touch", marker}, Env: map[string]Value{"TOKEN": {SecretEnv: "UNSET"}}}, verifyStep()},
			want:  want{outcome: "secret_env UNSET is empty or unset", steps: []string{"restart:failed"}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if _, err := os.Stat(marker); err == nil {
					t.Fatal("the program ran")
				}
			}},
		{name: "verify expr",
			steps:    []Step{{Name: "verify", Verify: &Verify{Expr: "ms < 80"}}},
			verifyOK: true,
			want:     want{verified: true, steps: []string{"verify:ok"}},
			check: func(t *testing.T, g *rig, _ time.Duration) {
				if len(g.host.exprs) != 1 || g.host.exprs[0] != "ms < 80" {
					t.Fatalf("exprs %v", g.host.exprs)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			os.Remove(counter)
			rem := compileRem(t, Remediation{Name: "restart", Steps: tc.steps})
			g := newRig(t, rem)
			g.host.verifyOK = tc.verifyOK
			g.env["S"], g.env["ALLOWED"], g.env["NOT_ALLOWED"] = "hunter2-secret", "yes", "no"
			in := instA
			if tc.in != nil {
				in = tc.in(in)
			}
			start := time.Now()
			res := g.run(t, "restart", in, assertd.ActRemediate, "r1")
			elapsed := time.Since(start)
			if res.Verified != tc.want.verified || !strings.Contains(res.Outcome, tc.want.outcome) {
				t.Fatalf("verified %v, outcome %q\n%s", res.Verified, res.Outcome, res.StepLog)
			}
			steps := g.steps(t, "r1")
			var got []string
			all := res.StepLog + res.Outcome
			for _, s := range steps {
				got = append(got, s.Name+":"+string(s.Outcome))
				all += s.Output + s.Error
				if s.Ended.IsZero() || s.Started.IsZero() {
					t.Fatalf("step %s has no start or end", s.Name)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want.steps, " ") {
				t.Fatalf("steps %v, want %v\n%s", got, tc.want.steps, res.StepLog)
			}
			if tc.want.output != "" && !strings.Contains(steps[0].Output, tc.want.output) {
				t.Fatalf("output %q", steps[0].Output)
			}
			if tc.want.notIn != "" && strings.Contains(all, tc.want.notIn) {
				t.Fatalf("%q leaked into the records: %s", tc.want.notIn, all)
			}
			r, err := g.st.Run(context.Background(), "r1")
			if err != nil || !r.Status.Final() || r.Outcome == "" || r.LockKey == "" {
				t.Fatalf("run record %+v %v", r, err)
			}
			if tc.check != nil {
				tc.check(t, g, elapsed)
			}
		})
	}
}

func TestHTTPStep(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.Path + " " + string(b))
		if strings.HasPrefix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusAccepted)
		}
		fmt.Fprintf(w, "you sent %s", r.Header.Get("Authorization")) // a careless server echoes the secret
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path, want string
		verified   bool
	}{
		{"/drain", "", true},
		{"/fail", "answered 500, expected 202", false},
	} {
		rem := compileRem(t, Remediation{Name: "drain", Steps: []Step{
			{Name: "drain", HTTP: &HTTP{Method: "PUT", URL: srv.URL + tc.path + "/{{ .Labels.instance }}", Body: `{"target": "{{ .Labels.instance }}"}`,
				Headers: map[string]Value{"Authorization": {SecretEnv: "TOKEN", Prefix: "Bearer "}, "Content-Type": {Value: "application/json"}}, ExpectStatus: []int{202}}},
			verifyStep()}})
		g := newRig(t, rem)
		g.env["TOKEN"] = "s3cr3t-token"
		res := g.run(t, "drain", instA, assertd.ActRemediate, "h1")
		if res.Verified != tc.verified || !strings.Contains(res.Outcome, tc.want) {
			t.Fatalf("%s: %+v", tc.path, res)
		}
		if s := got.Load().(string); s != "PUT "+tc.path+"/a "+`{"target": "a"}` {
			t.Fatalf("request %q", s)
		}
		st := g.steps(t, "h1")[0]
		if !strings.Contains(st.Output, "you sent Bearer [redacted]") || strings.Contains(st.Output+res.StepLog, "s3cr3t") {
			t.Fatalf("output %q", st.Output)
		}
	}
}

// mode: shadow records the run it would have made and makes zero external
// calls: no process started, no HTTP request sent, no verify query.
func TestShadowMakesNoExternalCall(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	marker := filepath.Join(t.TempDir(), "ran")
	rem := compileRem(t, Remediation{Name: "restart", Mode: ModeShadow, Steps: []Step{
		{Name: "restart", Run: []string{helper, "touch", marker}, Env: map[string]Value{"TOKEN": {SecretEnv: "S"}}},
		{Name: "notify", HTTP: &HTTP{URL: srv.URL + "/{{ .Labels.instance }}"}},
		{Name: "settle", Wait: assertd.Duration(time.Minute)},
		verifyStep()}})
	g := newRig(t, rem)
	g.env["S"] = "hunter2-secret"
	d := g.r.Decide(context.Background(), "restart", instA, t0)
	if d.Action != assertd.ActShadow {
		t.Fatalf("decision %+v", d)
	}
	res := g.run(t, "restart", instA, d.Action, "s1")
	if !res.Shadow || res.Verified || !strings.Contains(res.Outcome, "shadow: would have run restart → notify → settle → verify") {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a process was started")
	}
	if requests.Load() != 0 || g.host.verifies != 0 || g.clock.Slept() != 0 {
		t.Fatalf("external calls: %d requests, %d verifies, slept %s", requests.Load(), g.host.verifies, g.clock.Slept())
	}
	steps := g.steps(t, "s1")
	if len(steps) != 4 || steps[0].Outcome != assertd.StepSkipped || !strings.Contains(steps[0].Output, "would run") ||
		!strings.Contains(steps[1].Output, "would send POST "+srv.URL+"/a") || strings.Contains(steps[0].Output, "hunter2") {
		t.Fatalf("steps %+v", steps)
	}
	r, _ := g.st.Run(context.Background(), "s1")
	if !r.Shadow || r.Status != assertd.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	// Shadow runs do not count towards max_runs or cooldown.
	if st, _ := g.st.RunStats(context.Background(), "restart", r.LockKey, t0.Add(-time.Hour)); st.Count != 0 {
		t.Fatalf("stats %+v", st)
	}
}
