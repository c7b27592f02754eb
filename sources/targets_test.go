package sources

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testprom"
)

// ApplyTargets starts scraping when the first targets come, adds and removes
// targets while running, and refuses an invalid target in PrepareTargets.
func TestApplyTargetsWhileRunning(t *testing.T) {
	t.Parallel()
	one, two := target(t), target(t)
	e, err := OpenEmbedded(EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := PrepareTargets(config.Embedded{Targets: []config.ScrapeTarget{{URL: "no-host"}}}); err == nil {
		t.Fatal("PrepareTargets took a target without a host")
	}
	apply := func(urls ...string) {
		t.Helper()
		c := config.Embedded{ScrapeInterval: assertd.Duration(200 * time.Millisecond)}
		for i, u := range urls {
			c.Targets = append(c.Targets, config.ScrapeTarget{URL: u + "/metrics", Labels: map[string]string{"job": "api", "n": fmt.Sprint(i)}})
		}
		ts, err := PrepareTargets(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ApplyTargets(ts); err != nil {
			t.Fatal(err)
		}
	}
	scraped := func(want ...string) func() error {
		return func() error {
			h := e.TargetHealth()
			if len(h) != len(want) {
				return fmt.Errorf("targets %v, want %v", h, want)
			}
			for _, u := range want {
				if msg, ok := h[u+"/metrics"]; !ok || msg != "" {
					return fmt.Errorf("target %s: %q (%v)", u, msg, ok)
				}
			}
			return nil
		}
	}
	apply(one.URL)
	testprom.Eventually(t, 20*time.Second, scraped(one.URL))
	apply(one.URL, two.URL)
	testprom.Eventually(t, 20*time.Second, scraped(one.URL, two.URL))
	apply(two.URL)
	testprom.Eventually(t, 20*time.Second, scraped(two.URL))
	v, err := e.Query(context.Background(), `api_active_connections{n="0"}`, time.Now())
	if err != nil || len(v.Samples) == 0 {
		t.Fatalf("no samples scraped: %v %v", v, err)
	}
}
