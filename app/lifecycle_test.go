package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
)

// fixed answers every query with one sample.
type fixed struct{ v float64 }

func (f fixed) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"job": "x"}, Value: f.v}}}, nil
}

// New runs nothing; Start serves on the address Addr reports; Stop ends it
// within its deadline, and twice is harmless.
func TestStartAndStop(t *testing.T) {
	ta := newTestApp(t, reloadBase, nil)
	if ta.Addr() != "" {
		t.Fatal("an address before Start")
	}
	ctx := context.Background()
	if err := ta.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ta.Start(ctx); err == nil {
		t.Error("a second Start worked")
	}
	base := "http://" + ta.Addr()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("serving on %s", base)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ta.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after Stop")
	}
	if err := ta.Stop(ctx); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
	if err := ta.Reload(ctx); err == nil {
		t.Error("a Reload after Stop worked")
	}
}

// Options.Sources replace a source by name, the embedded one included.
func TestSourcesReplaceTheConfiguredOnes(t *testing.T) {
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir}
	ta.write("assertd.yaml", reloadBase)
	ta.write("rules.yaml", "asserts:\n  - {name: q, query: {v: up}, expect: v > 5}\n")
	a, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1,
		Getenv: func(k string) string { return reloadEnv[k] }, Sources: map[string]asserts.Querier{config.EmbeddedName: fixed{1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	if err := a.Engine().EvaluateNow(context.Background(), "q", time.Now()); err != nil {
		t.Fatal(err)
	}
	ins := a.Engine().Instances()
	if len(ins) != 1 || ins[0].State == assertd.OK || ins[0].Labels["job"] != "x" {
		t.Fatalf("instances %+v, want the fixed sample, violated", ins)
	}
}

// blocking answers a query once released, telling when it was asked.
type blocking struct {
	asked   chan struct{}
	release chan struct{}
}

func (b blocking) Query(ctx context.Context, _ string, _ time.Time) (assertd.Vector, error) {
	b.asked <- struct{}{}
	<-b.release
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"job": "x"}, Value: 1}}}, nil
}

// An evaluation in flight when a reload removes its assert leaves nothing
// behind: its result is about a definition no longer in force.
func TestReloadDuringAnEvaluation(t *testing.T) {
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir}
	ta.write("assertd.yaml", reloadBase)
	ta.write("rules.yaml", "asserts:\n  - {name: q, query: {v: up}, expect: v > 5}\n")
	src := blocking{asked: make(chan struct{}, 1), release: make(chan struct{})}
	a, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1,
		Getenv: func(k string) string { return reloadEnv[k] }, Sources: map[string]asserts.Querier{config.EmbeddedName: src}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Engine().EvaluateNow(context.Background(), "q", time.Now()) }()
	<-src.asked
	ta.write("rules.yaml", "asserts:\n  - {name: r, expect: 'heartbeat(\"hb-a\").up'}\n")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(src.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ins := a.Engine().Instances(); len(ins) != 0 {
		t.Fatalf("instances %+v after the assert was removed", ins)
	}
}

// Reloads while everything runs and requests come in: every part swaps
// under its own lock (the race detector watches).
func TestReloadWhileRunning(t *testing.T) {
	ta := newTestApp(t, reloadBase, nil)
	ta.o.ReloadEvery = 5 * time.Millisecond
	ctx := context.Background()
	if err := ta.Start(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + ta.Addr()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range []string{"/ping/hb-a", "/ping/hb-new", "/api/v1/status", "/metrics", "/api/v1/heartbeats"} {
				if resp, err := http.Get(base + p); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	for i := range 6 {
		cfg := reloadBase
		if i%2 == 0 {
			cfg = reloadNext
		}
		ta.write("assertd.yaml", cfg)
		if err := ta.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := ta.Heartbeats().Known("hb-new"); got != (i%2 == 0) {
			t.Fatalf("reload %d: hb-new known %v", i, got)
		}
	}
	close(stop)
	<-done
}
