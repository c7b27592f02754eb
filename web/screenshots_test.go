package web_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

var update = flag.Bool("update", false, "write the UI screenshots to docs/ (go test ./web -run TestScreenshots -update)")

// TestScreenshots takes the README's screenshots from the real UI in
// Chromium (light scheme): the overview, an instance page and a run page.
// Without -update they go to a temporary directory and are only checked.
func TestScreenshots(t *testing.T) {
	e := newEnv(t)
	e.seed()
	// A deliverer has sent the first pages: Slack took them, PagerDuty
	// is being retried after a 429.
	msgs, err := e.st.Claim(e.ctx, "deliverer", e.clock.Now(), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Channel == "slack" {
			e.st.Ack(e.ctx, m.ID, "deliverer", e.clock.Now(), "1710406950.000200")
		} else {
			e.st.Nack(e.ctx, m.ID, "deliverer", e.clock.Now(), "429 Too Many Requests (Retry-After: 30s)", e.clock.Now().Add(30*time.Second), false)
		}
	}
	// The automatic run terminated a few idle sessions, not enough: db3
	// was paged. On call breaks glass; this time the report job's idle
	// sessions go and the verify holds, and the next evaluation sees db3 ok.
	db3 := e.instance("pg-connections", "db3")
	if db3.State != assertd.Escalated || !strings.Contains(db3.Reason, "did not fix it") {
		t.Fatalf("db3 %+v", db3)
	}
	e.freeConnectionsOnTerminate(db3, 6, 51)
	e.clock.Add(20 * time.Second)
	code, body := e.do("POST", "/api/v1/break-glass", adminSecret, `{"remediation": "terminate-idle-connections", "labels": `+
		mustJSON(db3.Labels)+`, "reason": "db3 out of connections: idle sessions from the nightly report job"}`)
	if code != 202 {
		t.Fatalf("break glass %d %s", code, body)
	}
	e.settle()
	e.clock.Add(40 * time.Second)
	e.sample("pg_free_connections", 49, "instance", "db3", "cluster", "reports")
	e.eval()
	runs, _ := e.st.Runs(e.ctx, store.RunFilter{})
	dir := t.TempDir()
	if *update {
		dir = filepath.Join("..", "docs")
	}
	ctx := newBrowser(t, 2*time.Minute)
	signInBrowser(t, ctx, e, adminSecret, "/")
	shots := map[string]string{
		"screenshot-overview.png": "/",
		"screenshot-instance.png": "/instances/pg-connections/" + db3.Fingerprint,
		"screenshot-run.png":      "/runs/" + runs[0].ID,
	}
	for name, path := range shots {
		do(t, ctx, name, chromedp.Navigate(e.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
		waitFor(t, ctx, "live", `document.getElementById("live-status").textContent === "live"`, 10*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 20000 {
			t.Fatalf("%s: %d bytes, not a real screenshot", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s (%d KiB)", name, path, len(png)/1024)
	}
	if !strings.HasPrefix(runs[0].ID, "bg-") || runs[0].Status != assertd.RunSucceeded {
		t.Errorf("run %+v", runs[0])
	}
}
