package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// Where Debian's promtool (2.42) and the Prometheus module assertd is built
// with disagree, assertd follows the module: Prometheus 3 accepts UTF-8
// metric names (a recording rule named 'not a metric name' is valid), a
// group's query_offset and a group's labels.
var newerThanPromtool = map[string]bool{"bad-recordname.yml": true, "query-offset.yml": true, "group-labels.yml": true}

var positioned = regexp.MustCompile(`(?m)^\S+\.yml:\d+:\d+: `)

// TestCheckRulesLikePromtool: `assertd check FILE` on unmodified Prometheus
// rule files gives promtool check rules' verdict, and reports each problem
// at file:line:col.
func TestCheckRulesLikePromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run make deps (apt-get install prometheus)")
	}
	files, _ := filepath.Glob("testdata/promrules/*.yml")
	if len(files) < 8 {
		t.Fatalf("corpus: %v", files)
	}
	for _, f := range files {
		pOut, pErr := exec.Command(promtool, "check", "rules", f).CombinedOutput()
		aOut, aErr := exec.Command(binary, "check", f).CombinedOutput()
		promOK, ours := pErr == nil, aErr == nil
		if newerThanPromtool[filepath.Base(f)] {
			promOK = !promOK
		}
		if promOK != ours {
			t.Errorf("%s: promtool ok=%v, assertd ok=%v\npromtool: %s\nassertd: %s", f, pErr == nil, ours, pOut, aOut)
		}
		if !ours && !positioned.Match(aOut) {
			t.Errorf("%s: assertd's errors are not at file:line:col:\n%s", f, aOut)
		}
	}
}
