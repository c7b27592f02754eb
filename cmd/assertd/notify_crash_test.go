package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// Killing assertd (kill -9) with 50 undelivered messages loses
// none of them: after a restart each reaches PagerDuty, once.
func TestKill9LosesNoMessage(t *testing.T) {
	const key = "R0UTINGKEYSECRET0000000000000000"
	bin := buildBinary(t)
	pd := testsaas.NewPagerDuty(t, key)
	pd.SetFault(testsaas.Fail500)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "assertd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`files: [rules.yaml]
data_dir: data
notifiers: [{name: pagerduty, pagerduty: {routing_key_env: PD_KEY, events_url: %q, rate_per_minute: 6000}}]
escalation_policies: [{name: ops, levels: [{notify: [pagerduty]}]}]
defaults: {escalate: ops}
`, pd.URL)), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`asserts:
  - {name: quiet, every: 1s, query: {v: absent_metric}, expect: v < 1, no_data: ok}
`), 0o644)

	ctx := context.Background()
	dbPath := filepath.Join(dir, "data", sqlite.File)
	os.MkdirAll(filepath.Dir(dbPath), 0o755)
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	var msgs []assertd.Message
	for i := range 50 {
		n := assertd.Notice{Version: 1, Kind: assertd.NoticeTrigger, Assert: fmt.Sprintf("assert-%02d", i), Fingerprint: "fp",
			Labels: assertd.Labels{"instance": "db"}, State: assertd.Escalated, Reason: "paging", Policy: "ops", At: now, Since: now}
		b, _ := json.Marshal(n)
		msgs = append(msgs, assertd.Message{Key: fmt.Sprintf("m%02d", i), Channel: "pagerduty", DedupKey: n.Assert + "/fp",
			Kind: "trigger", Payload: string(b), Created: now, NextAttempt: now})
	}
	if _, err := st.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	start := func() *proc {
		log, _ := os.CreateTemp(t.TempDir(), "assertd-*.log")
		cmd := exec.Command(bin, "run", "-c", cfg, "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "PD_KEY="+key)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: cmd, log: log}
		t.Cleanup(p.kill)
		return p
	}
	p1 := start()
	// The real binary tries PagerDuty on its own schedule: a bounded poll.
	testprom.Eventually(t, 30*time.Second, func() error {
		if pd.Failed() < 3 {
			return fmt.Errorf("PagerDuty not tried yet\n%s", p1.output())
		}
		return nil
	})
	p1.kill() // kill -9, with PagerDuty still failing
	undelivered := 0
	for _, m := range must(st.Messages(ctx, store.MessageFilter{Channel: "pagerduty"})) {
		if m.Status != assertd.MsgDelivered {
			undelivered++
		}
	}
	if undelivered != 50 || len(pd.Events()) != 0 {
		t.Fatalf("before the restart: %d undelivered, %d events; want 50 and 0", undelivered, len(pd.Events()))
	}

	pd.SetFault(testsaas.OK)
	restarted := time.Now()
	p2 := start()
	// A claim the killed process held lapses after the lease (1m); the real
	// binary delivers on its own schedule: a bounded poll. Once the store
	// has every message delivered there is nothing left to send, so the
	// counts below are final when the process is killed.
	testprom.Eventually(t, 90*time.Second, func() error {
		delivered := 0
		for _, m := range must(st.Messages(ctx, store.MessageFilter{Channel: "pagerduty"})) {
			if m.Status == assertd.MsgDelivered {
				delivered++
			}
		}
		if delivered < 50 {
			return fmt.Errorf("%d of 50 delivered after the restart (%d events)\n%s", delivered, len(pd.Events()), p2.output())
		}
		return nil
	})
	took := time.Since(restarted)
	p2.kill()
	keys := map[string]int{}
	for _, e := range pd.Events() {
		keys[e.DedupKey]++
	}
	if len(keys) != 50 || len(pd.Events()) != 50 || pd.Incidents() != 50 {
		t.Fatalf("%d events for %d keys, %d incidents; want each of the 50 once", len(pd.Events()), len(keys), pd.Incidents())
	}
	for _, m := range must(st.Messages(ctx, store.MessageFilter{Channel: "pagerduty"})) {
		if m.Status != assertd.MsgDelivered {
			t.Errorf("not delivered: %+v", m)
		}
	}
	if out := p1.output() + p2.output(); strings.Contains(out, key) {
		t.Error("the routing key is in the log")
	}
	t.Logf("all 50 delivered %s after the restart", took.Round(time.Millisecond))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
