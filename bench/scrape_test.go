package bench

import (
	"context"
	"testing"
)

// BenchmarkScrape times GET /metrics of assertd as app.New builds it, with
// an empty store and with a long history in it (BigHistory: 1M decisions,
// 100k runs, 100k messages): the goal is the same cost for both.
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		hist History
	}{{"empty", History{}}, {"history", BigHistory}} {
		b.Run(c.name, func(b *testing.B) {
			r, err := NewScrapeRig(ctx, c.hist)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.Logf("history %+v written in %s", c.hist, r.Fill)
			for b.Loop() {
				if _, err := r.Scrape(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
