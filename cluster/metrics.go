package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	takeovers, fenced, leaseLost prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Member) *metrics {
	x := &metrics{
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "assertd_cluster_takeovers_total",
			Help: "Shares this replica took over from another replica."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "assertd_cluster_fenced_writes_total",
			Help: "Writes the store refused because their share had moved to another replica."}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "assertd_cluster_lease_lost_total",
			Help: "Times this replica found its lease expired and registered again."}),
	}
	if reg == nil {
		return x
	}
	owned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assertd_cluster_shares_owned",
		Help: "Shares (asserts) this replica evaluates."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.owned))
	})
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assertd_cluster_replicas_live",
		Help: "Replicas whose lease was valid on this replica's last round."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, r := range m.replicas {
			if r.LeaseUntil.After(m.leaseUntil.Add(-m.o.Lease)) {
				n++
			}
		}
		return float64(n)
	})
	lease := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assertd_cluster_lease_held",
		Help: "1 while this replica holds a valid lease."}, func() float64 {
		if m.Ready() == nil {
			return 1
		}
		return 0
	})
	reg.MustRegister(x.takeovers, x.fenced, x.leaseLost, owned, live, lease)
	return x
}
