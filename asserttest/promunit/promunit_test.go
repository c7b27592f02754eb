package promunit

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsTestFile(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		{"testdata/prometheus/unittest.yml", true},
		{"testdata/prometheus/bad-input-series.yml", true}, // no rule_files
		{"testdata/corpus/node.test.yml", true},
		{"testdata/corpus/node.rules.yml", false},
		{"../../examples/quickstart/quickstart.test.yaml", false}, // config: names assertd.yaml
		{"testdata/missing.yml", false},
	} {
		if got := IsTestPath(c.path); got != c.want {
			t.Errorf("%s: %v, want %v", c.path, got, c.want)
		}
	}
}

// TestJUnit writes promtool's JUnit XML: a suite per file, a case per test
// group, the failed checks and the rule files that do not load as
// failures.
func TestJUnit(t *testing.T) {
	var junit bytes.Buffer
	code, err := RunFiles(Options{}, &junit,
		"testdata/prometheus/rules_run.yml", "testdata/prometheus/bad-promql.yml", "testdata/prometheus/rules_run_extrafields.yml")
	if err != nil || code != ExitFailure {
		t.Fatalf("exit %d, %v", code, err)
	}
	var got struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Cases    []struct {
				Name     string   `xml:"name,attr"`
				Failures []string `xml:"failure"`
				Error    string   `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, junit.String())
	}
	if len(got.Suites) != 3 {
		t.Fatalf("%d suites\n%s", len(got.Suites), junit.String())
	}
	run := got.Suites[0]
	if run.Name != "testdata/prometheus/rules_run.yml" || run.Tests != 2 || run.Failures != 1 ||
		run.Cases[0].Name != "correct test" || len(run.Cases[0].Failures) != 0 ||
		run.Cases[1].Name != "wrong test" || len(run.Cases[1].Failures) != 1 {
		t.Errorf("rules_run.yml: %+v", run)
	}
	if s := got.Suites[1]; s.Failures != 1 || s.Cases[0].Name != "unnamed#0" {
		t.Errorf("bad-promql.yml: %+v", s)
	}
	if s := got.Suites[2]; s.Failures != 1 || len(s.Cases[0].Failures) != 1 || !strings.Contains(s.Cases[0].Failures[0], "field ownership not found") {
		t.Errorf("rules_run_extrafields.yml (unknown fields refused): %+v", s)
	}
}

// TestRunFilesGlob resolves rule_files relative to the test file and
// expands globs; a pattern that matches nothing is a warning, as in
// promtool.
func TestRunFilesGlob(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile("testdata/prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "a.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	test := `rule_files: ["rules/*.yml", "none/*.yml"]
tests:
  - input_series:
      - series: test
        values: 1
    promql_expr_test:
      - expr: job:test:count_over_time1m
        eval_time: 0
        exp_samples:
          - labels: job:test:count_over_time1m
            value: 1
`
	path := filepath.Join(dir, "glob.test.yml")
	if err := os.WriteFile(path, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code, err := RunFiles(Options{Stderr: &stderr}, nil, path)
	want := "  WARNING: no file match pattern " + filepath.Join(dir, "none/*.yml") + "\n"
	if err != nil || code != ExitSuccess || stderr.String() != want {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr.String())
	}
}
