package notifiers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

type metrics struct {
	sent     *prometheus.CounterVec
	attempts *prometheus.CounterVec
	failures *prometheus.CounterVec
	dead     *prometheus.CounterVec
	up       *prometheus.GaugeVec
	working  prometheus.Gauge
	depth    *prometheus.GaugeVec
	oldest   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, channels []string) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_notifier_sent_total", Help: "Outbox messages delivered, by channel."}, []string{"channel"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_notifications_total",
			Help: "Send attempts by channel, notice kind and result (delivered, failed: tried again later, dead: given up)."}, []string{"channel", "kind", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_notifier_failures_total", Help: "Failed sends by channel and kind (recoverable or refused)."}, []string{"channel", "kind"}),
		dead:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_notifier_dead_letters_total", Help: "Messages given up (refused, or failing past the maximum age), by channel."}, []string{"channel"}),
		up:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "assertd_notifier_channel_up", Help: "1 when the channel's last send worked."}, []string{"channel"}),
		working:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_notifier_channels_working", Help: "Channels not failing for longer than the failing threshold; 0 means no page reaches anyone."}),
		depth:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "assertd_outbox_messages", Help: "Outbox messages by status (pending, sending, dead)."}, []string{"status"}),
		oldest:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "assertd_outbox_oldest_undelivered_age_seconds", Help: "Age of the oldest message not yet delivered (0 when none)."}),
	}
	for _, c := range channels {
		m.up.WithLabelValues(c).Set(1)
		m.sent.WithLabelValues(c)
		m.dead.WithLabelValues(c)
	}
	m.working.Set(float64(len(channels)))
	if reg != nil {
		reg.MustRegister(m.sent, m.attempts, m.failures, m.dead, m.up, m.working, m.depth, m.oldest)
	}
	return m
}

// stats refreshes the outbox gauges, at most every 10s of the clock given.
func (d *Deliverer) stats(ctx context.Context, now time.Time) error {
	d.mu.Lock()
	if !d.statsAt.IsZero() && now.Sub(d.statsAt) < 10*time.Second && now.After(d.statsAt) {
		d.mu.Unlock()
		return nil
	}
	d.statsAt = now
	d.mu.Unlock()
	var oldest time.Time
	for _, s := range []assertd.MessageStatus{assertd.MsgPending, assertd.MsgSending, assertd.MsgDead} {
		ms, err := d.st.Messages(ctx, store.MessageFilter{Status: s, Limit: 100000})
		if err != nil {
			return err
		}
		d.m.depth.WithLabelValues(string(s)).Set(float64(len(ms)))
		if s == assertd.MsgDead {
			continue
		}
		for _, m := range ms {
			if oldest.IsZero() || m.Created.Before(oldest) {
				oldest = m.Created
			}
		}
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, now.Sub(oldest).Seconds())
	}
	d.m.oldest.Set(age)
	return nil
}
