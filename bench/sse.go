package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// flipping answers every query with ten series at 20 (ok), except the
// first assert's (m0), whose ten series swap between 20 and 80 (violated)
// every cycle: each cycle changes some instances, so the event stream has
// something to send after every cycle, as during an incident.
type flipping struct{ cycle atomic.Int64 }

func (f *flipping) Query(_ context.Context, q string, _ time.Time) (assertd.Vector, error) {
	x := 20.0
	if q == "m0" && f.cycle.Load()%2 == 1 {
		x = 80
	}
	v := assertd.Vector{Samples: make([]assertd.Sample, 10)}
	for i := range v.Samples {
		v.Samples[i] = assertd.Sample{Labels: assertd.Labels{"instance": fmt.Sprintf("host-%02d", i), "job": "bench"}, Value: x}
	}
	return v, nil
}

// SSERig is an engine of n instances (n/10 asserts of ten series, SQLite
// store) behind the web handler on 127.0.0.1, to which event-stream
// clients connect while the engine's cycles are timed.
type SSERig struct {
	Instances int
	dir       string
	st        store.Store
	app       *app.App
	eng       *engine.Engine
	src       *flipping
	addr      string
	stop      func()
	now       time.Time

	clients []*sseClient
}

// sseClient is one open /api/v1/events stream that reads everything sent.
type sseClient struct {
	cancel context.CancelFunc
	done   chan struct{}
	events atomic.Int64 // "state" events received
}

// NewSSERig builds the engine (its first cycles run, so the ones measured
// are steady) and serves the web handler, with the event stream looking
// for changes every eventEvery (0: web's default, 1s).
func NewSSERig(ctx context.Context, n int, eventEvery time.Duration) (_ *SSERig, err error) {
	dir, err := os.MkdirTemp("", "assertd-bench-sse-")
	if err != nil {
		return nil, err
	}
	r := &SSERig{Instances: n, dir: dir, src: &flipping{}, now: EvalTime}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if _, err = memWorkload(n).LoadSet(dir); err != nil {
		return nil, err
	}
	if r.st, err = sqlite.Open(ctx, filepath.Join(dir, "assertd.db"), sqlite.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		return nil, err
	}
	// The whole of assertd as app.New builds it; the bench drives the
	// engine's cycles itself and serves the handler, not the listener.
	if r.app, err = app.New(ctx, app.Options{
		ConfigPath: filepath.Join(dir, "assertd.yaml"), DataDir: dir, Store: r.st,
		Logger:      slog.New(slog.DiscardHandler),
		Registerer:  prometheus.NewRegistry(),
		Sources:     map[string]asserts.Querier{config.EmbeddedName: r.src},
		Concurrency: runtime.GOMAXPROCS(0), EventEvery: eventEvery,
		Listen: "127.0.0.1:0", NoScrape: true, ReloadEvery: -1,
	}); err != nil {
		return nil, err
	}
	r.eng = r.app.Engine()
	for range 3 {
		r.Cycle(ctx)
	}
	if got := len(r.eng.Instances()); got != n {
		return nil, fmt.Errorf("sse rig: %d instances, want %d", got, n)
	}
	if r.addr, r.stop, err = Serve(r.app.Handler()); err != nil {
		return nil, err
	}
	return r, nil
}

// Cycle is one engine.Tick that evaluates every assert (the clock moves
// one interval on), the first assert's series changing state.
func (r *SSERig) Cycle(ctx context.Context) {
	r.src.cycle.Add(1)
	r.now = r.now.Add(15 * time.Second)
	r.eng.Tick(ctx, r.now)
}

// Connect opens n event streams and returns once each has received its
// first event.
func (r *SSERig) Connect(ctx context.Context, n int) error {
	for range n {
		cctx, cancel := context.WithCancel(ctx)
		c := &sseClient{cancel: cancel, done: make(chan struct{})}
		req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+r.addr+"/api/v1/events", nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			cancel()
			return fmt.Errorf("events: %s", resp.Status)
		}
		first := make(chan struct{})
		go func() {
			defer close(c.done)
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte("event: state")) {
					if c.events.Add(1) == 1 {
						close(first)
					}
				}
			}
		}()
		select {
		case <-first:
		case <-c.done:
			cancel()
			return fmt.Errorf("events: the stream ended before its first event")
		case <-time.After(30 * time.Second):
			cancel()
			return fmt.Errorf("events: no first event within 30s")
		}
		r.clients = append(r.clients, c)
	}
	return nil
}

// Disconnect closes every stream and returns the events each received on
// average (the first included).
func (r *SSERig) Disconnect() float64 {
	var total int64
	for _, c := range r.clients {
		c.cancel()
		<-c.done
		total += c.events.Load()
	}
	n := len(r.clients)
	r.clients = nil
	if n == 0 {
		return 0
	}
	return float64(total) / float64(n)
}

// Close disconnects the clients, stops the listener and removes the store.
func (r *SSERig) Close() {
	r.Disconnect()
	if r.stop != nil {
		r.stop()
	}
	if r.app != nil {
		_ = r.app.Stop(context.Background())
	}
	if r.st != nil {
		r.st.Close()
	}
	os.RemoveAll(r.dir)
}

// SSE is what the event-stream row measured: median cycle times with no
// client and with Clients open streams, interleaved round by round.
type SSE struct {
	Instances, Clients int
	None, With         time.Duration
	NoneAll, WithAll   []time.Duration // every cycle, in order
	// NoneCPU and WithCPU are the process's CPU time per cycle (medians):
	// the streams' own work included, other processes' left out.
	NoneCPU, WithCPU time.Duration
	EventsPerClient  float64 // events each client received, on average per round
}

// MeasureSSE alternates, rounds times: cycles with no client and the same
// number of cycles with clients open event streams, in turn first.
func MeasureSSE(ctx context.Context, r *SSERig, clients, rounds, cycles int) (SSE, error) {
	var none, with, noneCPU, withCPU []time.Duration
	var events float64
	timed := func(into, cpu *[]time.Duration) {
		for range cycles {
			s, c := time.Now(), cpuTime()
			r.Cycle(ctx)
			*into = append(*into, time.Since(s))
			*cpu = append(*cpu, cpuTime()-c)
		}
	}
	for i := range rounds {
		if i%2 == 0 { // which goes first alternates, so neither gains from its place
			timed(&none, &noneCPU)
		}
		if err := r.Connect(ctx, clients); err != nil {
			return SSE{}, err
		}
		timed(&with, &withCPU)
		events += r.Disconnect()
		if i%2 == 1 {
			timed(&none, &noneCPU)
		}
	}
	return SSE{Instances: r.Instances, Clients: clients, None: median(none), With: median(with), NoneAll: none, WithAll: with,
		NoneCPU: median(noneCPU), WithCPU: median(withCPU), EventsPerClient: events / float64(rounds)}, nil
}

func (s SSE) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%dk instances: cycle %s with no client, %s with %d (%.1f events each per round)",
		s.Instances/1000, s.None.Round(time.Millisecond), s.With.Round(time.Millisecond), s.Clients, s.EventsPerClient)
	return b.String()
}
