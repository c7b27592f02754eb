package engine

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
)

type metrics struct {
	evaluations *prometheus.CounterVec
	failures    *prometheus.CounterVec
	missed      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	storeUp     prometheus.Gauge
	held        prometheus.Gauge
	reloadOK    prometheus.Gauge
	reloads     *prometheus.CounterVec
	floods      *prometheus.CounterVec
	amSilences  *prometheus.CounterVec
	// byAssert holds each assert's evaluation counter and duration
	// histogram (assertMetrics), so that an evaluation does not look them
	// up by label value.
	byAssert sync.Map
}

type assertMetrics struct {
	evaluations prometheus.Counter
	duration    prometheus.Observer
}

// of returns the evaluation metrics of an assert.
func (m *metrics) of(assert string) assertMetrics {
	if am, ok := m.byAssert.Load(assert); ok {
		return am.(assertMetrics)
	}
	am := assertMetrics{m.evaluations.WithLabelValues(assert), m.duration.WithLabelValues(assert)}
	m.byAssert.Store(assert, am)
	return am
}

func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	m := &metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_evaluations_total", Help: "Evaluations of each assert."}, []string{"assert"}),
		failures:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_evaluation_failures_total", Help: "Evaluations whose source could not answer."}, []string{"assert"}),
		missed:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_evaluations_missed_total", Help: "Evaluations skipped because an earlier one ran late."}, []string{"assert"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "assertd_evaluation_duration_seconds", Help: "How long evaluations take.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"assert"}),
		storeUp:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_store_up", Help: "1 when the last store write worked."}),
		held:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_held_changes", Help: "State changes waiting for the store; their actions wait too."}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_config_last_reload_successful", Help: "1 when the last reload worked."}),
		reloads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_config_reloads_total", Help: "Reloads by result."}, []string{"result"}),
		floods: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_instance_floods_total",
			Help: "Times an assert's series passed its max_instances (it is uncertain until they fall back)."}, []string{"assert"}),
		amSilences: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_alertmanager_silences_total",
			Help: "Silences of alerts in Alertmanager while a run fixes them, by result (created, expired, failed)."}, []string{"result"}),
	}
	m.storeUp.Set(1)
	m.reloadOK.Set(1)
	if reg != nil {
		reg.MustRegister(m.evaluations, m.failures, m.missed, m.duration, m.storeUp, m.held, m.reloadOK, m.reloads, m.floods, m.amSilences, &stateCollector{e})
	}
	return m
}

// stateCollector reports instances by state at scrape time.
type stateCollector struct{ e *Engine }

var instancesDesc = prometheus.NewDesc("assertd_instances", "Assert instances by state.", []string{"state"}, nil)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- instancesDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[assertd.State]int{}
	for _, in := range c.e.Instances() {
		counts[in.State]++
	}
	for _, s := range []assertd.State{assertd.OK, assertd.Pending, assertd.Violated, assertd.Remediating, assertd.Escalated, assertd.Uncertain, assertd.Silenced} {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
