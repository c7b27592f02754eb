package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testprom"
)

// A driver that feeds assertd itself (assertd test) builds it with
// NoListener and NoScrape: no web token is read, nothing listens, and the
// embedded TSDB scrapes no target, through a reload too. Without them the
// same configuration needs its token file, and its target is scraped.
func TestNoListenerNoScrape(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "up 1")
	}))
	defer target.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`files: [rules.yaml]
data_dir: data
sources:
  embedded:
    scrape_interval: 100ms
    targets: [{url: %q}]
notifiers: [{name: console, console: {}}]
escalation_policies: [{name: ops, levels: [{notify: [console]}]}]
defaults: {escalate: ops}
web:
  tokens: [{name: rob, role: read, token_file: read.token}]
`, target.URL+"/metrics")
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("asserts: [{name: a, query: {x: up}, expect: x == 1}]\n"), 0o644)
	ctx := context.Background()
	opts := func(noListener, noScrape bool) Options {
		return Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Logger: slog.New(slog.DiscardHandler),
			NoListener: noListener, NoScrape: noScrape, ReloadEvery: -1}
	}

	if _, err := New(ctx, opts(false, true)); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Fatalf("with a listener the token file is read: %v", err)
	}

	a, err := New(ctx, opts(true, true))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	if a.Handler() != nil {
		t.Error("a handler was built")
	}
	if err := a.Start(ctx); err == nil || !strings.Contains(err.Error(), "NoListener") {
		t.Errorf("Start: %v", err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// The embedded TSDB scrapes the targets of the configuration in force
	// (at New and at each reload): there are none.
	if ts := a.Set().Config.Sources.Embedded.Targets; len(ts) != 0 {
		t.Errorf("targets in force: %+v", ts)
	}

	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The same, scraping: the target is in force and scraped.
	b, err := New(ctx, opts(true, false))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(ctx)
	testprom.Eventually(t, 10*time.Second, func() error {
		if h, ok := b.Embedded().TargetHealth()[target.URL+"/metrics"]; !ok || h != "" {
			return fmt.Errorf("target health %v", b.Embedded().TargetHealth())
		}
		return nil
	})
}
