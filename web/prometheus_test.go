package web_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/internal/testprom"
)

// Prometheus' own remote_write (Debian's prometheus) writes through with a
// bearer token and with basic auth; without credentials it is refused, as
// its own prometheus_remote_storage_samples_failed_total and assertd's
// request counter say, and nothing it sent is written.
func TestPrometheusRemoteWriteAuth(t *testing.T) {
	cfg := strings.Replace(listenerConfig, "  tokens:\n", "  tokens:\n    - {name: prom-test, role: write, token_env: T_WRITE_TEST, write_matchers: ['{job=\"test\"}']}\n", 1)
	cfg = strings.Replace(cfg, "T_WRITE_TEST", "T_WRITE", 1)
	cfg = strings.Replace(cfg, "    - {name: prom-api, role: write, token_env: T_WRITE, write_matchers: ['{job=\"api\"}']}\n", "", 1)
	// Prometheus' samples carry the wall clock's time: so does this assertd.
	l := startListener(t, cfg, "basic_auth_users:\n  "+basicUser+": "+bcryptHash(t, basicPass)+"\n", nil,
		func(o *app.Options) { o.Clock = nil })
	url := l.base + "/api/v1/write"
	prom := testprom.Start(t, testprom.Options{Targets: []string{l.app.Addr()}, RemoteWrite: []testprom.RemoteWrite{
		{Name: "bearer", URL: url, BearerToken: writeSecret, Labels: map[string]string{"via": "bearer"}},
		{Name: "basic", URL: url, BasicUser: basicUser, BasicPass: basicPass, Labels: map[string]string{"via": "basic"}},
		{Name: "none", URL: url, Labels: map[string]string{"via": "none"}},
	}})
	// A real Prometheus sends on its own schedule: bounded polls.
	testprom.Eventually(t, 45*time.Second, func() error {
		for _, via := range []string{"bearer", "basic"} {
			v, err := l.app.Embedded().Query(t.Context(), fmt.Sprintf(`up{job="test",via=%q}`, via), time.Now())
			if err != nil {
				return err
			}
			if len(v.Samples) != 1 {
				return fmt.Errorf("nothing yet through %s", via)
			}
		}
		return nil
	})
	testprom.Eventually(t, 45*time.Second, func() error {
		if n := promCounter(t, prom.URL, `prometheus_remote_storage_samples_failed_total{remote_name="none"`); n == 0 {
			return fmt.Errorf("prometheus counted no failed samples of the queue without credentials yet\n%s", prom.Log())
		}
		return nil
	})
	for _, q := range []string{"bearer", "basic"} {
		if n := promCounter(t, prom.URL, `prometheus_remote_storage_samples_failed_total{remote_name="`+q+`"`); n != 0 {
			t.Errorf("queue %s: %v samples failed", q, n)
		}
	}
	if n := promCounter(t, l.base, `assertd_http_requests_total{code="401",handler="remote_write"`); n == 0 {
		t.Errorf("assertd refused no remote-write")
	}
	if v, err := l.app.Embedded().Query(t.Context(), `{via="none"}`, time.Now()); err != nil || len(v.Samples) != 0 {
		t.Errorf("written without credentials: %+v %v", v, err)
	}
}

// promCounter sums the samples of /metrics whose line starts with prefix.
func promCounter(t *testing.T, base, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			if m := valueRE.FindStringSubmatch(line); m != nil {
				f, _ := strconv.ParseFloat(m[1], 64)
				sum += f
			}
		}
	}
	return sum
}

var valueRE = regexp.MustCompile(`\} (\S+)$`)
