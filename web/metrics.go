package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// webMetrics are the metrics the web layer owns: its requests, and what it
// reads from the store at scrape time (runs by status, refusals by reason,
// the outbox's depth and age, failed deliveries by channel, the config hash).
type webMetrics struct {
	s        *server
	requests *prometheus.CounterVec
}

var (
	runsDesc     = prometheus.NewDesc("assertd_runs", "Remediation runs kept in the store (up to the retention), by status.", []string{"status"}, nil)
	refusalsDesc = prometheus.NewDesc("assertd_refusals", "Decisions kept in the store that refused a remediation (hold), by reason.", []string{"reason"}, nil)
	failedDesc   = prometheus.NewDesc("assertd_outbox_failed_messages", "Outbox messages whose last delivery attempt failed (pending again, or dead), by channel.", []string{"channel", "status"}, nil)
	configDesc   = prometheus.NewDesc("assertd_config_info", "The loaded configuration: hash of its files' contents.", []string{"hash"}, nil)
	scrapeErr    = prometheus.NewDesc("assertd_web_store_scrape_errors", "1 when the store could not be read for these metrics.", nil, nil)
)

func newWebMetrics(s *server) *webMetrics {
	return &webMetrics{s: s, requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_http_requests_total",
		Help: "HTTP requests by route class and status code."}, []string{"handler", "code"})}
}

func (m *webMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	for _, d := range []*prometheus.Desc{runsDesc, refusalsDesc, failedDesc, configDesc, scrapeErr} {
		ch <- d
	}
}

// refusalReason puts a refusal's reason in words into a few classes.
func refusalReason(reason string) string {
	r := strings.ToLower(reason)
	for _, c := range []struct{ word, class string }{
		{"kill switch", "kill_switch"}, {"budget", "budget"}, {"concurrent", "concurrency"}, {"guard", "guard"},
		{"blast", "blast_radius"}, {"cooldown", "cooldown"}, {"max_runs", "max_runs"}, {"lock", "lock"},
		{"approval", "approval"}, {"uncertain", "uncertain"}, {"shadow", "shadow"},
	} {
		if strings.Contains(r, c.word) {
			return c.class
		}
	}
	return "other"
}

func (m *webMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	s := m.s
	ch <- prometheus.MustNewConstMetric(configDesc, prometheus.GaugeValue, 1, hasher.of(s.d.Engine.Config()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if runs, err := s.d.Store.Runs(ctx, store.RunFilter{Limit: 100000}); err == nil {
		by := map[assertd.RunStatus]int{}
		for _, r := range runs {
			by[r.Status]++
		}
		for _, st := range []assertd.RunStatus{assertd.RunRunning, assertd.RunWaiting, assertd.RunSucceeded, assertd.RunFailed, assertd.RunInterrupted, assertd.RunRefused} {
			ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(by[st]), string(st))
		}
	} else {
		failed = 1
	}
	if ds, err := s.d.Store.Decisions(ctx, store.DecisionFilter{Action: assertd.ActHold, Limit: 100000}); err == nil {
		by := map[string]int{}
		for _, d := range ds {
			by[refusalReason(d.Reason)]++
		}
		for reason, n := range by {
			ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.GaugeValue, float64(n), reason)
		}
	} else {
		failed = 1
	}
	if msgs, err := s.d.Store.Messages(ctx, store.MessageFilter{Limit: 100000}); err == nil {
		// Outbox depth and age are the deliverer's metrics (notifiers).
		type cs struct{ channel, status string }
		fails := map[cs]int{}
		for _, msg := range msgs {
			if msg.Status == assertd.MsgDead || (msg.Status != assertd.MsgDelivered && msg.LastError != "") {
				fails[cs{msg.Channel, string(msg.Status)}]++
			}
		}
		for k, n := range fails {
			ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, float64(n), k.channel, k.status)
		}
	} else {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErr, prometheus.GaugeValue, failed)
}

// statusWriter remembers the status code.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handlerClass names a path's kind for the request counter, with few values.
func handlerClass(p string) string {
	switch {
	case strings.HasPrefix(p, "/ping/"):
		return "ping"
	case p == "/api/v1/write":
		return "remote_write"
	case p == "/api/v1/events":
		return "events"
	case strings.HasPrefix(p, "/api/"):
		return "api"
	case p == "/metrics", p == "/healthz", p == "/readyz":
		return strings.TrimPrefix(p, "/")
	case strings.HasPrefix(p, "/static/"):
		return "static"
	}
	return "ui"
}

func (m *webMetrics) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(handlerClass(r.URL.Path), strconv.Itoa(sw.code)).Inc()
	})
}
