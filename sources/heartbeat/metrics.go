package heartbeat

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
)

// pingKinds are the values of the kind label of assertd_heartbeat_pings_total.
var pingKinds = [...]assertd.PingKind{assertd.PingSuccess, assertd.PingStart, assertd.PingFail, assertd.PingExit, assertd.PingLog}

const numKinds = len(pingKinds)

func kindIndex(k assertd.PingKind) int {
	for i, x := range pingKinds {
		if x == k {
			return i
		}
	}
	return 0 // unreachable: kinds are validated before they are counted
}

// rejectReason is the reason label of assertd_heartbeat_pings_rejected_total.
type rejectReason int

const (
	reasonBadRequest rejectReason = iota
	reasonUnknown
	reasonUnauthorized
	reasonMethod
	reasonStore
	reasonTooLarge
	reasonLimit
	numReasons
)

var reasonNames = [numReasons]string{"bad_request", "unknown_heartbeat", "unauthorized", "method", "store", "too_large", "limit"}

var (
	descUp = prometheus.NewDesc("assertd_heartbeat_up",
		"1 when the heartbeat is up, late or started; 0 otherwise.", []string{"name"}, nil)
	descState = prometheus.NewDesc("assertd_heartbeat_state",
		"1 for the heartbeat's current state, 0 for the others.", []string{"name", "state"}, nil)
	descCertain = prometheus.NewDesc("assertd_heartbeat_certain",
		"1 when the heartbeat's state is evidence of health (see heartbeat.Certain); 0 when its health is unknown.", []string{"name"}, nil)
	descLastSuccess = prometheus.NewDesc("assertd_heartbeat_last_success_timestamp_seconds",
		"Unix time of the last successful ping (absent when there was none).", []string{"name"}, nil)
	descLastPing = prometheus.NewDesc("assertd_heartbeat_last_ping_timestamp_seconds",
		"Unix time of the last ping of any kind (absent when there was none).", []string{"name"}, nil)
	descDeadline = prometheus.NewDesc("assertd_heartbeat_next_deadline_timestamp_seconds",
		"Unix time at which the heartbeat's state changes unless pinged (absent when none is pending).", []string{"name"}, nil)
	descPings = prometheus.NewDesc("assertd_heartbeat_pings_total",
		"Pings recorded since assertd started, by kind.", []string{"name", "kind"}, nil)
	descRejected = prometheus.NewDesc("assertd_heartbeat_pings_rejected_total",
		"Ping requests refused since assertd started, by reason.", []string{"reason"}, nil)
)

// Register registers the Tracker's metrics with reg. Gauges are computed at
// scrape time from now(). Label values are bounded: names are the declared
// heartbeats, states, kinds and reasons fixed sets.
func (t *Tracker) Register(reg prometheus.Registerer, now func() time.Time) error {
	if err := reg.Register(&collector{t: t, now: now}); err != nil {
		return fmt.Errorf("register heartbeat metrics: %w", err)
	}
	return nil
}

type collector struct {
	t   *Tracker
	now func() time.Time
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descCertain, descLastSuccess, descLastPing, descDeadline, descPings, descRejected} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(x bool) float64 {
		if x {
			return 1
		}
		return 0
	}
	d := c.t.decl.Load()
	for _, name := range d.names {
		e := d.entries[name]
		st, next, hs := d.evaluate(e, now)
		e.mu.RLock()
		rec := e.rec
		e.mu.RUnlock()
		gauge(descUp, b(hs.Up), name)
		for _, s := range States {
			gauge(descState, b(s == st), name, string(s))
		}
		gauge(descCertain, b(Certain(hs)), name)
		if !rec.LastSuccess.IsZero() {
			gauge(descLastSuccess, unix(rec.LastSuccess), name)
		}
		if !rec.LastPing.IsZero() {
			gauge(descLastPing, unix(rec.LastPing), name)
		}
		if !next.IsZero() {
			gauge(descDeadline, unix(next), name)
		}
		for i, k := range pingKinds {
			ch <- prometheus.MustNewConstMetric(descPings, prometheus.CounterValue, float64(e.pings[i].Load()), name, string(k))
		}
	}
	for i, r := range reasonNames {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(c.t.rejected[i].Load()), r)
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
