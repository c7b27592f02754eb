package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countErrors counts the Error records whose message starts with prefix.
type countErrors struct {
	prefix string
	n      *atomic.Int64
}

func (c countErrors) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (c countErrors) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, c.prefix) {
		c.n.Add(1)
	}
	return nil
}
func (c countErrors) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c countErrors) WithGroup(string) slog.Handler      { return c }

// The SQLite file is moved away while assertd runs: /readyz answers 503
// with the reason, the store's gauge is 0 and the outage is logged once;
// once the same file is back, /readyz answers 200 again. /-/ready answers
// the same.
func TestReadyzFollowsTheSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte("files: [rules.yaml]\ndata_dir: data\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\ndefaults: {escalate: ops}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("asserts: [{name: a, query: {x: up}, expect: x == 1}]"), 0o644)
	var outages atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Ready: ready, ReloadEvery: -1,
			Logger: slog.New(countErrors{prefix: "store unavailable: holding every write", n: &outages})})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	db := filepath.Join(dir, "data", "assertd.db")
	files := []string{"", "-wal", "-shm"}
	for _, f := range files {
		if err := os.Rename(db+f, db+f+".moved"); err != nil {
			t.Fatal(err)
		}
	}
	code, body := get(t, base+"/readyz")
	if code != 503 || !strings.Contains(body, db+" was removed") {
		t.Fatalf("readyz with the file away: %d %s", code, body)
	}
	if code2, body2 := get(t, base+"/-/ready"); code2 != code || body2 != body {
		t.Errorf("/-/ready with the file away: %d %s, want what /readyz answers", code2, body2)
	}
	if _, m := get(t, base+"/metrics"); !strings.Contains(m, "assertd_store_healthy 0") || !strings.Contains(m, "assertd_store_outages_total 1") {
		t.Errorf("metrics with the file away:\n%s", grepLines(m, "assertd_store_"))
	}
	for _, f := range files {
		if err := os.Rename(db+f+".moved", db+f); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz with the file back: %d %s", code, body)
	}
	if _, m := get(t, base+"/metrics"); !strings.Contains(m, "assertd_store_healthy 1") {
		t.Errorf("metrics with the file back:\n%s", grepLines(m, "assertd_store_"))
	}
	if n := outages.Load(); n != 1 {
		t.Errorf("the outage was logged at Error %d times, want once", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
