package replay

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/sources"
)

// errorRatio is api-1's error ratio over the rule tests' three hours: 20%
// from 30m to 40m, 20% from 90m to 94m, 10% from 150m to 160m, else 1%;
// api-2's stays at 1%.
func errorRatio(since time.Duration) float64 {
	switch {
	case since >= 30*time.Minute && since < 40*time.Minute, since >= 90*time.Minute && since < 94*time.Minute:
		return 0.2
	case since >= 150*time.Minute && since < 160*time.Minute:
		return 0.1
	}
	return 0.01
}

func ratioSeries(base time.Time, span, step time.Duration) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for _, inst := range []string{"api-1", "api-2"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "api_error_ratio"}, {Name: "instance", Value: inst}, {Name: "job", Value: "api"}}}
		for d := time.Duration(0); d < span; d += step {
			v := 0.01
			if inst == "api-1" {
				v = errorRatio(d)
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: base.Add(d).UnixMilli()})
		}
		out = append(out, ts)
	}
	return out
}

// TestReplayPromRules replays a Prometheus rule file (an alerting rule
// with for: 2m, evaluated every minute by Prometheus' rules package on the
// replay's clock, its query answered from the history of a real Prometheus)
// and the binding that remediates its alert. The decisions, derived by hand
// from the series (assertd test does not evaluate rule files): each of the
// three spikes fires ApiErrors 2m after the first evaluation that sees it
// and runs restart; its verify waits 3m for the alert to resolve, which the
// 4m spike does (verified, no page) and the 10m ones do not (failed, paged
// on the first level's pager and chat; each incident is over before the
// second level's 20m). With the threshold raised to 15%, the 10% spike
// does not fire: exactly its two pages and its run are removed.
func TestReplayPromRules(t *testing.T) {
	ctx := context.Background()
	prom := testprom.Start(t, testprom.Options{RemoteWriteReceiver: true})
	const step, span = 30 * time.Second, 3 * time.Hour
	base := time.Now().Add(-2 * 24 * time.Hour).Truncate(time.Hour)
	prom.Write(t, ratioSeries(base, span, step))
	var written atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		written.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	cfg := rules(t, "promrules", prom.URL, "http://127.0.0.1:9091", sink.URL)
	from, to := base, base.Add(span-step)
	replay := func(t *testing.T, cfg string) *Report {
		t.Helper()
		rep, err := Run(ctx, Options{ConfigPath: cfg, From: from, To: to, Step: step, Chunk: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	old := replay(t, cfg)

	t.Run("the rule's alerts and the binding's decisions", func(t *testing.T) {
		a := find(old, "ApiErrors")
		if a.Name == "" || a.NotReplayed || len(old.Notes) != 0 {
			t.Fatalf("the binding's assert was not replayed: %+v, notes %q", a, old.Notes)
		}
		// One evaluation of the group per minute of the window, at its
		// slots after the window's start.
		if n := old.RuleEvaluations; n < int(span/time.Minute)-1 || n > int(span/time.Minute) {
			t.Errorf("%d rule group evaluations in %s at 1m", n, span)
		}
		if a.Incidents != 3 || a.Remediated != 3 || a.Verified != 1 || a.Failed != 2 {
			t.Errorf("incidents %d, runs %d (verified %d, failed %d); want 3, 3 (1, 2)", a.Incidents, a.Remediated, a.Verified, a.Failed)
		}
		if want := map[string]int{"pager": 2, "chat": 2}; !maps.Equal(old.Total.ByChannel, want) {
			t.Errorf("pages per channel %v, want %v", old.Total.ByChannel, want)
		}
		for _, p := range a.Pages {
			since := p.At.Sub(base)
			in30 := since >= 32*time.Minute && since <= 37*time.Minute
			in150 := since >= 152*time.Minute && since <= 157*time.Minute
			if (!in30 && !in150) || p.Labels["instance"] != "api-1" || p.Labels["severity"] != "critical" || p.Level != 0 {
				t.Errorf("page %+v at %s: want api-1's alert, level 0, 2m of for and 3m of verify after the 30m or the 150m spike", p, since)
			}
		}
		for i, r := range a.Runs {
			since := r.Started.Sub(base)
			spike := []time.Duration{30 * time.Minute, 90 * time.Minute, 150 * time.Minute}[min(i, 2)]
			if since < spike+2*time.Minute || since > spike+3*time.Minute+step || r.Labels["instance"] != "api-1" {
				t.Errorf("run %d of %s at %s, want api-1's, 2m to 3m after the spike at %s", i, r.Remediation, since, spike)
			}
		}
		if n := written.Load(); n != 0 {
			t.Errorf("the replay remote-wrote %d times to prometheus_rules.remote_write", n)
		}
	})

	t.Run("a changed rule threshold: exactly the pages that differ", func(t *testing.T) {
		rep := replay(t, rules(t, "promrules", prom.URL, "http://127.0.0.1:9091", sink.URL, "> 0.05", "> 0.15"))
		d := Compare(old, rep, "main")
		if len(d.Asserts) != 1 || d.Asserts[0].Name != "ApiErrors" {
			t.Fatalf("asserts that differ: %+v", d.Asserts)
		}
		a := d.Asserts[0]
		var want []Page
		for _, p := range find(old, "ApiErrors").Pages {
			if !p.At.Before(base.Add(150 * time.Minute)) {
				want = append(want, p)
			}
		}
		if len(want) != 2 || len(a.PagesRemoved) != 2 || len(a.PagesAdded) != 0 || len(a.RunsRemoved) != 1 || len(a.RunsAdded) != 0 {
			t.Fatalf("pages removed %+v added %+v, runs removed %+v added %+v; want the old version's two pages after 150m and its run", a.PagesRemoved, a.PagesAdded, a.RunsRemoved, a.RunsAdded)
		}
		var chans []string
		for i, p := range a.PagesRemoved {
			chans = append(chans, p.Channel)
			if !pageEqual(p, want[i]) {
				t.Errorf("removed page %+v, want %+v", p, want[i])
			}
		}
		if got := strings.Join(chans, ","); got != "chat,pager" && got != "pager,chat" {
			t.Errorf("removed pages on %s, want pager and chat", got)
		}
		if r := a.RunsRemoved[0]; r.Started.Before(base.Add(150*time.Minute)) || r.Labels["instance"] != "api-1" {
			t.Errorf("removed run %+v, want api-1's after 150m", r)
		}
		if d.MorePages() || d.Pages != d.BasePages-2 {
			t.Errorf("pages %d → %d", d.BasePages, d.Pages)
		}
	})

	t.Run("a rule reading the series a recording rule records", func(t *testing.T) {
		// The source never held instance:api_error_ratio:max: the alert
		// reads what the replay recorded, the same decisions.
		rep := replay(t, rules(t, "promrules", prom.URL, "http://127.0.0.1:9091", sink.URL, `expr: api_error_ratio{job="api"} > 0.05`, `expr: instance:api_error_ratio:max > 0.05`))
		if a := find(rep, "ApiErrors"); a.Incidents != 3 || len(rep.Notes) != 0 {
			t.Fatalf("on the recorded series: %d incidents, notes %q; want 3, none", a.Incidents, rep.Notes)
		}
		if d := Compare(old, rep, "main"); len(d.Asserts) != 0 {
			t.Errorf("reading the recorded series changed the decisions: %+v", d.Asserts)
		}
		// A rule reading recorded series and the source's runs on the
		// history, which holds only the source's: the report says so.
		rep = replay(t, rules(t, "promrules", prom.URL, "http://127.0.0.1:9091", sink.URL, `expr: api_error_ratio{job="api"} > 0.05`, `expr: instance:api_error_ratio:max > 0.05 and api_error_ratio > 0`))
		if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], `rules.yaml: group "api", rule "ApiErrors" reads recorded series and others`) {
			t.Errorf("notes %q, want one on ApiErrors", rep.Notes)
		}
	})
}

// TestReplayPromRulesNoData: an alerting rule's query returns nothing
// both when its condition is false and when its series are missing; the
// assert bound to it is "no data" where the series its rules read are
// missing or the source could not be read, never held.
func TestReplayPromRulesNoData(t *testing.T) {
	ctx := context.Background()
	prom := testprom.Start(t, testprom.Options{RemoteWriteReceiver: true})
	const step, span = 30 * time.Second, 3 * time.Hour
	base := time.Now().Add(-2 * 24 * time.Hour).Truncate(time.Hour)
	// The same series under job="gap", with nothing from 60m to 90m: the
	// source lost them then.
	gapFrom, gapTo := base.Add(time.Hour), base.Add(90*time.Minute)
	gapped := ratioSeries(base, span, step)
	for i := range gapped {
		gapped[i].Labels[2].Value = "gap"
	}
	prom.Write(t, append(ratioSeries(base, span, step), without(gapped, gapFrom, gapTo)...))
	cfg := rules(t, "promrules", prom.URL)
	replay := func(t *testing.T, o Options) *Report {
		t.Helper()
		o.Step, o.Chunk = step, time.Hour
		if o.ConfigPath == "" {
			o.ConfigPath = cfg
		}
		rep, err := Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	outputs := func(t *testing.T, rep *Report) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, f := range []string{"text", "markdown", "json", "junit"} {
			var b bytes.Buffer
			if err := Write(&b, rep, f); err != nil {
				t.Fatal(err)
			}
			out[f] = b.String()
		}
		return out
	}

	t.Run("a window without data: no data, never held", func(t *testing.T) {
		from := base.Add(-24 * time.Hour)
		rep := replay(t, Options{From: from, To: from.Add(time.Hour)})
		a := find(rep, "ApiErrors")
		if a.Name == "" || !a.NoData || a.NoDataTime != time.Hour+step || !strings.HasPrefix(a.verdict(), "no data") || rep.Total.NoDataCount != 1 {
			t.Fatalf("ApiErrors: no_data %t for %s, verdict %q, %d asserts without data; want no data for the whole window", a.NoData, a.NoDataTime, a.verdict(), rep.Total.NoDataCount)
		}
		if len(rep.Gaps) != 1 || !rep.Gaps[0].From.Equal(from) || !rep.Gaps[0].To.Equal(from.Add(time.Hour)) {
			t.Errorf("gaps %+v, want the whole window", rep.Gaps)
		}
		out := outputs(t, rep)
		for f, want := range map[string]string{
			"text":     "ApiErrors: no data (uncertain by policy",
			"markdown": "| `ApiErrors` | no data (uncertain by policy",
			"json":     `"no_data": true`,
			"junit":    `<skipped message="no data (uncertain by policy`,
		} {
			if !strings.Contains(out[f], want) || strings.Contains(out[f], "held") {
				t.Errorf("%s lacks %q or says held:\n%s", f, want, out[f])
			}
		}
	})

	t.Run("series missing mid-window: the stretch is no data, not held", func(t *testing.T) {
		rep := replay(t, Options{ConfigPath: rules(t, "promrules", prom.URL, `job="api"`, `job="gap"`),
			From: base, To: base.Add(span - step)})
		a := find(rep, "ApiErrors")
		// The last samples before the gap are seen for the lookback (5m).
		lostFrom, lostTo := gapFrom.Add(5*time.Minute), gapTo.Add(-step)
		if a.NoData || len(a.Gaps) != 1 || !a.Gaps[0].From.Equal(lostFrom) || !a.Gaps[0].To.Equal(lostTo) || a.NoDataTime != lostTo.Sub(lostFrom)+step {
			t.Fatalf("ApiErrors: no_data %t, %s without data in %+v; want %s – %s", a.NoData, a.NoDataTime, a.Gaps, lostFrom.Sub(base), lostTo.Sub(base))
		}
		if !strings.Contains(a.Gaps[0].Reason, "no data: the series its rules read") {
			t.Errorf("reason %q", a.Gaps[0].Reason)
		}
		// The spikes at 30m and 150m page as on the whole series.
		if a.PagesSent != 4 || !strings.Contains(a.verdict(), "no data for 25m") {
			t.Errorf("%d pages, verdict %q; want 4 and the stretch without data", a.PagesSent, a.verdict())
		}
		if len(rep.Gaps) != 1 || !rep.Gaps[0].From.Equal(lostFrom) || !rep.Gaps[0].To.Equal(lostTo) {
			t.Errorf("the source's gaps %+v, want %s – %s", rep.Gaps, lostFrom.Sub(base), lostTo.Sub(base))
		}
		out := outputs(t, rep)
		for f, want := range map[string]string{
			"text":     "  no data " + ts(lostFrom) + " – " + ts(lostTo) + ": no data: the series its rules read",
			"markdown": "- `ApiErrors` " + ts(lostFrom) + " – " + ts(lostTo),
			"json":     `"reason": "no data: the series its rules read returned no sample"`,
			"junit":    "no data " + ts(lostFrom),
		} {
			if !strings.Contains(out[f], want) {
				t.Errorf("%s lacks %q:\n%s", f, want, out[f])
			}
		}
	})

	t.Run("the source down for a chunk: that chunk is a gap, the assert uncertain", func(t *testing.T) {
		remote, err := sources.NewRemote(config.Prometheus{Name: "prom", URL: prom.URL}, "", func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		down := &downRange{src: remote, from: gapFrom, to: gapFrom.Add(time.Hour)}
		rep := replay(t, Options{From: base, To: base.Add(span - step), Sources: map[string]RangeSource{"prom": down}})
		a := find(rep, "ApiErrors")
		if a.NoData || len(a.Gaps) != 1 || !a.Gaps[0].From.Equal(down.from) || !a.Gaps[0].To.Equal(down.to.Add(-step)) ||
			!strings.Contains(a.Gaps[0].Reason, "connection refused") || a.NoDataTime != time.Hour {
			t.Fatalf("ApiErrors: no_data %t, %s without data in %+v; want the hour the source was down", a.NoData, a.NoDataTime, a.Gaps)
		}
		if a.Uncertain < 50*time.Minute {
			t.Errorf("ApiErrors uncertain for %s in an hour its rule could not be evaluated", a.Uncertain)
		}
		if len(rep.Gaps) != 1 || !strings.Contains(rep.Gaps[0].Reason, "connection refused") {
			t.Errorf("the source's gaps %+v, want the hour it was down", rep.Gaps)
		}
		if !strings.Contains(outputs(t, rep)["text"], "GAP source prom "+ts(down.from)) {
			t.Errorf("the text report does not show the gap")
		}
	})
}

// downRange fails the range queries that start in [from, to).
type downRange struct {
	src      RangeSource
	from, to time.Time
}

func (d *downRange) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]sources.RangeSeries, error) {
	if !start.Before(d.from) && start.Before(d.to) {
		return nil, errors.New("dial tcp: connection refused")
	}
	return d.src.QueryRange(ctx, q, start, end, step)
}

func pageEqual(a, b Page) bool {
	return a.Channel == b.Channel && a.Level == b.Level && a.At.Equal(b.At) && maps.Equal(a.Labels, b.Labels) && a.State == b.State
}
