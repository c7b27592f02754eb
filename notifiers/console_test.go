package notifiers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

// A page whose remediation failed carries the run's step log, indented
// under the notice.
func TestConsolePrintsTheStepLog(t *testing.T) {
	var b strings.Builder
	m := &Message{Channel: "console", Kind: assertd.NoticeTrigger, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Notices: []assertd.Notice{{
		Kind: assertd.NoticeTrigger, Assert: "api-up", State: assertd.Escalated, Reason: "verify failed",
		RunID: "run-1", StepLog: "restart: ok\nverify: api-up still violated\n",
	}}}
	if _, err := NewConsole(&b).Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := "  run run-1:\n    restart: ok\n    verify: api-up still violated\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Fatalf("console printed\n%s\nwant it to end with\n%s", b.String(), want)
	}
	// Without a run, no run section.
	b.Reset()
	m.Notices[0].RunID, m.Notices[0].StepLog = "", ""
	if _, err := NewConsole(&b).Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "run ") {
		t.Fatalf("a run section without a run:\n%s", b.String())
	}
}
