//go:build bench

package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/store/postgres"
)

// clusterRows: one evaluation cycle of the same data with 1, 2 and 3
// replicas on one PostgreSQL store: the busiest replica's work and the
// total CPU of a cycle, against one replica.
func clusterRows(ctx context.Context, t *testing.T, tab *Table) {
	w := DefaultWorkload()
	w.Asserts = 2_000
	pg := testpg.Start(t)
	var base time.Duration
	for n := 1; n <= 3; n++ {
		dsn, err := pg.CreateDB(ctx, fmt.Sprintf("cluster%d", n))
		if err != nil {
			t.Fatal(err)
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewClusterRig(ctx, w, st, n)
		if err != nil {
			t.Fatal(err)
		}
		owned := r.Owned()
		var totals, busiest []time.Duration
		for range evalRounds {
			wall, cpu := r.Cycle(ctx)
			var sum time.Duration
			for _, c := range cpu {
				sum += c
			}
			totals, busiest = append(totals, sum), append(busiest, slices.Max(wall))
		}
		total, most := median(totals), median(busiest)
		if n == 1 {
			base = total
		}
		t.Logf("%d replicas: asserts per replica %v, cycle CPU %s total, busiest replica %s wall", n, owned, total, most)
		tab.Add(Row{Row: "8", What: fmt.Sprintf("eval cycle, %d asserts × %d series, %d replica(s) on PostgreSQL: total CPU (asserts per replica %v; busiest %s wall)",
			w.Asserts, w.Series, n, owned, ms(most)),
			Value: ms(total), Baseline: ms(base), Ratio: float64(total) / float64(base), Goal: "-", Met: "-",
			Bench: fmt.Sprintf("ClusterCycle/replicas=%d", n), Nanos: float64(total)})
		r.Close()
		st.Close()
	}
}
