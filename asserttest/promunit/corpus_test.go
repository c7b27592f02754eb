package promunit

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promtool is Debian's promtool (package prometheus, installed by make
// deps): the reference run beside assertd's.
const promtool = "/usr/bin/promtool"

// debianDiffers lists the files on which Debian's promtool (2.42) and the
// v0.315 module disagree, with the module's verdict and the reason.
// assertd matches the module; the test checks both sides of each claim.
var debianDiffers = map[string]struct {
	module bool // passes
	why    string
}{
	"prometheus/unittest.yml":               {true, "native histograms in exp_samples (histogram:) are unknown to 2.42"},
	"prometheus/no-test-group-interval.yml": {true, "a test group without interval takes evaluation_interval in the module, 1m in 2.42"},
	"prometheus/start-time-test.yml":        {true, "start_timestamp is unknown to 2.42"},
	"corpus/start-timestamp.test.yml":       {true, "start_timestamp is unknown to 2.42"},
	"corpus/lookback-boundary.test.yml":     {true, "Prometheus 3 looks back over (t-5m, t], 2.x over [t-5m, t]: a series ends one evaluation earlier"},
}

// sameVerdictOtherReason lists files both fail, for different reasons:
// their failure sets are not compared.
var sameVerdictOtherReason = map[string]string{
	"prometheus/rules_run_fuzzy.yml":    "2.42 refuses fuzzy_compare; the module fails the wrong fuzzy match",
	"prometheus/rules_run_no_fuzzy.yml": "2.42 refuses fuzzy_compare; the module fails the exact comparison",
}

// failureLine is one failed check as both print it: the alert or
// expression (or the rule whose evaluation failed) and the time.
var failureLine = regexp.MustCompile(`(?m)^\s+((?:alertname|expr|rule): .*?, time: [^,]+),`)

func failureSet(stderr string) []string {
	var set []string
	for _, m := range failureLine.FindAllStringSubmatch(stderr, -1) {
		set = append(set, m[1])
	}
	slices.Sort(set)
	return slices.Compact(set)
}

func corpus(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"prometheus", "corpus"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.yml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if IsTestPath(f) {
				files = append(files, f)
			}
		}
	}
	if len(files) < 19 {
		t.Fatalf("the corpus has %d test files: %v", len(files), files)
	}
	return files
}

func runAssertd(t *testing.T, opts Options, file string) (bool, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	r, err := NewRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	ok := r.RunFile(file)
	if ok == r.Failed {
		t.Fatalf("%s: RunFile says %v, Failed %v", file, ok, r.Failed)
	}
	return ok, out.String(), errb.String()
}

func runPromtool(t *testing.T, file string) (bool, string) {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(promtool, "test", "rules", file)
	cmd.Stderr = &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, errb.String()
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, errb.String()
	default:
		t.Fatalf("%s test rules %s: %v\n%s", promtool, file, err, errb.String())
		return false, ""
	}
}

// TestCorpusAgainstPromtool runs every test file of the corpus with
// Debian's promtool and with assertd: the same verdict, and when both
// fail for the same reason, the same failed checks.
func TestCorpusAgainstPromtool(t *testing.T) {
	for _, f := range corpus(t) {
		name, _ := filepath.Rel("testdata", f)
		t.Run(name, func(t *testing.T) {
			ours, _, ourErr := runAssertd(t, Options{}, f)
			theirs, theirErr := runPromtool(t, f)
			if d, ok := debianDiffers[name]; ok {
				if ours != d.module || theirs == d.module {
					t.Fatalf("expected the module's verdict (pass %v) and 2.42's opposite (%s); assertd pass %v, promtool pass %v\nassertd:\n%s\npromtool:\n%s",
						d.module, d.why, ours, theirs, ourErr, theirErr)
				}
				return
			}
			if ours != theirs {
				t.Fatalf("assertd pass %v, promtool pass %v\nassertd:\n%s\npromtool:\n%s", ours, theirs, ourErr, theirErr)
			}
			if _, ok := sameVerdictOtherReason[name]; ok || ours {
				return
			}
			if a, b := failureSet(ourErr), failureSet(theirErr); !slices.Equal(a, b) {
				t.Fatalf("failed checks differ\nassertd:  %q\npromtool: %q", a, b)
			}
		})
	}
}

// TestModuleVerdicts holds assertd to the verdicts promtool's own tests
// (cmd/promtool/unittest_test.go in the v0.315 module) expect, flags
// included.
func TestModuleVerdicts(t *testing.T) {
	for _, c := range []struct {
		file string
		opts Options
		pass bool
	}{
		{"unittest.yml", Options{}, true},
		{"long-period.yml", Options{}, true},
		{"bad-input-series.yml", Options{}, false},
		{"bad-promql.yml", Options{}, false},
		{"bad-rules-syntax-test.yml", Options{}, false},
		{"bad-rules-error-test.yml", Options{}, false},
		{"failing.yml", Options{}, false},
		{"at-modifier-test.yml", Options{}, true},
		{"negative-offset-test.yml", Options{}, true},
		{"no-test-group-interval.yml", Options{}, true},
		{"start-time-test.yml", Options{}, true},
		{"rules_run.yml", Options{}, false},
		{"rules_run.yml", Options{Run: []string{"correct", "wrong"}}, false},
		{"rules_run.yml", Options{Run: []string{"correct"}}, true},
		{"rules_run.yml", Options{Run: []string{"wrong"}}, false},
		{"rules_run_extrafields.yml", Options{}, false},
		{"rules_run_extrafields.yml", Options{IgnoreUnknownFields: true}, true},
		{"rules_run_no_fuzzy.yml", Options{}, false},
		{"rules_run_fuzzy.yml", Options{Run: []string{"correct"}}, true},
		{"rules_run_fuzzy.yml", Options{Run: []string{"wrong"}}, false},
	} {
		ok, _, stderr := runAssertd(t, c.opts, filepath.Join("testdata", "prometheus", c.file))
		if ok != c.pass {
			t.Errorf("%s %+v: pass %v, want %v\n%s", c.file, c.opts, ok, c.pass, stderr)
		}
	}
}

// TestOutput prints like promtool: SUCCESS on stdout, FAILED: and each
// failed check on stderr, identical to Debian's promtool where both
// versions agree.
func TestOutput(t *testing.T) {
	ok, out, stderr := runAssertd(t, Options{}, "testdata/prometheus/unittest.yml")
	if !ok || out != "  SUCCESS\n\n" || stderr != "" {
		t.Fatalf("pass %v\nstdout %q\nstderr %q", ok, out, stderr)
	}
	for _, f := range []string{"testdata/prometheus/failing.yml", "testdata/corpus/wrong-expectations.test.yml"} {
		ok, _, stderr := runAssertd(t, Options{}, f)
		_, theirs := runPromtool(t, f)
		if ok || !strings.HasPrefix(stderr, "  FAILED:\n") || stderr != theirs {
			t.Errorf("%s: pass %v\nassertd:\n%s\npromtool:\n%s", f, ok, stderr, theirs)
		}
	}
}
