package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd/config"
)

// The quickstart the demo writes is a valid set, with Slack and PagerDuty
// added when their environment variables are set.
func TestQuickstartWithChannels(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"console"}},
		{map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#demo", "PAGERDUTY_ROUTING_KEY": "k"}, []string{"slack", "pagerduty", "console"}},
	} {
		dir := t.TempDir()
		if err := writeQuickstart(dir, DefaultService, func(k string) string { return tc.env[k] }); err != nil {
			t.Fatal(err)
		}
		set, errs := config.Load(filepath.Join(dir, "assertd.yaml"))
		if len(errs) > 0 {
			b, _ := os.ReadFile(filepath.Join(dir, "assertd.yaml"))
			t.Fatalf("%v\n%s", errs, b)
		}
		var names []string
		for _, n := range set.Config.Notifiers {
			names = append(names, n.Name)
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") || len(set.Config.EscalationPolicies[0].Levels[0].Notify) != len(tc.want) {
			t.Errorf("notifiers %v, policy %+v", names, set.Config.EscalationPolicies[0])
		}
	}
}

func TestRestartClearsAllButStuckFaults(t *testing.T) {
	s := New(nil)
	for _, f := range Faults {
		if err := s.SetFault(f, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFault("nope", true); err == nil {
		t.Fatal("unknown fault accepted")
	}
	s.Restart()
	st := s.State()
	if st.Restarts != 1 || st.Faults[FaultLatency] || st.Faults[FaultConnections] || !st.Faults[FaultStuckLatency] || !st.Faults[FaultHeartbeat] {
		t.Fatalf("%+v", st)
	}
	if d := s.Serve(); d.Milliseconds() < 200 {
		t.Fatalf("stuck latency served in %s", d)
	}
}

// Story 1 of the demo, untouched: the latency fault comes by itself, the
// restart remediation fixes it, an informational message and no page.
func TestStoryOneCompletesByItself(t *testing.T) {
	// About 40s: the quickstart waits for its latency window to settle.
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", Service: "127.0.0.1:0", AutoSlow: time.Second, Out: &out})
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "remediating → ok: fixed by remediation restart-demo") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("story 1 did not complete within two minutes:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "escalated") {
		t.Fatalf("someone was paged:\n%s", out.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
