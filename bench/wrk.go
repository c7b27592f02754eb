package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Wrk is a load sent by wrk (the Debian package), an external load
// generator: its figures do not depend on the harness's own client.
type Wrk struct {
	Threads  int           // wrk -t
	Conns    int           // keep-alive connections (wrk -c)
	Duration time.Duration // wrk -d; wrk stops by itself
	Paths    []string      // requested round-robin, each thread from its own offset
	Dir      string        // where the request script is written
}

// WrkPath is where wrk is looked for.
const WrkPath = "wrk"

// Run runs wrk against addr, which must be a loopback address, and parses
// its report: requests, errors (socket errors and answers other than 2xx or
// 3xx), and the 50th and 99th latency percentiles.
func (w Wrk) Run(ctx context.Context, addr string) (LoadResult, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return LoadResult{}, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return LoadResult{}, fmt.Errorf("load target %s is not a loopback address", addr)
	}
	if w.Threads <= 0 || w.Conns <= 0 || w.Duration < time.Second || len(w.Paths) == 0 || w.Dir == "" {
		return LoadResult{}, errors.New("wrk needs threads, connections, a duration of at least 1s, paths and a directory")
	}
	bin, err := exec.LookPath(WrkPath)
	if err != nil {
		return LoadResult{}, fmt.Errorf("wrk is not installed (make bench installs it: apt-get install wrk): %w", err)
	}
	script := filepath.Join(w.Dir, "paths.lua")
	if err := os.WriteFile(script, []byte(wrkScript(w.Paths)), 0o600); err != nil {
		return LoadResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns),
		"-d", fmt.Sprintf("%ds", int(w.Duration.Seconds())), "--timeout", "5s", "--latency", "-s", script, "http://"+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return LoadResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(string(out), w.Duration)
}

// wrkScript makes wrk request paths round-robin; each thread starts at its
// own offset.
func wrkScript(paths []string) string {
	var b strings.Builder
	b.WriteString("local paths = {")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(p))
	}
	b.WriteString("}\nlocal n = 0\nlocal id = 0\n")
	b.WriteString("function setup(thread) thread:set(\"id\", id); id = id + 1 end\n")
	b.WriteString("function init(args) n = id * 7919 end\n")
	b.WriteString("function request() n = n + 1; return wrk.format(\"GET\", paths[(n % #paths) + 1]) end\n")
	return b.String()
}

// parseWrk reads wrk's report (with --latency).
func parseWrk(out string, d time.Duration) (LoadResult, error) {
	var res LoadResult
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return res, fmt.Errorf("wrk: %q: %w", sc.Text(), err)
			}
			el, err := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				el = d
			}
			res.Requests, res.Elapsed = n, el
			seen++
		case len(f) == 2 && f[0] == "50%":
			res.P50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.P99 = wrkDuration(f[1])
			seen++
		case len(f) >= 5 && f[0] == "Non-2xx":
			n, _ := strconv.Atoi(f[len(f)-1])
			res.Errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				res.Errors += n
			}
		}
	}
	if seen < 2 {
		return res, fmt.Errorf("wrk: no request count or 99th percentile in its report: %s", out)
	}
	return res, nil
}

// wrkDuration reads wrk's 1.23ms, 456.78us, 1.02s.
func wrkDuration(s string) time.Duration {
	for _, u := range []struct {
		suf string
		d   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0
			}
			return time.Duration(f * float64(u.d))
		}
	}
	return 0
}
