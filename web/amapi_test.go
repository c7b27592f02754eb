package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

func amtool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "amtool", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // a version warning, or the error
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("amtool %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// amtool, Alertmanager's own client, works against assertd: it lists the
// violated instances as alerts, adds a silence that assertd applies, and
// expires it.
func TestAmtoolAgainstAssertd(t *testing.T) {
	e := newEnvWith(t, promAPIConfig, promAPIRules)
	// amtool lists silences by its wall clock: the fake clock goes a little
	// before it, where the silence starts (--start).
	e.clock.Add(-time.Until(e.clock.Now()) - time.Minute)
	for range 2 {
		e.sample("api_latency_ms", 90, "instance", "web1", "lifecycle", "upgrading")
		e.sample("api_latency_ms", 10, "instance", "web2")
		e.eval()
		e.clock.Add(15 * time.Second)
	}
	url := "--alertmanager.url=" + e.base
	out := amtool(t, url, "alert", "query", "-o", "extended")
	if !strings.Contains(out, "alertname=\"api-latency\"") || !strings.Contains(out, `instance="web1"`) || strings.Contains(out, "web2") {
		t.Fatalf("amtool alert query:\n%s", out)
	}
	if out := amtool(t, url, "alert", "query", "alertname=nothing-like-it"); strings.Contains(out, "web1") {
		t.Fatalf("the filter is not applied:\n%s", out)
	}

	httpCfg := filepath.Join(t.TempDir(), "http.yml")
	os.WriteFile(httpCfg, []byte("authorization: {credentials: "+adminSecret+"}\n"), 0o600)
	admin := "--http.config.file=" + httpCfg
	id := strings.TrimSpace(amtool(t, url, admin, "silence", "add", "alertname=api-latency", "instance=web1", "--comment=upgrading web1", "--duration=1h", "--author=bob",
		"--start="+e.clock.Now().Format(time.RFC3339)))
	if !strings.HasPrefix(id, "s-") {
		t.Fatalf("silence add answered %q", id)
	}
	if in := e.instance("api-latency", "web1"); in.State != assertd.Silenced || in.Silenced != id {
		t.Fatalf("the silence is not applied: %s %q", in.State, in.Silenced)
	}
	if in := e.instance("api-latency", "web2"); in.State == assertd.Silenced {
		t.Fatal("web2 is silenced too")
	}
	if out := amtool(t, url, "silence", "query"); !strings.Contains(out, id) || !strings.Contains(out, "upgrading web1") {
		t.Fatalf("amtool silence query:\n%s", out)
	}
	if out := amtool(t, url, "alert", "query", "--silenced", "-o", "extended"); !strings.Contains(out, `instance="web1"`) || !strings.Contains(out, "suppressed") {
		t.Fatalf("amtool alert query --silenced:\n%s", out)
	}
	// Without the admin token, nothing changes.
	cmd := exec.Command("amtool", url, "silence", "expire", id)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("expired without a token: %s", out)
	}
	amtool(t, url, admin, "silence", "expire", id)
	if in := e.instance("api-latency", "web1"); in.State == assertd.Silenced {
		t.Fatalf("still silenced after expire: %s", in.State)
	}
	if out := amtool(t, url, "silence", "query", "--expired"); !strings.Contains(out, id) {
		t.Fatalf("amtool silence query --expired:\n%s", out)
	}
	code, body := e.do("GET", "/api/v2/status", "", "")
	if code != 200 || !strings.Contains(body, `"cluster":{"name":"","peers":[],"status":"disabled"}`) || !strings.Contains(body, `"versionInfo"`) {
		t.Fatalf("status: %d %s", code, body)
	}
	code, body = e.do("GET", "/api/v2/alerts/groups", "", "")
	if code != 200 || !strings.Contains(body, `"labels":{"alertname":"api-latency"}`) || !strings.Contains(body, `"receiver":{"name":"ops"}`) {
		t.Fatalf("groups: %d %s", code, body)
	}
}
