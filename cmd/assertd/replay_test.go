package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd/internal/testprom"
)

// TestReplayCLI replays the last 24h of a Debian Prometheus holding two
// error spikes (20% and 10%) and compares two versions of the threshold
// committed to git: one that pages on both and one that pages on the
// larger only.
func TestReplayCLI(t *testing.T) {
	prom := testprom.Start(t, testprom.Options{RemoteWriteReceiver: true})
	const step = 30 * time.Second
	base := time.Now().Add(-24*time.Hour - 10*time.Minute).Truncate(step)
	series := func(name, inst string, v func(time.Duration) float64) prompb.TimeSeries {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "instance", Value: inst}, {Name: "job", Value: "api"}}}
		for at := time.Duration(0); base.Add(at).Before(time.Now()); at += step {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: v(at), Timestamp: base.Add(at).UnixMilli()})
		}
		return ts
	}
	spike := func(at, from time.Duration) bool { return at >= from && at < from+10*time.Minute }
	prom.Write(t, []prompb.TimeSeries{
		series("api_active_connections", "api-1", func(time.Duration) float64 { return 40 }),
		series("api_error_ratio", "api-1", func(at time.Duration) float64 {
			switch {
			case spike(at, 6*time.Hour):
				return 0.2
			case spike(at, 12*time.Hour):
				return 0.1
			}
			return 0.01
		}),
	})

	repo := t.TempDir()
	for _, f := range []string{"assertd.yaml", "asserts.yaml", "remediations.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "replay", "testdata", "incidents", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(repo, f), strings.ReplaceAll(string(raw), "http://127.0.0.1:9090", prom.URL))
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	threshold := func(v string) {
		t.Helper()
		p := filepath.Join(repo, "asserts.yaml")
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		for i, l := range lines {
			if strings.Contains(l, "expect: ratio <") {
				lines[i] = "    expect: ratio < " + v
			}
		}
		writeFile(t, p, strings.Join(lines, "\n"))
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-qm", "5%")
	threshold("0.15")
	git("commit", "-qam", "15%")
	cfg := filepath.Join(repo, "assertd.yaml")

	code, out, errOut := runCLI("replay", "-c", cfg, "--from", "24h", "--format", "markdown")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errOut)
	}
	for _, s := range []string{"### assertd replay", "| `api-errors` | would have paged 2 times |", "| `api-connections` | held |"} {
		if !strings.Contains(out, s) {
			t.Errorf("the report lacks %q:\n%s", s, out)
		}
	}

	// 15% against the 5% of the commit before: the 10% spike no longer pages.
	code, out, errOut = runCLI("replay", "-c", cfg, "--from", "24h", "--compare", "HEAD~1", "--fail-on", "more-pages")
	if code != 0 {
		t.Fatalf("replay --compare HEAD~1: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []string{"compared with HEAD~1", "pages 4 → 2 (-2)", "api-errors: 2 pages fewer", "- page "} {
		if !strings.Contains(out, s) {
			t.Errorf("the diff lacks %q:\n%s", s, out)
		}
	}

	// Back to 5% in the working tree, against the 15% committed: two more
	// pages, and --fail-on more-pages fails.
	threshold("0.05")
	code, out, errOut = runCLI("replay", "-c", cfg, "--from", "24h", "--compare", "HEAD", "--fail-on", "more-pages", "--format", "markdown")
	if code != 1 || !strings.Contains(errOut, "would have paged 4 times, HEAD 2") {
		t.Fatalf("replay --compare HEAD --fail-on more-pages: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "#### `api-errors`: 2 more pages") || strings.Count(out, "- + page ") != 2 {
		t.Errorf("the markdown diff:\n%s", out)
	}
	// The temporary worktree is gone.
	cmd := exec.Command("git", "worktree", "list")
	cmd.Dir = repo
	if wl, err := cmd.Output(); err != nil || strings.Count(string(wl), "\n") != 1 {
		t.Errorf("git worktree list after the compare: %s %v", wl, err)
	}

	if code, _, errOut := runCLI("replay", "-c", cfg, "--from", "yesterday"); code != 2 || !strings.Contains(errOut, "write a duration ago") {
		t.Errorf("--from yesterday: exit %d, %s", code, errOut)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
