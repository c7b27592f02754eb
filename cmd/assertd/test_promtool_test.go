package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const promtoolData = "../../asserttest/promunit/testdata/"

// TestTestPromtoolFiles: assertd test tells promtool's test files from its
// own by content and runs them as promtool does, with its flags, output,
// exit codes and --junit.
func TestTestPromtoolFiles(t *testing.T) {
	code, out, errs := runCLI("test", promtoolData+"prometheus/unittest.yml", promtoolData+"corpus/node.test.yml")
	if code != 0 || out != "  SUCCESS\n\n  SUCCESS\n\n" || errs != "" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	code, _, errs = runCLI("test", promtoolData+"prometheus/rules_run.yml")
	if code != 1 || !strings.HasPrefix(errs, "  FAILED:\n    expr: \"test\", time: 0s,\n") {
		t.Fatalf("exit %d\nstderr %q", code, errs)
	}
	if code, out, _ := runCLI("test", "--run", "correct", promtoolData+"prometheus/rules_run.yml"); code != 0 || out != "  SUCCESS\n\n" {
		t.Errorf("--run correct: exit %d %q", code, out)
	}
	if code, _, _ := runCLI("test", "--ignore-unknown-fields", promtoolData+"prometheus/rules_run_extrafields.yml"); code != 0 {
		t.Errorf("--ignore-unknown-fields: exit %d", code)
	}

	// Both formats in one run: promtool's output, then assertd's report;
	// one JUnit file with a suite per promtool file and one for assertd's.
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, out, errs = runCLI("test", "--junit", junit, promtoolData+"prometheus/failing.yml", "../../examples/quickstart/quickstart.test.yaml")
	if code != 1 || !strings.HasPrefix(out, "\n\n") || !strings.Contains(out, "--- PASS: ") || !strings.HasSuffix(out, "FAIL\n") ||
		!strings.HasPrefix(errs, "  FAILED:\n") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(x); !strings.HasPrefix(s, "<testsuites>") || strings.Count(s, "<testsuite ") != 2 ||
		!strings.Contains(s, `name="`+promtoolData+`prometheus/failing.yml" tests="2" failures="4"`) || !strings.Contains(s, `name="assertd"`) {
		t.Errorf("junit:\n%s", s)
	}
}
