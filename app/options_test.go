package app

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/assertd/assertd"
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

// assertd_build_info is 1, labelled with what assertd version prints.
func TestBuildInfoMetric(t *testing.T) {
	saved := assertd.Version
	assertd.Version = "v9.8.7-test"
	t.Cleanup(func() { assertd.Version = saved })
	ta := newTestApp(t, reloadBase, nil)
	mfs, err := ta.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := assertd.Build()
	for _, mf := range mfs {
		if mf.GetName() != "assertd_build_info" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d series", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		wantLabels := map[string]string{"version": "v9.8.7-test", "revision": want.Revision, "goversion": runtime.Version()}
		if !maps.Equal(got, wantLabels) || m.GetGauge().GetValue() != 1 {
			t.Fatalf("labels %v value %v, want %v and 1", got, m.GetGauge().GetValue(), wantLabels)
		}
		return
	}
	t.Fatal("no assertd_build_info")
}
