package heartbeat

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/assertd/assertd"
)

func TestMetrics(t *testing.T) {
	tr, h, _, clk := handlerFixture(t)
	reg := prometheus.NewPedanticRegistry()
	if err := tr.Register(reg, clk.Now); err != nil {
		t.Fatal(err)
	}
	if err := tr.Register(reg, clk.Now); err == nil {
		t.Fatal("registered twice")
	}
	// job: success at t0, start at t0+10m; locked: never pinged.
	if err := tr.Ping(context.Background(), assertd.Ping{Heartbeat: "job", Kind: assertd.PingSuccess, At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ping(context.Background(), assertd.Ping{Heartbeat: "job", Kind: assertd.PingStart, At: after(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	do(h, "GET", "/ping/nope", "")
	do(h, "GET", "/ping/locked", "")
	do(h, "PUT", "/ping/job", "")
	clk.Set(after(40 * time.Minute)) // the run has been going for 30m: running-too-long

	const want = `
assertd_heartbeat_certain{name="job"} 1
assertd_heartbeat_certain{name="locked"} 0
assertd_heartbeat_last_ping_timestamp_seconds{name="job"} 1768047000
assertd_heartbeat_last_success_timestamp_seconds{name="job"} 1768046400
assertd_heartbeat_pings_rejected_total{reason="bad_request"} 0
assertd_heartbeat_pings_rejected_total{reason="limit"} 0
assertd_heartbeat_pings_rejected_total{reason="method"} 1
assertd_heartbeat_pings_rejected_total{reason="store"} 0
assertd_heartbeat_pings_rejected_total{reason="too_large"} 0
assertd_heartbeat_pings_rejected_total{reason="unauthorized"} 1
assertd_heartbeat_pings_rejected_total{reason="unknown_heartbeat"} 1
assertd_heartbeat_pings_total{kind="exit",name="job"} 0
assertd_heartbeat_pings_total{kind="exit",name="locked"} 0
assertd_heartbeat_pings_total{kind="fail",name="job"} 0
assertd_heartbeat_pings_total{kind="fail",name="locked"} 0
assertd_heartbeat_pings_total{kind="log",name="job"} 0
assertd_heartbeat_pings_total{kind="log",name="locked"} 0
assertd_heartbeat_pings_total{kind="start",name="job"} 1
assertd_heartbeat_pings_total{kind="start",name="locked"} 0
assertd_heartbeat_pings_total{kind="success",name="job"} 1
assertd_heartbeat_pings_total{kind="success",name="locked"} 0
assertd_heartbeat_state{name="job",state="down"} 0
assertd_heartbeat_state{name="job",state="late"} 0
assertd_heartbeat_state{name="job",state="new"} 0
assertd_heartbeat_state{name="job",state="paused"} 0
assertd_heartbeat_state{name="job",state="running-too-long"} 1
assertd_heartbeat_state{name="job",state="started"} 0
assertd_heartbeat_state{name="job",state="up"} 0
assertd_heartbeat_state{name="locked",state="down"} 0
assertd_heartbeat_state{name="locked",state="late"} 0
assertd_heartbeat_state{name="locked",state="new"} 1
assertd_heartbeat_state{name="locked",state="paused"} 0
assertd_heartbeat_state{name="locked",state="running-too-long"} 0
assertd_heartbeat_state{name="locked",state="started"} 0
assertd_heartbeat_state{name="locked",state="up"} 0
assertd_heartbeat_up{name="job"} 0
assertd_heartbeat_up{name="locked"} 0
`
	if got := gather(t, reg); got != strings.TrimSpace(want) {
		t.Fatalf("metrics:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
	}

	// Ten minutes earlier the run was within max_runtime: started, up, with
	// a deadline at start + max_runtime. Gauges follow the clock.
	clk.Jump(after(30 * time.Minute))
	const earlier = `
assertd_heartbeat_next_deadline_timestamp_seconds{name="job"} 1768048800
assertd_heartbeat_up{name="job"} 1
assertd_heartbeat_up{name="locked"} 0
`
	if got := gather(t, reg, "assertd_heartbeat_up", "assertd_heartbeat_next_deadline_timestamp_seconds"); got != strings.TrimSpace(earlier) {
		t.Fatalf("metrics:\n%s\nwant:\n%s", got, strings.TrimSpace(earlier))
	}
}

// gather renders the registry's series (only those of names, when given) as
// sorted lines name{label="value",…} value. The pedantic registry checks
// the collector's descriptions and label consistency on the way.
func gather(t *testing.T, reg *prometheus.Registry, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if !strings.HasPrefix(mf.GetName(), "assertd_") || mf.GetHelp() == "" {
			t.Errorf("family %s: want the assertd_ prefix and help", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			lines = append(lines, mf.GetName()+"{"+strings.Join(labels, ",")+"} "+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
