package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// testFile is what the replay tests read of an assertd test file: its
// input series and its expectations.
type testFile struct {
	Interval    string `yaml:"interval"`
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	Tests []struct {
		At    string         `yaml:"at"`
		Pages map[string]int `yaml:"pages"`
		Runs  []struct {
			Remediation string `yaml:"remediation"`
			Count       int    `yaml:"count"`
			Refused     string `yaml:"refused"`
		} `yaml:"runs"`
	} `yaml:"tests"`
}

func readTestFile(t *testing.T, path string) testFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f testFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// series expands the file's input series (promtool's notation) into
// remote-write series whose first sample is at base.
func (f testFile) series(t *testing.T, base time.Time, job string) []prompb.TimeSeries {
	t.Helper()
	interval := mustDuration(t, f.Interval)
	p := parser.NewParser(parser.Options{})
	var out []prompb.TimeSeries
	for _, s := range f.InputSeries {
		ls, vals, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			t.Fatalf("%s: %v", s.Series, err)
		}
		var ts prompb.TimeSeries
		ls.Range(func(l labels.Label) {
			v := l.Value
			if l.Name == "job" && job != "" {
				v = job
			}
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: v})
		})
		for i, v := range vals {
			if !v.Omitted {
				ts.Samples = append(ts.Samples, prompb.Sample{Value: v.Value, Timestamp: base.Add(time.Duration(i) * interval).UnixMilli()})
			}
		}
		out = append(out, ts)
	}
	return out
}

// without leaves out the samples in [from, to).
func without(series []prompb.TimeSeries, from, to time.Time) []prompb.TimeSeries {
	for i := range series {
		var kept []prompb.Sample
		for _, p := range series[i].Samples {
			if p.Timestamp < from.UnixMilli() || p.Timestamp >= to.UnixMilli() {
				kept = append(kept, p)
			}
		}
		series[i].Samples = kept
	}
	return series
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rules copies the rule set in testdata/name to a temporary directory with
// the source's URL set to url, and edits applied to its files' text
// (old, new pairs).
func rules(t *testing.T, name, url string, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join("testdata", name, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(raw), "http://127.0.0.1:9090", url)
		for i := 0; i+1 < len(edits); i += 2 {
			s = strings.ReplaceAll(s, edits[i], edits[i+1])
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "assertd.yaml")
}

// shift moves every time of a report by d, so that a golden file does not
// depend on when the test ran.
func shift(r *Report, d time.Duration) {
	r.From, r.To = r.From.Add(d), r.To.Add(d)
	for i := range r.Gaps {
		r.Gaps[i].From, r.Gaps[i].To = r.Gaps[i].From.Add(d), r.Gaps[i].To.Add(d)
	}
	for i := range r.Asserts {
		a := &r.Asserts[i]
		for j := range a.Pages {
			a.Pages[j].At = a.Pages[j].At.Add(d)
		}
		for j := range a.Runs {
			a.Runs[j].Started = a.Runs[j].Started.Add(d)
		}
		for j := range a.Longest {
			a.Longest[j].From, a.Longest[j].To = a.Longest[j].From.Add(d), a.Longest[j].To.Add(d)
		}
		for j := range a.Gaps {
			a.Gaps[j].From, a.Gaps[j].To = a.Gaps[j].From.Add(d), a.Gaps[j].To.Add(d)
		}
		for j := range a.all {
			a.all[j].From, a.all[j].To = a.all[j].From.Add(d), a.all[j].To.Add(d)
		}
	}
}
