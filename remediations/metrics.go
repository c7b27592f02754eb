package remediations

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
)

// Refusal kinds: the values of the reason label of assertd_refusals_total.
const (
	refusedDetached    = "detached"    // the runner is not attached to an engine
	refusedLimits      = "limits"      // the safety limits could not be read
	refusedKillSwitch  = "kill_switch" // the kill switch is on
	refusedSilenced    = "silenced"    // the instance is silenced
	refusedUncertain   = "uncertain"   // the instance is uncertain
	refusedBreaker     = "breaker"     // the blast-radius breaker is open
	refusedGuard       = "guard"       // the guard does not hold (or cannot be evaluated)
	refusedTarget      = "target"      // the target key cannot be built
	refusedMaxRuns     = "max_runs"    // max_runs is reached (or cannot be checked)
	refusedCooldown    = "cooldown"    // within the cooldown (or it cannot be checked)
	refusedLock        = "lock"        // the target's lock is held (or cannot be read)
	refusedConcurrency = "concurrency" // max_concurrent_runs are in progress
	refusedBudget      = "budget"      // the run budget is spent (or cannot be checked)
	refusedApproval    = "approval"    // the approval was denied, expired or could not be asked
	refusedAllow       = "allow"       // a label does not match its allow pattern
	refusedValue       = "value"       // a label value is refused where a template inserts it (an option, a control character, a dot segment…)
)

// metrics are the runner's counters of what happened.
type metrics struct {
	runs     *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_remediation_runs_total",
			Help: "Remediation runs that ended, by remediation and final status (succeeded, failed, refused, interrupted)."}, []string{"remediation", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_refusals_total",
			Help: "Remediations refused (by a gate when deciding, or when a run starts), by kind of refusal."}, []string{"reason"}),
	}
	for _, k := range []string{refusedKillSwitch, refusedBreaker, refusedGuard, refusedMaxRuns, refusedCooldown, refusedLock, refusedConcurrency, refusedBudget, refusedApproval, refusedAllow, refusedValue} {
		m.refusals.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.refusals)
	}
	return m
}

// ended counts a run that reached its final status.
func (m *metrics) ended(remediation string, status assertd.RunStatus) {
	m.runs.WithLabelValues(remediation, string(status)).Inc()
}
