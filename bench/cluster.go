package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/cluster"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/sources"
	"github.com/assertd/assertd/store"
)

// ClusterRig is one workload in one embedded TSDB evaluated by n engines,
// each a replica of a cluster on one shared (PostgreSQL) store: the asserts
// are split between them by rendezvous hashing.
type ClusterRig struct {
	W       Workload
	dir     string
	emb     *sources.Embedded
	set     *config.Set
	st      store.Store
	members []*cluster.Member
	engines []*engine.Engine
	now     time.Time
}

// NewClusterRig fills a TSDB with w and starts n replicas on st (a fresh
// database), converged and past their first cycles.
func NewClusterRig(ctx context.Context, w Workload, st store.Store, n int) (_ *ClusterRig, err error) {
	cs, ok := st.(store.Cluster)
	if !ok {
		return nil, errors.New("the store cannot coordinate replicas")
	}
	dir, err := os.MkdirTemp("", "assertd-bench-cluster-")
	if err != nil {
		return nil, err
	}
	r := &ClusterRig{W: w, dir: dir, st: st, now: EvalTime}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.emb, err = sources.OpenEmbedded(sources.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb")}); err != nil {
		return nil, err
	}
	if _, err = w.Fill(ctx, r.emb.Appendable()); err != nil {
		return nil, err
	}
	if r.set, err = w.LoadSet(dir); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(r.set.Asserts))
	for _, a := range r.set.Asserts {
		names = append(names, a.Name)
	}
	clock := &rigClock{r: r}
	for i := range n {
		m := cluster.New(cluster.Options{Store: cs, Name: fmt.Sprintf("bench%d", i), Lease: time.Hour, Renew: time.Minute,
			Shares: func() []string { return names }, Clock: clock})
		e, err := engine.New(ctx, engine.Options{Set: r.set, Store: st, Shares: m,
			Sources:     map[string]asserts.Querier{config.EmbeddedName: &pinned{q: r.emb}},
			Concurrency: runtime.GOMAXPROCS(0)})
		if err != nil {
			return nil, err
		}
		r.members, r.engines = append(r.members, m), append(r.engines, e)
	}
	// Two rounds: the first replica claims everything, the others join and
	// it gives up their shares, which they claim on the second.
	for range 2 {
		for _, m := range r.members {
			if err := m.Step(ctx); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range r.members {
		if err := m.Step(ctx); err != nil {
			return nil, err
		}
	}
	// As NewEvalRig: the first cycles store the instances.
	for range 3 {
		r.now = r.now.Add(15 * time.Second)
		for _, e := range r.engines {
			e.Tick(ctx, r.now)
		}
	}
	return r, nil
}

// rigClock is the members' clock: the rig's cycle time.
type rigClock struct{ r *ClusterRig }

func (c *rigClock) Now() time.Time                         { return c.r.now }
func (c *rigClock) After(d time.Duration) <-chan time.Time { return make(chan time.Time) }

// Owned is how many asserts each replica evaluates.
func (r *ClusterRig) Owned() []int {
	out := make([]int, len(r.members))
	for i, m := range r.members {
		out[i] = len(m.Status().Owned)
	}
	return out
}

// Cycle runs one evaluation cycle on every replica, one after another, and
// returns each replica's wall time and CPU time.
func (r *ClusterRig) Cycle(ctx context.Context) (wall, cpu []time.Duration) {
	r.now = r.now.Add(15 * time.Second)
	for _, e := range r.engines {
		c0, w0 := cpuTime(), time.Now()
		e.Tick(ctx, r.now)
		wall, cpu = append(wall, time.Since(w0)), append(cpu, cpuTime()-c0)
	}
	return wall, cpu
}

// Close removes what the rig made (not the store).
func (r *ClusterRig) Close() {
	if r.emb != nil {
		r.emb.Close()
	}
	os.RemoveAll(r.dir)
}
