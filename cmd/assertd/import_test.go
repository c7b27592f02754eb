package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportPrometheusRules writes assert files and, from the promtool
// tests, assertd tests that pass on them.
func TestImportPrometheusRules(t *testing.T) {
	code, out, errs := runCLI("import", "prometheus-rules", promtoolData+"prometheus/rules.yml")
	if code != 0 || !strings.Contains(out, "  - name: InstanceDown\n") || !strings.Contains(errs, "not imported: 3 recording rules") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	dir := t.TempDir()
	code, out, errs = runCLI("import", "prometheus-rules", "-o", dir, "--tests", promtoolData+"prometheus/unittest.yml", promtoolData+"prometheus/rules.yml")
	if code != 0 || !strings.Contains(out, filepath.Join(dir, "unittest.1.test.yaml")) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "assertd.yaml")); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI("check", filepath.Join(dir, "rules.asserts.yaml")); code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runCLI("test", dir); code != 0 || !strings.HasPrefix(strings.Split(out, "\n")[len(strings.Split(out, "\n"))-2], "PASS: ") {
		t.Fatalf("test: exit %d\n%s\n%s", code, out, errs)
	}
}
