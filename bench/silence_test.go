package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store/sqlite"
)

// BenchmarkSilences times Engine.SilencesChanged, which matches every
// instance against the active silences (as every Tick does before it
// evaluates): 10k instances × 20 silences, each with a regular-expression
// matcher, one of them matching a tenth of the instances.
func BenchmarkSilences(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	const n = 10_000
	set, err := memWorkload(n).LoadSet(dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "assertd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, err := engine.New(ctx, engine.Options{Set: set, Store: st, Sources: map[string]asserts.Querier{config.EmbeddedName: tenSeries{}},
		Concurrency: runtime.GOMAXPROCS(0)})
	if err != nil {
		b.Fatal(err)
	}
	eng.Tick(ctx, EvalTime)
	eng.Tick(ctx, EvalTime.Add(15*time.Second))
	if got := len(eng.Instances()); got != n {
		b.Fatalf("%d instances, want %d", got, n)
	}
	for i := range 20 {
		value := fmt.Sprintf("db-%d[0-9]+", i) // matches no instance
		if i == 0 {
			value = "host-0[0-0]" // matches host-00: a tenth
		}
		s := assertd.Silence{ID: fmt.Sprintf("s%02d", i), Author: "bench", Start: EvalTime.Add(-time.Hour), End: EvalTime.Add(time.Hour), Created: EvalTime,
			Matchers: []assertd.Matcher{{Name: "job", Op: assertd.MatchEqual, Value: "bench"}, {Name: "instance", Op: assertd.MatchRegexp, Value: value}}}
		if err := st.PutSilence(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	eng.SilencesChanged(ctx, EvalTime)
	silenced := 0
	for _, in := range eng.Instances() {
		if in.Silenced != "" {
			silenced++
		}
	}
	if silenced != n/10 {
		b.Fatalf("%d instances silenced, want %d", silenced, n/10)
	}
	for b.Loop() {
		eng.SilencesChanged(ctx, EvalTime)
	}
}
