package demo

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/fakeclock"
)

// stories runs the demo's quickstart on a fake clock: assertd built by
// app.New as assertd demo builds it, the demo service serving its admin API
// on 127.0.0.1 (the remediation's restart is a real HTTP call), its traffic
// simulated each second, its metrics scraped into the embedded TSDB at the
// config's scrape_interval and its heartbeat pinged every 10s, as assertd
// demo does in real time.
type stories struct {
	t        *testing.T
	ctx      context.Context
	clock    *fakeclock.Clock
	svc      *Service
	a        *app.App
	reg      *prometheus.Registry
	pages    syncBuffer // the console channel
	told     syncBuffer // the narration
	narrator *narrator
	target   map[string]string
	scrape   time.Duration
	start    time.Time
	lastPing time.Time
}

const (
	storyRPS       = 50               // as assertd demo's traffic
	storyPingEvery = 10 * time.Second // as assertd demo's job
)

func newStories(t *testing.T) *stories {
	t.Helper()
	ctx := t.Context()
	s := &stories{t: t, ctx: ctx, start: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC), reg: prometheus.NewRegistry()}
	s.clock = fakeclock.New(s.start)
	s.svc = New(s.clock.Now)
	srv := httptest.NewServer(s.svc.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := writeQuickstart(dir, srv.Listener.Addr().String(), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	s.narrator = newNarrator(&s.told)
	a, err := app.New(ctx, app.Options{
		ConfigPath: filepath.Join(dir, "assertd.yaml"), DataDir: filepath.Join(dir, "data"),
		Logger: slog.New(slog.DiscardHandler), Clock: s.clock, Stdout: &s.pages, Registerer: s.reg,
		Jitter: func() float64 { return 0.5 }, NoScrape: true, NoListener: true, ReloadEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.a = a
	t.Cleanup(func() {
		a.Runner().Wait()
		_ = a.Stop(context.WithoutCancel(ctx))
	})
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml")) // the targets, which NoScrape leaves out
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	emb := set.Config.Sources.Embedded
	s.target, s.scrape = emb.Targets[0].Labels, emb.ScrapeInterval.Std()
	s.ping()
	return s
}

func (s *stories) now() time.Time { return s.clock.Now() }

// second moves the demo on by one second: traffic, the scrape and the ping
// when due, then the clock (the runs waiting on it go on), an evaluation,
// the deliveries and the narration, each once nothing else is running.
func (s *stories) second() {
	s.t.Helper()
	now := s.now().Add(time.Second)
	for range storyRPS {
		s.svc.Serve()
	}
	if now.Sub(s.start)%s.scrape == 0 {
		s.scrapeAt(now)
	}
	s.clock.Set(now)
	if now.Sub(s.lastPing) >= storyPingEvery {
		s.ping()
	}
	s.settle()
	s.a.Engine().Tick(s.ctx, now)
	s.settle()
	if err := s.a.Deliverer().DeliverDue(s.ctx, now); err != nil {
		s.t.Fatal(err)
	}
	s.narrator.observe(now, s.a.Engine().Instances())
}

func (s *stories) settle() {
	s.t.Helper()
	if err := s.clock.Settle(s.a.Runner().InFlight, 10*time.Second); err != nil {
		s.t.Fatal(err)
	}
}

// ping is the demo job's ping, which the heartbeat fault stops.
func (s *stories) ping() {
	s.t.Helper()
	s.lastPing = s.now()
	if s.svc.Fault(FaultHeartbeat) {
		return
	}
	if err := s.a.Heartbeats().Ping(s.ctx, assertd.Ping{Heartbeat: "demo-job", Kind: assertd.PingSuccess, At: s.now()}); err != nil {
		s.t.Fatal(err)
	}
}

// scrapeAt appends the demo service's metrics as a scrape of its target
// would: counters and gauges as they are, histograms as _bucket, _sum and
// _count series, with the target's labels.
func (s *stories) scrapeAt(at time.Time) {
	s.t.Helper()
	mfs, err := s.svc.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	ap := s.a.Embedded().Appendable().Appender(s.ctx)
	ts := at.UnixMilli()
	add := func(name string, m *dto.Metric, v float64, extra ...string) {
		b := labels.NewBuilder(labels.FromMap(s.target))
		b.Set(model.MetricNameLabel, name)
		for _, lp := range m.GetLabel() {
			b.Set(lp.GetName(), lp.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			b.Set(extra[i], extra[i+1])
		}
		if _, err := ap.Append(0, b.Labels(), ts, v); err != nil {
			s.t.Fatal(err)
		}
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(mf.GetName(), m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(mf.GetName(), m, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(mf.GetName()+"_bucket", m, float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64))
				}
				add(mf.GetName()+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				add(mf.GetName()+"_sum", m, h.GetSampleSum())
				add(mf.GetName()+"_count", m, float64(h.GetSampleCount()))
			default:
				s.t.Fatalf("%s: metric type %s not scraped", mf.GetName(), mf.GetType())
			}
		}
	}
	if err := ap.Commit(); err != nil {
		s.t.Fatal(err)
	}
}

// until moves on a second at a time until the narration has line, at most
// limit of the demo's time, and returns how long it took.
func (s *stories) until(line string, limit time.Duration) time.Duration {
	s.t.Helper()
	from := s.now()
	for !strings.Contains(s.told.String(), line) {
		if s.now().Sub(from) >= limit {
			s.t.Fatalf("after %s, the narration has no %q:\n%s\npages:\n%s", limit, line, s.told.String(), s.pages.String())
		}
		s.second()
	}
	return s.now().Sub(from)
}

// counter reads a counter of assertd's metrics; 0 when it has no such
// series yet.
func (s *stories) counter(name string, lv ...string) float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(lv); i += 2 {
				if got[lv[i]] != lv[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func (s *stories) refusals() float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "assertd_refusals_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// pagesOf counts the console's pages (FIRING) of an assert.
func (s *stories) pagesOf(assert string) int {
	return strings.Count(s.pages.String(), "FIRING: "+assert+" ")
}

// The quickstart's three stories, typed one right after the other, each as
// the README tells it.
func TestStoriesBackToBack(t *testing.T) {
	s := newStories(t)

	// The start: every instance goes from uncertain to ok; nothing is a bare
	// "uncertain".
	s.until("demo-job-alive       uncertain → ok", time.Minute)
	s.until("demo-latency-p99     uncertain → ok", time.Minute)
	first, _, _ := strings.Cut(s.told.String(), "\n")
	if !strings.Contains(first, "uncertain → ok") {
		t.Fatalf("the narration starts with %q", first)
	}

	// Story 1: at 20s the service turns slow; the restart fixes it; an
	// informational message, nobody paged.
	for s.now().Sub(s.start) < 20*time.Second {
		s.second()
	}
	if err := s.svc.SetFault(FaultLatency, true); err != nil {
		t.Fatal(err)
	}
	took := s.until("remediating → ok: fixed by remediation restart-demo", 3*time.Minute)
	t.Logf("story 1 took %s of demo time", took)
	if got := s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "succeeded"); got != 1 {
		t.Errorf("story 1: %v succeeded runs of restart-demo, want 1", got)
	}
	if s.pagesOf("demo-latency-p99") != 0 || !strings.Contains(s.pages.String(), "INFO: demo-latency-p99") {
		t.Errorf("story 1: want an informational message and no page:\n%s", s.pages.String())
	}

	// Story 2, typed the moment story 1 ended: a slowness a restart cannot
	// fix. The restart runs (no cooldown refuses it), its verify fails, and
	// the page carries the run's step log.
	if err := s.svc.SetFault(FaultStuckLatency, true); err != nil {
		t.Fatal(err)
	}
	took = s.until("demo-latency-p99     remediating → escalated", 3*time.Minute)
	for s.pagesOf("demo-latency-p99") == 0 && s.now().Sub(s.start) < 10*time.Minute {
		s.second()
	}
	t.Logf("story 2 took %s of demo time", took)
	if got := s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "failed"); got != 1 {
		t.Errorf("story 2: %v failed runs of restart-demo, want 1", got)
	}
	if got := s.refusals(); got != 0 {
		t.Errorf("story 2: %v refusals (a cooldown?), want none", got)
	}
	if st := s.svc.State(); st.Restarts != 2 {
		t.Errorf("story 2: the service was restarted %d times, want 2 (one a story)", st.Restarts)
	}
	page := s.pages.String()
	page = page[strings.Index(page, "FIRING: demo-latency-p99"):]
	for _, want := range []string{"run run-", "restart", "verify"} {
		if !strings.Contains(page, want) {
			t.Errorf("story 2: the page has no %q (the step log):\n%s", want, page)
		}
	}

	// Story 3, typed the moment story 2 paged: the job stops pinging. Its
	// assert turns uncertain (not ok, not remediated), then pages after
	// uncertain_for.
	if err := s.svc.SetFault(FaultHeartbeat, true); err != nil {
		t.Fatal(err)
	}
	runs := s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "succeeded") +
		s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "failed")
	toUncertain := s.until("demo-job-alive       ok → uncertain", 2*time.Minute)
	toPage := s.until("demo-job-alive       uncertain → escalated", 2*time.Minute)
	for s.pagesOf("demo-job-alive") == 0 && s.now().Sub(s.start) < 15*time.Minute {
		s.second()
	}
	t.Logf("story 3: uncertain after %s, escalated %s later", toUncertain, toPage)
	if s.pagesOf("demo-job-alive") != 1 {
		t.Errorf("story 3: %d pages of demo-job-alive, want 1:\n%s", s.pagesOf("demo-job-alive"), s.pages.String())
	}
	if toPage < 30*time.Second {
		t.Errorf("story 3: paged %s after turning uncertain, before uncertain_for (30s)", toPage)
	}
	if got := s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "succeeded") +
		s.counter("assertd_remediation_runs_total", "remediation", "restart-demo", "outcome", "failed"); got != runs {
		t.Errorf("story 3 ran a remediation (%v runs, was %v)", got, runs)
	}
	t.Logf("narration:\n%s\npages:\n%s", s.told.String(), s.pages.String())
}
