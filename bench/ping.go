package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/sources/heartbeat"
	"github.com/assertd/assertd/store"
)

// Load bounds one loopback HTTP load.
type Load struct {
	Conns    int           // concurrent keep-alive connections
	Max      int           // requests in all, at most
	Duration time.Duration // at most; the load stops at whichever comes first
	Warmup   time.Duration // requests sent first and not counted
	Paths    []string      // requested round-robin, each connection from its own offset
}

// LoadResult is what a load measured.
type LoadResult struct {
	Requests int
	Errors   int // transport errors and answers other than 200
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// PerSecond is the throughput.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r LoadResult) String() string {
	return fmt.Sprintf("%.0f req/s (%d in %s, %d errors), p50 %s, p99 %s", r.PerSecond(), r.Requests,
		r.Elapsed.Round(time.Millisecond), r.Errors, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
}

// Run sends the load to addr, which must be a loopback address. Each
// connection is a goroutine writing one HTTP/1.1 GET at a time and reading
// the answer by hand: a client much lighter than net/http's, as wrk is, so
// that the server gets the cores.
func (l Load) Run(ctx context.Context, addr string) (LoadResult, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return LoadResult{}, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return LoadResult{}, fmt.Errorf("load target %s is not a loopback address", addr)
	}
	if l.Conns <= 0 || l.Max <= 0 || l.Duration <= 0 || len(l.Paths) == 0 {
		return LoadResult{}, errors.New("a load needs connections, a request bound, a duration and paths")
	}
	if l.Warmup > 0 {
		w := l
		w.Warmup, w.Duration, w.Max = 0, l.Warmup, l.Max
		if _, err := w.Run(ctx, addr); err != nil {
			return LoadResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	var sent atomic.Int64
	var errs atomic.Int64
	lat := make([][]time.Duration, l.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range l.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				errs.Add(1)
				return
			}
			defer conn.Close()
			// The deadline unblocks the read; an error means it is closed already.
			stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
			defer stop()
			rd := bufio.NewReaderSize(conn, 4096)
			mine := make([]time.Duration, 0, l.Max/l.Conns+1)
			for i := c * 7919; ctx.Err() == nil && sent.Add(1) <= int64(l.Max); i++ {
				req := "GET " + l.Paths[i%len(l.Paths)] + " HTTP/1.1\r\nHost: bench\r\n\r\n"
				t := time.Now()
				if _, err := io.WriteString(conn, req); err != nil {
					break
				}
				code, err := readResponse(rd)
				if err != nil {
					break
				}
				if code != http.StatusOK {
					errs.Add(1)
				}
				mine = append(mine, time.Since(t))
			}
			lat[c] = mine
		}()
	}
	wg.Wait()
	res := LoadResult{Elapsed: time.Since(start), Errors: int(errs.Load())}
	var all []time.Duration
	for _, m := range lat {
		all = append(all, m...)
	}
	res.Requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		res.P50, res.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return res, nil
}

// readResponse reads one HTTP/1.1 answer with a Content-Length and returns
// its status code.
func readResponse(rd *bufio.Reader) (int, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		h, err := rd.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := strings.Cut(string(h), ":"); ok && strings.EqualFold(k, "Content-Length") {
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return 0, err
			}
		}
	}
	_, err = rd.Discard(n)
	return code, err
}

// Serve serves h on a fresh 127.0.0.1 port until the returned stop is called.
func Serve(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// Bare is the baseline: a net/http handler that answers 200 "OK".
func Bare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK")
	})
}

// Heartbeats declares n heartbeats (hb-0000 …) with a one-hour period and
// returns them with the ping paths that hit them.
func Heartbeats(n int) ([]*asserts.CompiledHeartbeat, []string) {
	var hbs []*asserts.CompiledHeartbeat
	var paths []string
	for i := range n {
		name := fmt.Sprintf("hb-%04d", i)
		hbs = append(hbs, &asserts.CompiledHeartbeat{Heartbeat: &asserts.Heartbeat{Name: name, Public: true}, Period: time.Hour, Grace: 5 * time.Minute})
		paths = append(paths, "/ping/"+name)
	}
	return hbs, paths
}

// PingHandler is assertd's ping handler over st, as app wires it.
func PingHandler(ctx context.Context, st store.Store, hbs []*asserts.CompiledHeartbeat) (http.Handler, error) {
	tr, err := heartbeat.New(ctx, hbs, asserts.Pings{}, store.HeartbeatStore{Store: st}, heartbeat.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/ping/", tr.Handler(time.Now))
	return mux, nil
}
