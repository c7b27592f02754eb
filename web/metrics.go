package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// webMetrics are the metrics the web layer owns: its requests (by route
// class and code, and their duration by route pattern) and the loaded
// configuration's hash. None reads the store: a scrape costs the same
// however long assertd has run.
type webMetrics struct {
	s        *server
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var configDesc = prometheus.NewDesc("assertd_config_info", "The loaded configuration: hash of its files' contents.", []string{"hash"}, nil)

func newWebMetrics(s *server) *webMetrics {
	return &webMetrics{s: s,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_http_requests_total",
			Help: "HTTP requests by route class and status code."}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "assertd_http_request_duration_seconds",
			Help: "How long HTTP requests take, by route pattern, method and status code.", Buckets: prometheus.DefBuckets},
			[]string{"handler", "method", "code"}),
	}
}

func (m *webMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
	m.s.newSeries.created.Describe(ch)
	m.s.newSeries.refused.Describe(ch)
	ch <- configDesc
}

func (m *webMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
	m.s.newSeries.created.Collect(ch)
	m.s.newSeries.refused.Collect(ch)
	ch <- prometheus.MustNewConstMetric(configDesc, prometheus.GaugeValue, 1, hasher.of(m.s.d.Engine.Config()))
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
	case p == writePath:
		return "remote_write"
	case p == alertmanagerPath:
		return "alertmanager"
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

// routePattern is the ServeMux pattern that served r ("/" for none): the
// handler label of the duration histogram, bounded by the route table.
func routePattern(r *http.Request) string {
	if r.Pattern == "" {
		return "/"
	}
	return r.Pattern
}

// count counts and times the requests h (the ServeMux) serves.
func (m *webMetrics) count(h http.Handler) http.Handler {
	timed := promhttp.InstrumentHandlerDuration(m.duration, h, promhttp.WithLabelFromRequest("handler", routePattern))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		timed.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(handlerClass(r.URL.Path), strconv.Itoa(sw.code)).Inc()
	})
}
