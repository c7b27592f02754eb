package replay

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserttest"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const incidents = "testdata/incidents/incidents.test.yaml"

// TestReplay writes the incidents' series into Debian's Prometheus with
// timestamps in the past, and replays them through its API.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	prom := testprom.Start(t, testprom.Options{RemoteWriteReceiver: true})
	f := readTestFile(t, incidents)
	step := mustDuration(t, f.Interval)
	last := mustDuration(t, f.Tests[len(f.Tests)-1].At)
	base := time.Now().Add(-2 * 24 * time.Hour).Truncate(time.Hour)
	// With the same series under job="gap", with nothing from 1h to 1h30m:
	// the source was down then.
	gapFrom, gapTo := base.Add(time.Hour), base.Add(90*time.Minute)
	prom.Write(t, append(f.series(t, base, ""), without(f.series(t, base, "gap"), gapFrom, gapTo)...))
	cfg := rules(t, "incidents", prom.URL)
	replay := func(t *testing.T, cfg string, from, to time.Time) *Report {
		t.Helper()
		rep, err := Run(ctx, Options{ConfigPath: cfg, From: from, To: to, Step: step, Chunk: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	t.Run("the decisions of assertd test, count for count", func(t *testing.T) {
		res, err := asserttest.RunFile(ctx, incidents)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if len(r.Failures) > 0 {
				t.Fatalf("assertd test %s: %s", r.Name, strings.Join(r.Failures, "\n"))
			}
		}
		want := f.Tests[len(f.Tests)-1]
		rep := replay(t, cfg, base, base.Add(last))
		if rep.Evaluations != int(last/step)+1 {
			t.Errorf("evaluations: %d, want %d", rep.Evaluations, int(last/step)+1)
		}
		if !maps.Equal(rep.Total.ByChannel, want.Pages) {
			t.Errorf("pages per channel: replay %v, assertd test %v", rep.Total.ByChannel, want.Pages)
		}
		for _, r := range want.Runs {
			n, refused := 0, 0
			for _, a := range rep.Asserts {
				for _, ru := range a.Runs {
					if ru.Remediation == r.Remediation {
						n++
					}
				}
				refused += a.Refusals[r.Refused]
			}
			if n != r.Count {
				t.Errorf("runs of %s: replay %d, assertd test %d", r.Remediation, n, r.Count)
			}
			if refused == 0 {
				t.Errorf("no %s refusal in the replay: %+v", r.Refused, rep.Total.Refusals)
			}
		}
		if len(rep.Gaps) != 0 {
			t.Errorf("gaps in a window full of data: %+v", rep.Gaps)
		}
		// One range query per distinct query per hour of the window.
		if want := 2 * 6; rep.RangeQueries != want || rep.Queries != 2 {
			t.Errorf("%d range queries for %d queries, want %d for 2", rep.RangeQueries, rep.Queries, want)
		}
		golden(t, rep, base)
	})

	t.Run("a changed threshold: exactly the pages that differ", func(t *testing.T) {
		changed := rules(t, "incidents", prom.URL, "expect: ratio < 0.05", "expect: ratio < 0.15")
		old := replay(t, cfg, base, base.Add(last))
		rep := replay(t, changed, base, base.Add(last))
		d := Compare(old, rep, "main")
		if len(d.Asserts) != 1 || d.Asserts[0].Name != "api-errors" {
			t.Fatalf("asserts that differ: %+v", d.Asserts)
		}
		a := d.Asserts[0]
		if len(a.PagesAdded) != 0 || len(a.RunsAdded) != 0 || len(a.RunsRemoved) != 0 {
			t.Errorf("only pages removed, got %+v", a)
		}
		// The 10% spike at 4h is paged on the first level's two channels
		// by the old threshold only, once its for (2m) has passed.
		var want []Page
		for _, a := range old.Asserts {
			for _, p := range a.Pages {
				if a.Name == "api-errors" && !p.At.Before(base.Add(4*time.Hour)) {
					want = append(want, p)
				}
			}
		}
		if len(want) != 2 || len(a.PagesRemoved) != 2 {
			t.Fatalf("removed pages %+v, want the old version's pages after 4h: %+v", a.PagesRemoved, want)
		}
		var got []string
		for i, p := range a.PagesRemoved {
			got = append(got, p.Channel)
			if !reflect.DeepEqual(p, want[i]) || p.Labels["instance"] != "api-1" || p.Level != 0 || p.At.Before(base.Add(4*time.Hour+2*time.Minute)) || p.At.After(base.Add(4*time.Hour+3*time.Minute)) {
				t.Errorf("removed page %+v, want %+v: api-1 level 0 between 4h02m and 4h03m", p, want[i])
			}
		}
		if strings.Join(got, ",") != "chat,pager" && strings.Join(got, ",") != "pager,chat" {
			t.Errorf("removed pages on %v, want pager and chat", got)
		}
		if d.MorePages() || d.Pages != d.BasePages-2 {
			t.Errorf("pages %d → %d", d.BasePages, d.Pages)
		}
		var b bytes.Buffer
		if err := WriteDiff(&b, d, "markdown"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"pages 9 → 7 (-2)", "`api-errors`: 2 pages fewer", "- - page"} {
			if !strings.Contains(b.String(), s) {
				t.Errorf("the markdown diff lacks %q:\n%s", s, b.String())
			}
		}
	})

	t.Run("no data in the window: every assert no data, never held", func(t *testing.T) {
		from := base.Add(-24 * time.Hour)
		rep := replay(t, cfg, from, from.Add(time.Hour))
		for _, a := range rep.Asserts {
			if !a.NoData || a.verdict() == "held" || !strings.HasPrefix(a.verdict(), "no data") {
				t.Errorf("%s: no_data %t, verdict %q", a.Name, a.NoData, a.verdict())
			}
		}
		if len(rep.Gaps) != 1 || !rep.Gaps[0].From.Equal(from) || !rep.Gaps[0].To.Equal(from.Add(time.Hour)) {
			t.Errorf("gaps %+v, want the whole window", rep.Gaps)
		}
		var b bytes.Buffer
		if err := Write(&b, rep, "junit"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), `tests="2" failures="0" skipped="2"`) {
			t.Errorf("JUnit of a window without data:\n%s", b.String())
		}
	})

	t.Run("heartbeats from the pings in the store", func(t *testing.T) {
		hbCfg := rules(t, "incidents", prom.URL,
			"notifiers:\n", "heartbeats:\n  - {name: backup, period: 1h, grace: 10m, public: true}\n\nnotifiers:\n",
			"asserts:\n", "asserts:\n  - name: backup-alive\n    expect: heartbeat(\"backup\").age < duration(\"2h\")\n\n")
		// No store yet: no pings, uncertain all along, and said so.
		rep := replay(t, hbCfg, base, base.Add(6*time.Hour))
		if a := find(rep, "backup-alive"); a.Uncertain < 5*time.Hour || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "no store") {
			t.Errorf("without a store: backup-alive uncertain %s, notes %q", a.Uncertain, rep.Notes)
		}
		dataDir := filepath.Join(filepath.Dir(hbCfg), "data")
		if err := os.Mkdir(dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(ctx, filepath.Join(dataDir, sqlite.File), sqlite.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		// Hourly, from before the window, but none at 2h, 3h and 4h.
		for h := -1; h <= 6; h++ {
			if h >= 2 && h <= 4 {
				continue
			}
			at := base.Add(time.Duration(h) * time.Hour)
			rec := assertd.HeartbeatRecord{Name: "backup", LastSuccess: at, LastPing: at, Created: base.Add(-time.Hour)}
			if _, err := st.RecordPing(ctx, rec, assertd.Ping{Heartbeat: "backup", Kind: assertd.PingSuccess, At: at}); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		rep = replay(t, hbCfg, base, base.Add(6*time.Hour))
		a := find(rep, "backup-alive")
		if len(rep.Notes) != 0 || a.Incidents != 1 || len(a.Longest) != 1 || a.PagesSent == 0 {
			t.Fatalf("backup-alive with the pings: %+v, notes %q", a, rep.Notes)
		}
		in := a.Longest[0]
		if in.From.Before(base.Add(2*time.Hour)) || in.From.After(base.Add(3*time.Hour+time.Minute)) || !in.To.Equal(base.Add(5*time.Hour)) {
			t.Errorf("backup-alive's incident %s – %s, want from 2h–3h01m to the ping at 5h", in.From.Sub(base), in.To.Sub(base))
		}
	})

	t.Run("an outage mid-window is a gap, uncertain, not ok", func(t *testing.T) {
		gapCfg := rules(t, "incidents", prom.URL, `job="api"`, `job="gap"`)
		rep := replay(t, gapCfg, base, base.Add(3*time.Hour))
		if len(rep.Gaps) != 1 {
			t.Fatalf("gaps %+v, want one", rep.Gaps)
		}
		g := rep.Gaps[0]
		// The last samples before the outage are seen for the lookback (5m).
		if !g.From.Equal(gapFrom.Add(5*time.Minute)) || !g.To.Equal(gapTo.Add(-step)) || g.Source != "prom" {
			t.Errorf("gap %s – %s in %s, want %s – %s in prom", g.From, g.To, g.Source, gapFrom.Add(5*time.Minute), gapTo.Add(-step))
		}
		for _, a := range rep.Asserts {
			if a.Uncertain < 20*time.Minute {
				t.Errorf("%s uncertain for %s in a 25m outage", a.Name, a.Uncertain)
			}
			if len(a.Gaps) != 1 || !a.Gaps[0].From.Equal(g.From) || !a.Gaps[0].To.Equal(g.To) || !strings.Contains(a.verdict(), "no data for 25m") {
				t.Errorf("%s: stretches without data %+v, verdict %q; want the outage's", a.Name, a.Gaps, a.verdict())
			}
		}
		var b bytes.Buffer
		if err := Write(&b, rep, "text"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "GAP source prom") {
			t.Errorf("the text report does not show the gap:\n%s", b.String())
		}
	})
}

// golden compares the markdown and JUnit reports with testdata, their times
// moved to start at a fixed day.
func golden(t *testing.T, rep *Report, base time.Time) {
	t.Helper()
	shift(rep, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Sub(base))
	for _, g := range []struct{ format, file string }{{"markdown", "incidents.md"}, {"junit", "incidents.junit.xml"}, {"text", "incidents.txt"}, {"html", "incidents.html"}} {
		var b bytes.Buffer
		if err := Write(&b, rep, g.format); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from %s (go test -update):\n%s", g.format, path, b.String())
		}
	}
}

func find(r *Report, name string) AssertReport {
	for _, a := range r.Asserts {
		if a.Name == name {
			return a
		}
	}
	return AssertReport{}
}

// TestReplayEmbedded replays the incidents from the embedded TSDB in the
// configured data_dir, as a running assertd would have stored them: the
// same pages as assertd test.
func TestReplayEmbedded(t *testing.T) {
	ctx := context.Background()
	f := readTestFile(t, incidents)
	step := mustDuration(t, f.Interval)
	last := mustDuration(t, f.Tests[len(f.Tests)-1].At)
	base := time.Now().Add(-2 * 24 * time.Hour).Truncate(time.Hour)
	cfg := rules(t, "incidents", "http://127.0.0.1:9090", "default: prom", "default: embedded")
	emb, err := sources.OpenEmbedded(sources.EmbeddedOptions{Dir: sources.TSDBDir(filepath.Join(filepath.Dir(cfg), "data"))})
	if err != nil {
		t.Fatal(err)
	}
	series := f.series(t, base, "")
	for i := 0; ; i++ { // in time order across series, as the head takes them
		app, more := emb.Appendable().Appender(ctx), false
		for _, s := range series {
			if i >= len(s.Samples) {
				continue
			}
			more = true
			b := labels.NewScratchBuilder(len(s.Labels))
			for _, l := range s.Labels {
				b.Add(l.Name, l.Value)
			}
			b.Sort()
			if _, err := app.Append(0, b.Labels(), s.Samples[i].Timestamp, s.Samples[i].Value); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, Options{ConfigPath: cfg, From: base, To: base.Add(last), Step: step})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.Tests[len(f.Tests)-1].Pages; !maps.Equal(rep.Total.ByChannel, want) || rep.Total.Remediated != 2 || len(rep.Gaps) != 0 {
		t.Errorf("from the embedded TSDB: pages %v (assertd test: %v), %d runs, gaps %+v", rep.Total.ByChannel, want, rep.Total.Remediated, rep.Gaps)
	}
}
