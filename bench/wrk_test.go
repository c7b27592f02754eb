package bench

import (
	"strings"
	"testing"
	"time"
)

// wrk 4.1.0's report with --latency, as the ping row reads it.
const wrkReport = `Running 5s test @ http://127.0.0.1:40113
  2 threads and 128 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.59ms    4.01ms  58.40ms   80.41%
    Req/Sec    10.02k     1.20k   12.80k    71.00%
  Latency Distribution
     50%    5.19ms
     75%    7.88ms
     90%   11.02ms
     99%   19.01ms
  100307 requests in 5.02s, 11.29MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:  19981.47
Transfer/sec:      2.25MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkReport, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 100307 || r.Elapsed != 5020*time.Millisecond || r.P50 != 5190*time.Microsecond || r.P99 != 19010*time.Microsecond || r.Errors != 10 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk(strings.Replace(wrkReport, "99%", "98%", 1), 5*time.Second); err == nil {
		t.Fatal("a report without the 99th percentile was read")
	}
	for in, want := range map[string]time.Duration{"456.78us": 456780 * time.Nanosecond, "1.02s": 1020 * time.Millisecond, "1.50m": 90 * time.Second, "2ms": 2 * time.Millisecond} {
		if got := wrkDuration(in); got != want {
			t.Errorf("wrkDuration(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestWrkScriptRoundRobin(t *testing.T) {
	s := wrkScript([]string{"/ping/a", `/ping/"b"`})
	if !strings.Contains(s, `local paths = {"/ping/a", "/ping/\"b\""}`) || !strings.Contains(s, "paths[(n % #paths) + 1]") {
		t.Fatalf("script:\n%s", s)
	}
}
