package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// A rule file with an error stops the start with the configuration's
// errors, although the store was opened from assertd.yaml meanwhile; what
// was opened (the SQLite file and its lock) is released, so the start
// with the file fixed runs on the same data directory.
func TestStartWithABadRuleFileReleasesTheStore(t *testing.T) {
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir}
	ta.write("assertd.yaml", reloadBase)
	ta.write("rules.yaml", "asserts:\n  - {name: q, query: {v: up}, expect: v >}\n")
	opts := Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1,
		Getenv: func(k string) string { return reloadEnv[k] }, DataDir: filepath.Join(t.TempDir(), "state"), NoListener: true}
	_, err := New(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "has errors") || !strings.Contains(err.Error(), "rules.yaml:2") {
		t.Fatalf("New with a bad rule file: %v, want the rule file's error", err)
	}
	ta.write("rules.yaml", "asserts:\n  - {name: q, query: {v: up}, expect: v > 5}\n")
	a, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New with the file fixed: %v", err)
	}
	defer a.Stop(context.Background())
	if a.Set().Assert("q") == nil {
		t.Fatal("the assert is not loaded")
	}
}
