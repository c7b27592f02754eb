package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd/internal/testprom"
)

// The rule file of the timeline test: what Debian's Prometheus (2.42)
// knows, every rule kind, for and keep_firing_for.
const timelineRules = `groups:
  - name: timeline
    interval: 1s
    rules:
      - record: tl:up:sum
        expr: sum(tl_up)
      - alert: TLDown
        expr: tl_up == 0
        for: 3s
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.instance }} down ({{ $value }})"
      - alert: TLDown
        expr: tl_up == 0
        keep_firing_for: 3s
        labels: {severity: info}
      - alert: TLFew
        expr: tl:up:sum < 2
        for: 2s
`

// timelineUp is tl_up of each instance, second by second from the start
// (NaN: a stale marker): a is down 3–11s but for one good second at 6s; b
// goes down at 5s and stale at 10s; c stays up.
func timelineUp(instance string, s int) float64 {
	switch instance {
	case "a":
		return b2f(s < 3 || s == 6 || s >= 12)
	case "b":
		if s >= 10 && s < 16 {
			return math.NaN()
		}
		return b2f(s < 5 || s >= 16)
	}
	return 1
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestPrometheusTimeline loads the same rule file into a real Prometheus and
// into assertd, feeds both the same series by remote-write, and compares,
// second by second, what each evaluation left: the recording rule's value,
// the ALERTS series (alertname, labels, alertstate) and ALERTS_FOR_STATE.
// The two evaluate at their own offsets within each second (the slot is a
// hash of the file and group; the series change on whole seconds), so the
// evaluation in the same second sees the same samples.
func TestPrometheusTimeline(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "timeline.rules.yml")
	if err := os.WriteFile(rulesPath, []byte(timelineRules), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := testprom.Start(t, testprom.Options{RuleFiles: []string{rulesPath}, RemoteWriteReceiver: true})
	cfg := filepath.Join(dir, "assertd.yaml")
	os.WriteFile(cfg, []byte(`files: [timeline.rules.yml]
data_dir: data
web:
  tokens: [{name: feeder, role: write, token_env: TL_TOKEN}]
`), 0o644)
	const token = "timeline-token-0123456789abcdef"
	ctx := context.Background()
	a, err := New(ctx, Options{ConfigPath: cfg, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), ReloadEvery: -1, NoScrape: true,
		Getenv: func(k string) string {
			if k == "TL_TOKEN" {
				return token
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })

	// The whole input, written before either evaluates it.
	start := time.Now().Truncate(time.Second).Add(3 * time.Second)
	const seconds = 24
	req := &prompb.WriteRequest{}
	for _, inst := range []string{"a", "b", "c"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "tl_up"}, {Name: "instance", Value: inst}, {Name: "job", Value: "tl"}}}
		for s := -5; s <= seconds+2; s++ {
			v := timelineUp(inst, max(s, 0))
			if math.IsNaN(v) {
				v = math.Float64frombits(value.StaleNaN)
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: start.Add(time.Duration(s) * time.Second).UnixMilli()})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	body := snappy.Encode(nil, raw)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct{ url, token string }{{prom.URL + "/api/v1/write", ""}, {"http://" + a.Addr() + "/api/v1/write", token}} {
		hr, _ := http.NewRequest("POST", target.url, bytes.NewReader(body))
		hr.Header.Set("Content-Encoding", "snappy")
		hr.Header.Set("Content-Type", "application/x-protobuf")
		hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		if target.token != "" {
			hr.Header.Set("Authorization", "Bearer "+target.token)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("remote-write to %s: %s", target.url, resp.Status)
		}
	}
	end := start.Add(seconds * time.Second)
	time.Sleep(time.Until(end.Add(1500 * time.Millisecond))) // both run on real time: Prometheus cannot be driven otherwise

	want := promTimeline(t, prom.URL, start, end)
	got := assertdTimeline(t, a, start, end)
	if len(want) < seconds-3 {
		t.Fatalf("Prometheus evaluated in only %d of %d seconds:\n%s", len(want), seconds, prom.Log())
	}
	compared, firing := 0, 0
	for s := 0; s < seconds; s++ {
		w, okW := want[s]
		g, okG := got[s]
		if !okW || !okG {
			continue // one of them had not started evaluating yet
		}
		compared++
		if strings.Contains(strings.Join(w, " "), "firing") {
			firing++
		}
		if !slices.Equal(w, g) {
			t.Errorf("second %d:\nPrometheus %v\nassertd    %v", s, w, g)
		}
	}
	if compared < seconds-4 || firing < 5 {
		t.Fatalf("compared %d seconds (%d with a firing alert): the timeline did not exercise the rules", compared, firing)
	}
}

// promTimeline reads from Prometheus' query API, second by second from
// start, what its evaluation in that second wrote.
func promTimeline(t *testing.T, base string, start, end time.Time) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	for _, q := range []string{"tl:up:sum", "ALERTS", "ALERTS_FOR_STATE"} {
		u := fmt.Sprintf("%s/api/v1/query?query=%s&time=%d", base, url.QueryEscape(fmt.Sprintf("%s[%ds]", q, int(end.Sub(start).Seconds())+2)), end.Unix()+1)
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		for _, r := range body.Data.Result {
			for _, v := range r.Values {
				ts := time.UnixMilli(int64(v[0].(float64) * 1000))
				out[second(start, ts)] = append(out[second(start, ts)], entry(labels.FromMap(r.Metric), v[1].(string), start))
			}
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// assertdTimeline reads the same from assertd's embedded TSDB.
func assertdTimeline(t *testing.T, a *App, start, end time.Time) map[int][]string {
	t.Helper()
	q, err := a.emb.Queryable().Querier(start.Add(-time.Second).UnixMilli(), end.Add(2*time.Second).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[int][]string{}
	for _, name := range []string{"tl:up:sum", "ALERTS", "ALERTS_FOR_STATE"} {
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
		for ss.Next() {
			s := ss.At()
			it := s.Iterator(nil)
			for it.Next() != 0 {
				ts, v := it.At()
				if value.IsStaleNaN(v) {
					continue
				}
				at := time.UnixMilli(ts)
				out[second(start, at)] = append(out[second(start, at)], entry(s.Labels(), fmt.Sprint(v), start))
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func second(start, ts time.Time) int { return int(math.Floor(ts.Sub(start).Seconds())) }

// entry is one sample as the comparison reads it: ALERTS_FOR_STATE's value
// (the alert's active-since, in Unix seconds) relative to the start.
func entry(ls labels.Labels, v string, start time.Time) string {
	if ls.Get("__name__") == "ALERTS_FOR_STATE" {
		var f float64
		fmt.Sscan(v, &f)
		v = fmt.Sprintf("active since %ds", int(f)-int(start.Unix()))
	}
	return ls.String() + "=" + v
}
