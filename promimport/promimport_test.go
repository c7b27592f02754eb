package promimport

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/assertd/assertd/asserttest"
	"github.com/assertd/assertd/asserttest/promunit"
)

// convertAndRun imports the rule files of a promtool test file, converts
// its test groups and runs them with assertd test: whether all passed, or
// why the file cannot be converted.
func convertAndRun(t *testing.T, path string) (bool, bool, string, error) {
	t.Helper()
	tf, err := ReadTestFile(path)
	if err != nil {
		return false, false, "", err
	}
	var rules []string
	for _, r := range tf.RuleFiles() {
		rules = append(rules, filepath.Join(filepath.Dir(path), r))
	}
	if len(rules) == 0 {
		return false, false, "", fmt.Errorf("no rule_files: nothing to import")
	}
	res, err := Import(rules, Options{})
	if err != nil {
		return false, false, "", err
	}
	for _, d := range tf.Reduce(res) {
		t.Logf("dropped: %s", d)
	}
	for _, s := range res.Skipped {
		t.Logf("not imported: %s", s)
	}
	if tf.Groups() == 0 {
		return false, false, "", fmt.Errorf("no checks left to convert")
	}
	// promtool (the module's runner) on the same checks of the original.
	reduced := filepath.Join(t.TempDir(), "reduced.test.yml")
	if err := tf.Write(reduced, filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	r, err := promunit.NewRunner(promunit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	orig := r.RunFile(reduced)
	var tests []string
	for i := range tf.Groups() {
		res, err := Import(rules, tf.GroupOptions(i))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var names []string
		for j, r := range rules {
			name := fmt.Sprintf("imported-%d.asserts.yaml", j)
			names = append(names, name)
			if err := os.WriteFile(filepath.Join(dir, name), res.Files[r], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "assertd.yaml"), Config(names), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := tf.ConvertGroup(i, res, "assertd.yaml")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "group.test.yaml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, f)
	}
	pass := true
	var out bytes.Buffer
	for _, f := range tests {
		rs, err := asserttest.RunFile(context.Background(), f)
		if err != nil {
			b, _ := os.ReadFile(f)
			t.Fatalf("%s: the converted test does not load: %v\n%s", path, err, b)
		}
		if !asserttest.Report(&out, rs) {
			pass = false
		}
	}
	return orig, pass, out.String(), nil
}

// knownDifferent are the files whose converted checks give another verdict,
// and why: native asserts keep their own semantics there.
var knownDifferent = map[string]string{
	"corpus/postgres.test.yml": "an instance whose series vanish (recovered, or a stale marker) resolves after two evaluations in an assert (missing: resolve), at once in Prometheus",
}

// TestImportedVerdicts: the promtool tests of the corpus, run by promtool
// (the module's semantics) on the original rules and converted to assertd
// tests on the imported asserts, give the same verdicts.
func TestImportedVerdicts(t *testing.T) {
	var files []string
	for _, dir := range []string{"prometheus", "corpus"} {
		m, _ := filepath.Glob(filepath.Join("../asserttest/promunit/testdata", dir, "*.yml"))
		for _, f := range m {
			if promunit.IsTestPath(f) {
				files = append(files, f)
			}
		}
	}
	converted := 0
	for _, f := range files {
		name, _ := filepath.Rel("../asserttest/promunit/testdata", f)
		t.Run(name, func(t *testing.T) {
			orig, native, out, err := convertAndRun(t, f)
			if err != nil {
				t.Logf("not converted: %v", err)
				return
			}
			converted++
			if why, ok := knownDifferent[name]; ok {
				if orig == native {
					t.Errorf("expected promtool and the imported asserts to disagree (%s); both pass %v", why, orig)
				}
				return
			}
			if orig != native {
				t.Errorf("promtool pass %v, imported pass %v\n%s", orig, native, out)
			}
		})
	}
	t.Logf("%d of %d test files converted", converted, len(files))
	if converted < 10 {
		t.Errorf("only %d of %d test files converted", converted, len(files))
	}
}
