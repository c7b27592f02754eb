package remediations

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/fakeclock"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

// helper is the test program (testdata/helper), built once.
var helper string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remediations-helper-")
	if err != nil {
		panic(err)
	}
	helper = filepath.Join(dir, "helper")
	if out, err := exec.Command("go", "build", "-o", helper, "./testdata/helper").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("building testdata/helper: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeHost stands in for the engine.
type fakeHost struct {
	mu       sync.Mutex
	rems     map[string]*Compiled
	safety   Safety
	insts    []assertd.Instance
	verifyOK bool
	verifies int
	exprs    []string
}

func (h *fakeHost) Verify(_ context.Context, assert string, ls assertd.Labels, _ time.Time) (bool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verifies++
	if h.verifyOK {
		return true, assert + " holds for " + ls.String(), nil
	}
	return false, assert + " is violated: latency 80ms", nil
}

func (h *fakeHost) VerifyExpr(_ context.Context, assert string, ls assertd.Labels, e string, _ time.Time) (bool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verifies++
	h.exprs = append(h.exprs, e)
	return h.verifyOK, e, nil
}

func (h *fakeHost) Counts(assert, by, value string) (v, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.insts {
		if in.Assert != assert || (by != "" && in.Labels[by] != value) {
			continue
		}
		n++
		if in.State == assertd.Violated || in.State == assertd.Remediating || in.State == assertd.Escalated {
			v++
		}
	}
	return v, n
}

func (h *fakeHost) InstancesOf(assert string) []assertd.Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []assertd.Instance
	for _, in := range h.insts {
		if in.Assert == assert {
			out = append(out, in)
		}
	}
	return out
}

func (h *fakeHost) Remediation(name string) *Compiled {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rems[name]
}

func (h *fakeHost) Safety() Safety {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.safety
}

func compileRem(t *testing.T, r Remediation) *Compiled {
	t.Helper()
	c, errs := Compile(&r, (*strictyaml.Positions)(nil).In("remediations", 0))
	if len(errs) > 0 {
		t.Fatalf("compile %s: %v", r.Name, errs)
	}
	return c
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "assertd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type rig struct {
	st    store.Store
	host  *fakeHost
	clock *fakeclock.Clock
	r     *Runner
	env   map[string]string
	reg   *prometheus.Registry
}

func newRig(t *testing.T, rems ...*Compiled) *rig {
	t.Helper()
	g := &rig{st: openStore(t), host: &fakeHost{rems: map[string]*Compiled{}, verifyOK: true},
		clock: fakeclock.NewAuto(t0), env: map[string]string{}, reg: prometheus.NewRegistry()}
	for _, r := range rems {
		g.host.rems[r.Name] = r
	}
	g.r = NewRunner(RunnerOptions{Store: g.st, Host: g.host, Clock: g.clock, Grace: 200 * time.Millisecond, Registerer: g.reg,
		LookupEnv: func(k string) (string, bool) { v, ok := g.env[k]; return v, ok }})
	t.Cleanup(g.r.Wait)
	return g
}

var instA = assertd.Instance{Assert: "latency", Fingerprint: "fa", Labels: assertd.Labels{"instance": "a", "zone": "z1"}, State: assertd.Violated,
	Values: map[string]float64{"ms": 80}}

// run starts the remediation for in and waits for its end.
func (g *rig) run(t *testing.T, rem string, in assertd.Instance, action assertd.Action, id string) assertd.RunResult {
	t.Helper()
	ch := make(chan assertd.RunResult, 1)
	g.r.Start(context.Background(), assertd.Decision{Action: action, Remediation: rem, RunID: id}, in, func(r assertd.RunResult) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end")
	}
	return assertd.RunResult{}
}

func (g *rig) steps(t *testing.T, id string) []assertd.RunStep {
	t.Helper()
	s, err := g.st.Steps(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
