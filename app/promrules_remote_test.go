package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd/internal/testprom"
)

// TestPrometheusRulesOnARemoteSource: the rules query a real Prometheus,
// their recording rule is remote-written to it, and their alert is
// assertd's.
func TestPrometheusRulesOnARemoteSource(t *testing.T) {
	prom := testprom.Start(t, testprom.Options{RemoteWriteReceiver: true})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "remote.rules.yml"), []byte(`groups:
  - name: remote
    interval: 1s
    rules:
      - record: rm:up:sum
        expr: sum by (job) (rm_up)
      - alert: RmDown
        expr: rm:up:sum < 1
`), 0o644)
	cfg := filepath.Join(dir, "assertd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`files: [remote.rules.yml]
data_dir: data
sources:
  prometheus: [{name: prom, url: %q}]
prometheus_rules:
  source: prom
  remote_write: {url: %q, bearer_token_env: RW_TOKEN}
`, prom.URL, prom.URL+"/api/v1/write")), 0o644)
	a, err := New(context.Background(), Options{ConfigPath: cfg, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), ReloadEvery: -1, NoScrape: true,
		Getenv: func(k string) string { return map[string]string{"RW_TOKEN": "rw-token-0123456789"}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	// rm_up is 0 in Prometheus only.
	now := time.Now()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "rm_up"}, {Name: "job", Value: "rm"}},
	}}}
	for d := -10 * time.Second; d <= time.Minute; d += time.Second {
		req.Timeseries[0].Samples = append(req.Timeseries[0].Samples, prompb.Sample{Timestamp: now.Add(d).UnixMilli()})
	}
	raw, _ := req.Marshal()
	resp, err := http.Post(prom.URL+"/api/v1/write", "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("remote-write to Prometheus: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testprom.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(prom.URL + "/api/v1/query?query=" + url.QueryEscape(`rm:up:sum{job="rm"}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body struct {
			Data struct{ Result []any } `json:"data"`
		}
		json.Unmarshal(b, &body)
		if len(body.Data.Result) != 1 {
			return fmt.Errorf("Prometheus has no rm:up:sum from assertd: %s", b)
		}
		for _, ev := range a.ruleAlerts.Evaluations() {
			if len(ev.Alerts) == 1 && ev.Alerts[0].State == "firing" && ev.Alerts[0].Labels.Get("job") == "rm" {
				return nil
			}
		}
		return fmt.Errorf("RmDown not firing in assertd: %+v", a.ruleAlerts.Evaluations())
	})
}
