// Package testprom starts a real Prometheus server (Debian's prometheus
// package) on 127.0.0.1 for tests, with a scrape configuration and an
// optional remote_write target, and stops it when the test ends.
package testprom

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/internal/testproc"
)

// Options say what the server scrapes and where it writes.
type Options struct {
	Targets        []string          // host:port of /metrics endpoints
	Labels         map[string]string // target labels
	ScrapeInterval time.Duration     // default 1s
	RemoteWriteURL string            // optional
	RemoteWrite    []RemoteWrite     // more remote_write queues, with credentials
	// RuleFiles are Prometheus rule files it evaluates (rule_files).
	RuleFiles []string
	// RemoteWriteReceiver accepts remote-write at /api/v1/write
	// (--web.enable-remote-write-receiver).
	RemoteWriteReceiver bool
	// StoragePath, when set, is the TSDB directory it starts on (blocks
	// written beforehand) instead of an empty one in its temporary directory.
	StoragePath string
}

// RemoteWrite is one remote_write queue of the test's Prometheus.
type RemoteWrite struct {
	Name        string // remote_name of Prometheus' prometheus_remote_storage_* metrics
	URL         string
	BearerToken string            // optional: authorization credentials
	BasicUser   string            // optional: basic_auth
	BasicPass   string            // with BasicUser
	Labels      map[string]string // added to every series it sends (write_relabel_configs)
}

// Server is a running Prometheus.
type Server struct {
	URL  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start runs Prometheus until the test ends. It fails the test, loudly, when
// the binary is missing: make test installs it (apt-get install prometheus).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: run make deps (apt-get install prometheus)")
	}
	dir, err := os.MkdirTemp("", "testprom-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	job := map[string]any{
		"job_name":        "test",
		"scrape_interval": o.ScrapeInterval.String(),
		"scrape_timeout":  o.ScrapeInterval.String(),
		"static_configs":  []map[string]any{{"targets": o.Targets, "labels": o.Labels}},
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": o.ScrapeInterval.String(), "evaluation_interval": "1s"},
		"scrape_configs": []any{job},
	}
	if len(o.RuleFiles) > 0 {
		cfg["rule_files"] = o.RuleFiles
	}
	queue := map[string]any{"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"}
	var rws []any
	if o.RemoteWriteURL != "" {
		rws = append(rws, map[string]any{"url": o.RemoteWriteURL, "queue_config": queue})
	}
	for _, rw := range o.RemoteWrite {
		q := map[string]any{"url": rw.URL, "name": rw.Name, "queue_config": queue}
		if rw.BearerToken != "" {
			q["authorization"] = map[string]any{"credentials": rw.BearerToken}
		}
		if rw.BasicUser != "" {
			q["basic_auth"] = map[string]any{"username": rw.BasicUser, "password": rw.BasicPass}
		}
		var relabel []any
		for k, v := range rw.Labels {
			relabel = append(relabel, map[string]any{"target_label": k, "replacement": v})
		}
		if relabel != nil {
			q["write_relabel_configs"] = relabel
		}
		rws = append(rws, q)
	}
	if rws != nil {
		cfg["remote_write"] = rws
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, text, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := &Server{URL: "http://" + addr, done: make(chan struct{}), log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	storage := o.StoragePath
	if storage == "" {
		storage = filepath.Join(dir, "data")
	}
	args := []string{"--config.file=" + cfgFile, "--storage.tsdb.path=" + storage,
		"--web.listen-address=" + addr, "--web.enable-lifecycle"}
	if o.RemoteWriteReceiver {
		args = append(args, "--web.enable-remote-write-receiver")
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	go func() { _ = s.cmd.Wait(); _ = logf.Close(); close(s.done) }() // Stop kills it: the exit status says nothing
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("prometheus exited at start:\n%s", s.Log())
		case <-ctx.Done():
			t.Fatalf("prometheus not ready after 30s:\n%s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates the server and waits for it (killing it after 10s).
func (s *Server) Stop() { testproc.Stop(s.cmd, s.done) }

// Log returns the server's output, for failure messages.
func (s *Server) Log() string { return testproc.Tail(s.log) }

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Eventually polls f every 200ms until it returns nil or the timeout passes.
// It is for what a test cannot wait on otherwise: a real process (Prometheus,
// the assertd binary) or a library running on real time and real sockets.
// In-process work is awaited on channels, counters or fakeclock.Settle.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Write remote-writes the series (the server needs RemoteWriteReceiver)
// in slices of ten minutes: its head takes old samples only in time order
// across series, so that series in the past can be written.
func (s *Server) Write(t testing.TB, series []prompb.TimeSeries) {
	t.Helper()
	var lo, hi int64 = 1<<63 - 1, -1 << 63
	for _, se := range series {
		for _, p := range se.Samples {
			lo, hi = min(lo, p.Timestamp), max(hi, p.Timestamp)
		}
	}
	const slice = int64(10 * time.Minute / time.Millisecond)
	for from := lo; from <= hi; from += slice {
		req := &prompb.WriteRequest{}
		for _, se := range series {
			ts := prompb.TimeSeries{Labels: se.Labels}
			for _, p := range se.Samples {
				if p.Timestamp >= from && p.Timestamp < from+slice {
					ts.Samples = append(ts.Samples, p)
				}
			}
			if len(ts.Samples) > 0 {
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		if len(req.Timeseries) == 0 {
			continue
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		hr, _ := http.NewRequest("POST", s.URL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		hr.Header.Set("Content-Encoding", "snappy")
		hr.Header.Set("Content-Type", "application/x-protobuf")
		hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("remote-write to %s: %s", s.URL, resp.Status)
		}
	}
}
