package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
)

// DataDir and ExternalURL override data_dir and web.external_url, in the
// configuration New loads and in every one a reload loads.
func TestOptionsOverrideTheConfig(t *testing.T) {
	dir := t.TempDir()
	ta := &testApp{t: t, dir: dir}
	ta.write("assertd.yaml", reloadBase+"web: {external_url: \"https://from-config.example.com/\"}\n")
	ta.write("rules.yaml", "asserts:\n  - {name: q, query: {v: up}, expect: v > 5}\n")
	data := filepath.Join(t.TempDir(), "state")
	a, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Logger: slog.New(slog.DiscardHandler), ReloadEvery: -1,
		Getenv: func(k string) string { return reloadEnv[k] }, DataDir: data, ExternalURL: "https://assertd.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	check := func(when string) {
		set := a.Set()
		if got := set.DataDir(); got != data {
			t.Errorf("%s: data dir %q, want %q", when, got, data)
		}
		if got := set.Config.Web.ExternalURL; got != "https://assertd.example.com/" {
			t.Errorf("%s: external URL %q", when, got)
		}
	}
	check("after New")
	ta.write("rules.yaml", "asserts:\n  - {name: q2, query: {v: up}, expect: v > 5}\n")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Set().Assert("q2") == nil {
		t.Fatal("the reload changed nothing")
	}
	check("after Reload")
}
