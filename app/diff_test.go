package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assertd/assertd/config"
)

func loadSet(t *testing.T, dir, cfg, rules string) *config.Set {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "assertd.yaml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

func TestDiffListsEachChangeWithoutSecrets(t *testing.T) {
	oldCfg := `files: [rules.yaml]
defaults: {escalate: ops, every: 30s}
heartbeats: [{name: hb-a, period: 1h, public: true}, {name: hb-gone, period: 1h, public: true}]
notifiers:
  - {name: web, webhook: {url: "https://hooks.example.com/s3cret-path"}}
  - {name: slack-web, slack: {webhook_url_env: SLACK_URL}}
escalation_policies: [{name: ops, levels: [{notify: [web]}]}]
sources:
  embedded:
    targets: [{url: "http://10.0.0.1:9100/metrics"}]
web:
  listen: 127.0.0.1:8080
`
	newCfg := `files: [rules.yaml]
defaults: {escalate: ops, every: 1m}
heartbeats: [{name: hb-a, period: 5s, public: true}, {name: hb-new, period: 1h, public: true}]
notifiers:
  - {name: web, webhook: {url: "https://hooks.example.com/other-s3cret"}}
  - {name: slack-web, slack: {webhook_url_env: SLACK_URL_2}}
escalation_policies: [{name: ops, repeat: 1h, levels: [{notify: [web, slack-web]}]}]
sources:
  embedded:
    targets: [{url: "http://10.0.0.2:9100/metrics"}]
web:
  listen: 127.0.0.1:9090
  tokens: [{name: ci, role: read, token_env: CI_TOKEN}]
`
	oldRules := "asserts:\n  - {name: x, query: {v: up}, expect: v == 1}\n  - {name: y, query: {v: up}, expect: v == 1}\n"
	newRules := "asserts:\n  - {name: x, query: {v: up}, expect: v == 0}\n  - {name: y, query: {v: up}, expect: v == 1}\n"
	dir := t.TempDir()
	got := Diff(loadSet(t, dir, oldCfg, oldRules), loadSet(t, dir, newCfg, newRules))
	want := []string{
		"assert x: expect changed",
		"heartbeat hb-gone: removed",
		"heartbeat hb-new: added",
		"heartbeat hb-a: period 1h → 5s",
		"notifier web: webhook.url changed",
		"notifier slack-web: slack.webhook_url_env changed",
		"escalation policy ops: levels changed",
		"escalation policy ops: repeat unset → 1h",
		"token ci: added",
		"scrape target http://10.0.0.1:9100/metrics: removed",
		"scrape target http://10.0.0.2:9100/metrics: added",
		"defaults.every 30s → 1m",
		"web.listen: changed; it takes effect at the next start",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, secret := range []string{"s3cret", "SLACK_URL_2"} {
		for _, l := range got {
			if strings.Contains(l, secret) {
				t.Errorf("%q shows %s", l, secret)
			}
		}
	}
	if d := Diff(loadSet(t, dir, oldCfg, oldRules), loadSet(t, dir, oldCfg, oldRules)); len(d) != 0 {
		t.Errorf("the same configuration differs: %q", d)
	}
}
