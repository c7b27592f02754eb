package replay

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd/internal/testprom"
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

func pageEqual(a, b Page) bool {
	return a.Channel == b.Channel && a.Level == b.Level && a.At.Equal(b.At) && maps.Equal(a.Labels, b.Labels) && a.State == b.State
}
