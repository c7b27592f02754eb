package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check refuses several replicas on the embedded TSDB alone or on SQLite,
// saying why, and accepts them on a shared source or with scrape targets.
func TestClusterCheck(t *testing.T) {
	t.Setenv("PG_DSN", "postgres://x@localhost/db")
	for _, c := range []struct {
		name, cfg string
		want      []string // substrings of the errors, each on cluster.replicas; none: clean
	}{
		{"one replica, embedded", "", nil},
		{"three on embedded", "cluster: {replicas: 3}\nstore: {driver: postgres, dsn_env: PG_DSN}\n",
			[]string{"3 replicas cannot share the embedded TSDB", "remote-write reaches only one", "sources.embedded.targets"}},
		{"three on sqlite", "cluster: {replicas: 3}\nsources: {default: prom, prometheus: [{name: prom, url: http://prom:9090}]}\n",
			[]string{"3 replicas need a store they share"}},
		{"three on prometheus", "cluster: {replicas: 3, lease: 15s, renew: 3s}\nstore: {driver: postgres, dsn_env: PG_DSN}\nsources: {default: prom, prometheus: [{name: prom, url: http://prom:9090}]}\n", nil},
		{"three scraping", "cluster: {replicas: 3}\nstore: {driver: postgres, dsn_env: PG_DSN}\nsources: {embedded: {targets: [{url: http://app:9100/metrics}]}}\n", nil},
		{"renew too slow", "cluster: {lease: 5s, renew: 2s}\n", []string{"cluster.renew (2s) must be at most a third of cluster.lease (5s)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "assertd.yaml")
			base := "files: [a.yaml]\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\n"
			if err := os.WriteFile(cfg, []byte(base+c.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("asserts: [{name: x, query: {u: up}, expect: u == 1, escalate: ops}]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			rep := Check(cfg, true, nil)
			if len(c.want) == 0 {
				if !rep.OK() {
					t.Fatalf("errors: %v", rep.Errors)
				}
				return
			}
			if len(rep.Errors) != 1 {
				t.Fatalf("want one error, got %v", rep.Errors)
			}
			e := rep.Errors[0]
			if e.Pos.File != cfg || e.Pos.Line != 4 || e.Pos.Col == 0 {
				t.Errorf("error at %v, want %s:4 (the cluster block)", e.Pos, cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(e.Msg, w) {
					t.Errorf("error %q lacks %q", e.Msg, w)
				}
			}
		})
	}
}
