// Package testsaas holds fakes of the SaaS APIs assertd notifies through,
// for tests only: a PagerDuty Events API v2 endpoint (trigger, acknowledge,
// resolve and change events) and a Slack Web API (slack-go's slacktest
// with custom chat.postMessage and chat.update handlers, and the
// response_url of interactions). Each listens on 127.0.0.1 and can be told
// to fail the next requests with HTTP 500, 429 with Retry-After, a slow
// answer, a reset connection, a refusal (400) or garbage. They also build
// what those services send to assertd: signed Slack button clicks and
// signed PagerDuty v3 webhooks.
package testsaas

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is how a fake answers while it is set.
type Fault string

// The faults.
const (
	OK        Fault = ""
	Fail500   Fault = "500"
	Limit429  Fault = "429"     // with Retry-After: RetryAfter seconds
	Slow      Fault = "slow"    // answers after Delay
	Reset     Fault = "reset"   // closes the connection without answering
	Refuse400 Fault = "400"     // a permanent refusal
	Garbage   Fault = "garbage" // 200 with a body that is not JSON
)

// faults is the fault schedule shared by the fakes.
type faults struct {
	mu         sync.Mutex
	fault      Fault
	cycle      []Fault // when set, each request takes the next fault in turn
	n          int
	RetryAfter int
	Delay      time.Duration
	failed     int
}

// SetFault makes every request answer with f until changed.
func (f *faults) SetFault(x Fault) { f.mu.Lock(); f.fault, f.cycle = x, nil; f.mu.Unlock() }

// Cycle makes requests answer with each fault of xs in turn, over and over.
func (f *faults) Cycle(xs ...Fault) { f.mu.Lock(); f.cycle, f.n = xs, 0; f.mu.Unlock() }

// Failed counts the requests answered with a fault.
func (f *faults) Failed() int { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }

func (f *faults) next() (Fault, int, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.fault
	if len(f.cycle) > 0 {
		x = f.cycle[f.n%len(f.cycle)]
		f.n++
	}
	if x != OK {
		f.failed++
	}
	ra := f.RetryAfter
	if ra == 0 {
		ra = 30
	}
	d := f.Delay
	if d == 0 {
		d = 2 * time.Second
	}
	return x, ra, d
}

// serveFault answers r with the current fault and reports whether it did.
func (f *faults) serveFault(w http.ResponseWriter, r *http.Request) bool {
	x, ra, delay := f.next()
	switch x {
	case OK:
		return false
	case Fail500:
		http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
	case Limit429:
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"status":"throttle event","message":"Requests for this service are arriving too quickly."}`))
	case Slow:
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
		http.Error(w, "too late", http.StatusGatewayTimeout)
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return true
			}
		}
		http.Error(w, "reset", http.StatusBadGateway)
	case Refuse400:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}`))
	case Garbage:
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<html><body>Gateway says hello and this is not JSON at all</body></html>"))
	}
	return true
}
