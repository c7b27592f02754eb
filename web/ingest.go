package web

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources"
)

// writePath is where Prometheus remote-write is received.
const writePath = "/api/v1/write"

// remoteWrite hands an authenticated request to the remote-write receiver
// with what its writer may write: the token's write_matchers and its budget
// of new series.
func (s *server) remoteWrite(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	pol := s.access.policy()
	wr := sources.Writer{Name: p.Name, AllowNew: func(n int) bool { return s.newSeries.allow(p, pol.newSeries, n, s.now()) }}
	if p.kind == "token" {
		wr.Matchers = pol.matchers[p.Name]
	}
	s.d.RemoteWrite.ServeHTTP(w, r.WithContext(sources.WithWriter(r.Context(), wr)))
}

// maxWriters bounds the remembered budgets of new series; past it they all
// start again full.
const maxWriters = 1024

// seriesBudgets are the token buckets of new series, one per writer.
type seriesBudgets struct {
	mu      sync.Mutex
	m       map[string]*budget
	created *prometheus.CounterVec
	refused *prometheus.CounterVec
}

type budget struct {
	lim *rate.Limiter
	cfg config.NewSeriesLimit
}

func newSeriesBudgets() *seriesBudgets {
	return &seriesBudgets{m: map[string]*budget{},
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_remote_write_new_series_total",
			Help: "Series created through remote-write, by writer (a token, a basic-auth user or anonymous)."}, []string{"writer"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_remote_write_new_series_refused_total",
			Help: "New series refused (429) because the writer was past web.new_series_limit, by writer."}, []string{"writer"}),
	}
}

// allow takes n new series from the writer's budget, all or none.
func (b *seriesBudgets) allow(p principal, cfg config.NewSeriesLimit, n int, now time.Time) bool {
	key := p.kind + ":" + p.Name
	b.mu.Lock()
	bu := b.m[key]
	if bu == nil || bu.cfg != cfg {
		if len(b.m) >= maxWriters {
			clear(b.m)
		}
		bu = &budget{lim: rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.Burst), cfg: cfg}
		b.m[key] = bu
	}
	ok := bu.lim.AllowN(now, n)
	b.mu.Unlock()
	if ok {
		b.created.WithLabelValues(p.Name).Add(float64(n))
	} else {
		b.refused.WithLabelValues(p.Name).Add(float64(n))
	}
	return ok
}

// maxLoginClients bounds the remembered failed sign-ins; past it they all
// start again.
const maxLoginClients = 4096

// Failed sign-ins per client address: loginBurst at once, then one per
// loginEvery.
const (
	loginBurst = 5
	loginEvery = 12 * time.Second
)

// loginFailures limit failed sign-ins per client address.
type loginFailures struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (l *loginFailures) limiter(addr string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim := l.m[addr]
	if lim == nil {
		if len(l.m) >= maxLoginClients {
			for k, v := range l.m {
				if v.TokensAt(now) >= loginBurst {
					delete(l.m, k) // full again: nothing to remember
				}
			}
			if len(l.m) >= maxLoginClients {
				clear(l.m)
			}
		}
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.m[addr] = lim
	}
	return lim
}

// blocked reports how long the address must wait before another attempt.
func (l *loginFailures) blocked(addr string, now time.Time) time.Duration {
	lim := l.limiter(addr, now)
	if lim.TokensAt(now) >= 1 {
		return 0
	}
	return time.Duration((1 - lim.TokensAt(now)) * float64(loginEvery))
}

// failed counts a failed sign-in of the address.
func (l *loginFailures) failed(addr string, now time.Time) {
	l.limiter(addr, now).AllowN(now, 1)
}
