package bench

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSSE times engine cycles with no event-stream client and with
// 50 connected (events looked for every second, as assertd runs), at 10k
// and 100k instances: the figure of the fan-out goal is the ratio of the
// two at one size.
func BenchmarkSSE(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			r, err := NewSSERig(ctx, n, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for _, clients := range []int{0, 50} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					if err := r.Connect(ctx, clients); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						r.Cycle(ctx)
					}
					b.StopTimer()
					b.ReportMetric(r.Disconnect(), "events/client")
				})
			}
		})
	}
}

// BenchmarkSummary times engine.Summary at 100k instances: what the event
// streams compute once per interval (and each new stream once), under
// the engine's lock.
func BenchmarkSummary(b *testing.B) {
	ctx := context.Background()
	r, err := NewSSERig(ctx, 100_000, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		r.eng.Summary()
	}
}
