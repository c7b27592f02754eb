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
	select {
	case <-out.When("remediating → ok: fixed by remediation restart-demo"):
	case err := <-done:
		t.Fatalf("the demo ended before story 1 completed: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("story 1 did not complete within two minutes:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "escalated") {
		t.Fatalf("someone was paged:\n%s", out.String())
	}
	// The narration's first state change starts from uncertain, what
	// assertd knows of an instance before its first evaluation.
	i := strings.Index(out.String(), " → ")
	first := out.String()[strings.LastIndex(out.String()[:i], "\n")+1 : i+len(" → ")]
	if !strings.HasSuffix(first, " uncertain → ") {
		t.Fatalf("the narration's first change is %q:\n%s", first, out.String())
	}
	// The demo job's pings reach assertd over HTTP.
	if !strings.Contains(out.String(), "demo-job-alive       uncertain → ok") {
		t.Fatalf("the demo job's heartbeat never turned ok:\n%s", out.String())
	}
}

// syncBuffer collects the demo's output; When signals a line of it.
type syncBuffer struct {
	mu    sync.Mutex
	b     strings.Builder
	want  string
	found chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	s.check()
	return n, err
}

// When returns a channel closed once the output holds sub.
func (s *syncBuffer) When(sub string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want, s.found = sub, make(chan struct{})
	ch := s.found
	s.check()
	return ch
}

func (s *syncBuffer) check() {
	if s.found != nil && strings.Contains(s.b.String(), s.want) {
		close(s.found)
		s.found = nil
	}
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
