// Package demo is the bundled demo service of `assertd demo`: a small HTTP
// service with a latency histogram and a connection gauge, faults that can
// be switched on from the UI or `assertd demo fault …`, an admin endpoint
// that restarts it the way a supervisor would, and a job that pings a
// heartbeat. It generates its own traffic so that its metrics move.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The faults the demo service knows.
const (
	// FaultLatency makes requests slow; a restart clears it.
	FaultLatency = "latency"
	// FaultStuckLatency makes requests slow in a way a restart cannot fix.
	FaultStuckLatency = "stuck-latency"
	// FaultConnections drops the service out of its load balancer.
	FaultConnections = "connections"
	// FaultHeartbeat stops the nightly job from pinging its heartbeat.
	FaultHeartbeat = "heartbeat"
)

// Faults lists the fault names.
var Faults = []string{FaultLatency, FaultStuckLatency, FaultConnections, FaultHeartbeat}

// Service is the demo service.
type Service struct {
	mu       sync.Mutex
	faults   map[string]bool
	restarts int
	started  time.Time

	reg   *prometheus.Registry
	hist  *prometheus.HistogramVec
	conns prometheus.Gauge
	rests prometheus.Counter
	now   func() time.Time
	rand  *rand.Rand
}

// New returns a demo service; now is its clock.
func New(now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{faults: map[string]bool{}, reg: prometheus.NewRegistry(), now: now, started: now(),
		rand: rand.New(rand.NewPCG(1, 2))}
	s.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "Request latency of the demo API.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	}, []string{"code"})
	s.conns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "api_active_connections", Help: "Connections held by the demo API."})
	s.rests = prometheus.NewCounter(prometheus.CounterOpts{Name: "demo_restarts_total", Help: "Restarts of the demo service."})
	s.reg.MustRegister(s.hist, s.conns, s.rests)
	s.conns.Set(40)
	return s
}

// Serve simulates one request and records its latency.
func (s *Service) Serve() time.Duration {
	s.mu.Lock()
	slow := s.faults[FaultLatency] || s.faults[FaultStuckLatency]
	d := time.Duration(3+s.rand.IntN(15)) * time.Millisecond
	if slow {
		d += time.Duration(200+s.rand.IntN(100)) * time.Millisecond
	}
	s.mu.Unlock()
	s.hist.WithLabelValues("200").Observe(d.Seconds())
	return d
}

// SetFault switches a fault on or off.
func (s *Service) SetFault(name string, on bool) error {
	if !slices.Contains(Faults, name) {
		return fmt.Errorf("unknown fault %q: the faults are %v", name, Faults)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = on
	if name == FaultConnections {
		s.conns.Set(map[bool]float64{true: 2, false: 40}[on])
	}
	return nil
}

// Fault reports whether a fault is on.
func (s *Service) Fault(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults[name]
}

// Restart does what a supervisor's restart does: the process starts afresh,
// which clears every fault but the stuck one.
func (s *Service) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	stuck := s.faults[FaultStuckLatency]
	hb := s.faults[FaultHeartbeat]
	s.faults = map[string]bool{FaultStuckLatency: stuck, FaultHeartbeat: hb}
	s.conns.Set(40)
	s.restarts++
	s.rests.Inc()
	s.started = s.now()
}

// State is what the admin API reports.
type State struct {
	Faults   map[string]bool `json:"faults"`
	Restarts int             `json:"restarts"`
	Started  time.Time       `json:"started"`
}

// State returns the service's state.
func (s *Service) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]bool{}
	for _, n := range Faults {
		f[n] = s.faults[n]
	}
	return State{Faults: f, Restarts: s.restarts, Started: s.started}
}

// Handler serves /metrics, /api/work and the admin API under /admin/.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/work", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "done in %s\n", s.Serve())
	})
	mux.HandleFunc("GET /admin/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("POST /admin/restart", func(w http.ResponseWriter, r *http.Request) {
		s.Restart()
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("POST /admin/fault/{name}", func(w http.ResponseWriter, r *http.Request) {
		on := r.URL.Query().Get("on") != "false"
		if err := s.SetFault(r.PathValue("name"), on); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Run generates traffic (rps simulated requests a second) and pings the
// heartbeat URL every pingEvery unless the heartbeat fault is on, until ctx
// ends.
func (s *Service) Run(ctx context.Context, rps int, pingURL string, pingEvery time.Duration) {
	traffic := time.NewTicker(time.Second / time.Duration(max(rps, 1)))
	defer traffic.Stop()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	s.ping(ctx, pingURL)
	for {
		select {
		case <-ctx.Done():
			return
		case <-traffic.C:
			s.Serve()
		case <-ping.C:
			s.ping(ctx, pingURL)
		}
	}
}

func (s *Service) ping(ctx context.Context, url string) {
	if url == "" || s.Fault(FaultHeartbeat) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// SortedFaults lists the faults that are on.
func (st State) SortedFaults() []string {
	var on []string
	for k, v := range st.Faults {
		if v {
			on = append(on, k)
		}
	}
	sort.Strings(on)
	return on
}
