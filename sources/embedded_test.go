package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testprom"
)

// target is an HTTP service exposing a latency histogram and a connection
// gauge, like the services assertd watches.
func target(t *testing.T) *httptest.Server {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	}, []string{"code"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "api_active_connections"})
	reg.MustRegister(h, g)
	g.Set(42)
	for i := range 100 {
		h.WithLabelValues("200").Observe(float64(i%10) * 0.004)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	// Keep observing so that rate() has something to see.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				h.WithLabelValues("200").Observe(0.03)
			}
		}
	}()
	return srv
}

func compile(t *testing.T, src string) *asserts.Compiled {
	t.Helper()
	set, errs := config.ParseRules("t.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set.Asserts[0]
}

func TestEmbeddedScrapesTargets(t *testing.T) {
	t.Parallel()
	srv := target(t)
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir(), Config: config.Embedded{
		ScrapeInterval: assertd.Duration(500 * time.Millisecond),
		Targets:        []config.ScrapeTarget{{URL: srv.URL + "/metrics", Labels: map[string]string{"job": "api", "zone": "z1"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a := compile(t, `asserts:
  - name: latency
    query:
      p99_ms: 1000 * histogram_quantile(0.99, sum by (le, job, zone) (rate(http_request_duration_seconds_bucket{job="api"}[10s])))
      conns: sum by (job, zone) (api_active_connections)
    expect: p99_ms < 50 && conns > 10
`)
	// The scrape manager runs on real time and real sockets: a bounded poll.
	testprom.Eventually(t, 20*time.Second, func() error {
		ev := a.Evaluate(context.Background(), e, nil, time.Now())
		if ev.SourceErr != nil {
			return ev.SourceErr
		}
		if len(ev.Verdicts) != 1 || ev.Verdicts[0].State != assertd.OK {
			return fmt.Errorf("verdicts %+v", ev.Verdicts)
		}
		v := ev.Verdicts[0]
		if v.Labels.String() != `{job="api", zone="z1"}` || v.Values["conns"] != 42 || v.Values["p99_ms"] <= 25 || v.Values["p99_ms"] > 50 {
			return fmt.Errorf("verdict %+v", v)
		}
		return nil
	})
	if h := e.TargetHealth(); h[srv.URL+"/metrics"] != "" {
		t.Errorf("target health %v", h)
	}
}

// A scrape target that goes away leaves no fresh data: no_data (uncertain by
// default), never a stale "ok".
func TestEmbeddedStaleTargetIsNoData(t *testing.T) {
	t.Parallel()
	srv := target(t)
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir(), Config: config.Embedded{
		ScrapeInterval: assertd.Duration(300 * time.Millisecond),
		Targets:        []config.ScrapeTarget{{URL: srv.URL + "/metrics"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a := compile(t, "asserts: [{name: conns, query: {c: api_active_connections}, expect: c > 10}]")
	// The scrape manager runs on real time and real sockets: a bounded poll.
	testprom.Eventually(t, 10*time.Second, func() error {
		if ev := a.Evaluate(context.Background(), e, nil, time.Now()); len(ev.Verdicts) != 1 || ev.Verdicts[0].State != assertd.OK {
			return fmt.Errorf("%+v %v", ev.Verdicts, ev.SourceErr)
		}
		return nil
	})
	srv.CloseClientConnections()
	srv.Close()
	// Staleness follows real scrapes failing: a bounded poll.
	testprom.Eventually(t, 10*time.Second, func() error {
		ev := a.Evaluate(context.Background(), e, nil, time.Now())
		if len(ev.Verdicts) != 1 || ev.Verdicts[0].State != assertd.Uncertain || !strings.Contains(ev.Verdicts[0].Reason, "no data") {
			return fmt.Errorf("%+v", ev.Verdicts)
		}
		return nil
	})
	if h := e.TargetHealth(); h[srv.URL+"/metrics"] == "" {
		t.Errorf("target health after stop: %v", h)
	}
}

func writeRequest(t testing.TB, series ...prompb.TimeSeries) []byte {
	raw, err := proto.Marshal(&prompb.WriteRequest{Timeseries: series})
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func series(ts time.Time, v float64, kv ...string) prompb.TimeSeries {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: v}}}
}

func TestRemoteWrite(t *testing.T) {
	t.Parallel()
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	now := time.Now().Truncate(time.Millisecond)
	h := asWriter(WriteHandler(e.Appendable(), func() time.Time { return now }), Writer{Name: "test"})
	post := func(body []byte, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", "snappy")
		r.Header.Set("Content-Type", "application/x-protobuf")
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	count := func(q string) int {
		v, err := e.Query(context.Background(), q, now)
		if err != nil {
			t.Fatal(err)
		}
		return len(v.Samples)
	}

	if w := post(writeRequest(t, series(now, 7, "__name__", "queue_depth", "job", "worker"))); w.Code != http.StatusNoContent {
		t.Fatalf("good write: %d %s", w.Code, w.Body)
	}
	if v, _ := e.Query(context.Background(), `queue_depth{job="worker"}`, now); len(v.Samples) != 1 || v.Samples[0].Value != 7 {
		t.Fatalf("round trip: %+v", v)
	}

	for _, tc := range []struct {
		name   string
		body   []byte
		header []string
		code   int
		msg    string
	}{
		{"one bad series rejects the whole request",
			writeRequest(t, series(now, 1, "__name__", "good_metric"), series(now, 1, "__name__", "bad", "0bad", "x")),
			nil, 400, `label name \"0bad\" is not valid`},
		{"no metric name", writeRequest(t, series(now, 1, "good_metric_2", "x")), nil, 400, "no metric name"},
		{"metric name with a space", writeRequest(t, series(now, 1, "__name__", "good_metric_3"), series(now, 1, "__name__", "bad metric{}")),
			nil, 400, `metric name \"bad metric{}\" is not valid`},
		{"empty metric name", writeRequest(t, series(now, 1, "__name__", "good_metric_4"), series(now, 1, "__name__", "9lives")), nil, 400, "is not valid"},
		{"label name with a dash", writeRequest(t, series(now, 1, "__name__", "good_metric_5", "bad-label", "x")), nil, 400, `label name \"bad-label\" is not valid`},
		{"far future", writeRequest(t, series(now.Add(time.Hour), 1, "__name__", "good_metric")), nil, 400, "ahead"},
		{"not snappy", []byte("hello"), nil, 400, "not snappy"},
		{"not protobuf", snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), nil, 400, "not a remote-write request"},
		{"oversized", bytes.Repeat([]byte{0}, MaxWriteBodyBytes+1), nil, 413, "over"},
		{"snappy bomb", append([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0), nil, 400, ""},
		{"remote write 2.0", writeRequest(t), []string{"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 415, "2.0 is not supported"},
	} {
		w := post(tc.body, tc.header...)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.msg) || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	if n := count(`{__name__=~"good_metric.*"}`); n != 0 {
		t.Errorf("a rejected request wrote %d series", n)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/write", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestReadOnlyWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := OpenReadOnly(dir, EngineOptions{}); !errors.Is(err, assertd.ErrSourceUnavailable) {
		t.Fatalf("empty dir: %v", err)
	}
	e, err := OpenEmbedded(EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	now := time.Now()
	app := e.Appendable().Appender(context.Background())
	for i, ts := range []time.Time{now.Add(-time.Minute), now} {
		if _, err := app.Append(0, labelsOf("__name__", "m", "i", "a"), ts.UnixMilli(), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	v, err := ro.Query(context.Background(), "m", now)
	if err != nil || len(v.Samples) != 1 || v.Samples[0].Value != 1 {
		t.Fatalf("read-only query: %+v %v", v, err)
	}
	if _, err := ro.Query(context.Background(), "sum(", now); !errors.Is(err, assertd.ErrBadQuery) {
		t.Fatalf("bad query: %v", err)
	}
	v, err = ro.Query(context.Background(), "scalar(m)", now)
	if err != nil || !v.Scalar || v.Samples[0].Value != 1 {
		t.Fatalf("scalar: %+v %v", v, err)
	}
}

// A writer's selectors and its budget of new series: a request with one
// series outside them, or with more new series than allowed, writes nothing.
func TestRemoteWriteWriterBounds(t *testing.T) {
	t.Parallel()
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	now := time.Now().Truncate(time.Millisecond)
	sel, err := config.ParseWriteMatchers(`{job="api"}`)
	if err != nil {
		t.Fatal(err)
	}
	budget, asked := 2, []int{}
	wr := Writer{Name: "prom", Matchers: [][]*labels.Matcher{sel}, AllowNew: func(n int) bool {
		asked = append(asked, n)
		if n > budget {
			return false
		}
		budget -= n
		return true
	}}
	base := WriteHandler(e.Appendable(), func() time.Time { return now })
	post := func(h http.Handler, body []byte) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body)))
		return w
	}
	count := func(q string) int {
		v, err := e.Query(context.Background(), q, now)
		if err != nil {
			t.Fatal(err)
		}
		return len(v.Samples)
	}
	h := asWriter(base, wr)

	if w := post(base, writeRequest(t, series(now, 1, "__name__", "m", "job", "api"))); w.Code != http.StatusUnauthorized {
		t.Errorf("without a writer: %d %s", w.Code, w.Body)
	}
	w := post(h, writeRequest(t, series(now, 1, "__name__", "m", "job", "api", "i", "1"), series(now, 1, "__name__", "m", "job", "db")))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `prom may not write {__name__=\"m\", job=\"db\"}`) {
		t.Errorf("outside the selectors: %d %s", w.Code, w.Body)
	}
	w = post(h, writeRequest(t, series(now, 1, "__name__", "m", "job", "api", "i", "1"), series(now, 1, "__name__", "m", "job", "api", "i", "2"),
		series(now, 1, "__name__", "m", "job", "api", "i", "3")))
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "3 new series") {
		t.Errorf("3 new series with a budget of 2: %d %s", w.Code, w.Body)
	}
	if n := count(`m`); n != 0 {
		t.Fatalf("refused requests wrote %d series", n)
	}
	if w := post(h, writeRequest(t, series(now, 1, "__name__", "m", "job", "api", "i", "1"), series(now, 1, "__name__", "m", "job", "api", "i", "2"))); w.Code != http.StatusNoContent {
		t.Fatalf("2 new series: %d %s", w.Code, w.Body)
	}
	// The same series again are not new: the budget, now 0, is not asked.
	if w := post(h, writeRequest(t, series(now.Add(time.Second), 2, "__name__", "m", "job", "api", "i", "1"), series(now.Add(time.Second), 2, "__name__", "m", "job", "api", "i", "2"))); w.Code != http.StatusNoContent {
		t.Fatalf("known series: %d %s", w.Code, w.Body)
	}
	if n := count(`m{job="api"}`); n != 2 {
		t.Errorf("%d series, want 2", n)
	}
	if fmt.Sprint(asked) != "[3 2]" {
		t.Errorf("the budget was asked for %v new series, want [3 2]", asked)
	}
}
