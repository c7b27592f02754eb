package bench

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
)

// The realistic workload (Workload.Severities > 0) is shaped as real rule
// sets are: each metric has several asserts that differ only in their
// threshold (info, warning, critical, …), and every one is guarded by the
// target being up, as a Prometheus rule writes `… and on(instance)
// up == 1`. The asserts of one metric send the same query; assertd's
// expect carries the threshold, where each Prometheus rule carries it in
// its expression and evaluates its own.

// severityThresholds are the thresholds of a metric's asserts, lowest
// first; Severities takes the first ones.
var severityThresholds = []float64{50, 60, 70, 90}

// guard is the up guard every query of the realistic workload has.
const guard = ` and on(instance) up{job="bench"} == 1`

// metricOf is the metric and threshold of assert j of the realistic
// workload.
func (w Workload) metricOf(j int) (metric int, threshold float64) {
	return j / w.Severities, severityThresholds[j%w.Severities]
}

// realisticQuery is Query for the realistic workload.
func (w Workload) realisticQuery(j int) (query, alert string) {
	k, th := w.metricOf(j)
	return fmt.Sprintf("m%d%s", k, guard), fmt.Sprintf("m%d > %g%s", k, th, guard)
}

// realisticExpect is the expect of assert j.
func (w Workload) realisticExpect(j int) string {
	_, th := w.metricOf(j)
	return fmt.Sprintf("v <= %g", th)
}

// downInstance is the instance whose target is down (up == 0): its
// metrics never alert, whatever they say.
const downInstance = "host-09"

// realisticSeries lists the series of the realistic workload: Series
// instances of every metric, a violating one at a value between the
// thresholds (so that some severities fire and others not), and the up
// series of every instance.
func (w Workload) realisticSeries(bad func() bool, pick func() int) []fillSeries {
	var all []fillSeries
	metrics := (w.Asserts + w.Severities - 1) / w.Severities
	for k := range metrics {
		for i := range w.Series {
			x := 20.0
			if bad() {
				x = severityThresholds[pick()%w.Severities] + 5
			}
			all = append(all, fillSeries{ls: labels.FromStrings("__name__", fmt.Sprintf("m%d", k), "instance", fmt.Sprintf("host-%02d", i), "job", "bench"),
				value: func(int) float64 { return x }})
		}
	}
	for i := range w.Series {
		inst := fmt.Sprintf("host-%02d", i)
		up := 1.0
		if inst == downInstance {
			up = 0
		}
		all = append(all, fillSeries{ls: labels.FromStrings("__name__", "up", "instance", inst, "job", "bench"), value: func(int) float64 { return up }})
	}
	return all
}
