package sources

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testprom"
)

// A real Prometheus (Debian's package) on loopback: the remote source queries
// it, and when it stops the source says "unavailable", never "no data".
func TestRemotePrometheus(t *testing.T) {
	t.Parallel()
	srv := target(t)
	u, _ := url.Parse(srv.URL)
	prom := testprom.Start(t, testprom.Options{Targets: []string{u.Host}, Labels: map[string]string{"zone": "z1"}})
	r, err := NewRemote(config.Prometheus{Name: "prom", URL: prom.URL, Headers: map[string]string{"X-Scope-OrgID": "tenant-a"}}, ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A real Prometheus scrapes on its own schedule: a bounded poll.
	testprom.Eventually(t, 30*time.Second, func() error {
		v, err := r.Query(ctx, `sum by (job, zone) (api_active_connections)`, time.Now())
		if err != nil {
			return err
		}
		if len(v.Samples) != 1 || v.Samples[0].Value != 42 || v.Samples[0].Labels.String() != `{job="test", zone="z1"}` {
			return fmt.Errorf("samples %+v", v.Samples)
		}
		return nil
	})
	if v, err := r.Query(ctx, "scalar(sum(api_active_connections))", time.Now()); err != nil || !v.Scalar || v.Samples[0].Value != 42 {
		t.Errorf("scalar: %+v %v", v, err)
	}
	if _, err := r.Query(ctx, "sum(", time.Now()); !errors.Is(err, assertd.ErrBadQuery) {
		t.Errorf("bad query: %v", err)
	}
	a := compile(t, "asserts: [{name: conns, query: {c: 'sum by (zone) (api_active_connections)'}, expect: c > 10}]")
	if ev := a.Evaluate(ctx, r, nil, time.Now()); ev.SourceErr != nil || len(ev.Verdicts) != 1 || ev.Verdicts[0].State != assertd.OK {
		t.Fatalf("evaluate: %+v %v", ev.Verdicts, ev.SourceErr)
	}
	prom.Stop()
	_, err = r.Query(ctx, "up", time.Now())
	if !errors.Is(err, assertd.ErrSourceUnavailable) {
		t.Fatalf("after stop: %v", err)
	}
	ev := a.Evaluate(ctx, r, nil, time.Now())
	if !errors.Is(ev.SourceErr, assertd.ErrSourceUnavailable) || len(ev.Verdicts) != 0 {
		t.Fatalf("evaluate after stop: %+v %v", ev.Verdicts, ev.SourceErr)
	}
}

// A real Prometheus remote-writes what it scrapes into the embedded TSDB.
func TestPrometheusRemoteWritesIntoEmbedded(t *testing.T) {
	t.Parallel()
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", asWriter(WriteHandler(e.Appendable(), time.Now), Writer{Name: "prometheus"}))
	recv := httptest.NewServer(mux)
	defer recv.Close()
	srv := target(t)
	u, _ := url.Parse(srv.URL)
	prom := testprom.Start(t, testprom.Options{Targets: []string{u.Host}, RemoteWriteURL: recv.URL + "/api/v1/write"})
	// A real Prometheus sends remote writes on its own schedule: a bounded poll.
	testprom.Eventually(t, 45*time.Second, func() error {
		v, err := e.Query(context.Background(), `api_active_connections{job="test"}`, time.Now())
		if err != nil {
			return err
		}
		if len(v.Samples) != 1 || v.Samples[0].Value != 42 {
			return fmt.Errorf("not yet received: %+v\n%s", v.Samples, lastLines(prom.Log(), 3))
		}
		return nil
	})
}

// Secrets given by reference must exist; the error names the setting, never a value.
func TestRemoteMissingSecret(t *testing.T) {
	_, err := NewRemote(config.Prometheus{Name: "p", URL: "http://127.0.0.1:1", BearerTokenEnv: "NOPE_TOKEN"}, ".", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "bearer_token_env names $NOPE_TOKEN, which is empty or unset") {
		t.Fatal(err)
	}
	getenv := func(string) string { return "s3cret-value" }
	r, err := NewRemote(config.Prometheus{Name: "p", URL: "http://127.0.0.1:1", BearerTokenEnv: "TOKEN"}, ".", getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Query(context.Background(), "up", time.Now())
	if !errors.Is(err, assertd.ErrSourceUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("%v", err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
