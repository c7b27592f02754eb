package bench

import (
	"context"
	"testing"
	"time"
)

// TestReactionWiring runs a few rounds of row 3 on the real runner and
// deliverer: every round must reach the step's target and page the fake
// PagerDuty (the timings are the table's business, not this test's).
func TestReactionWiring(t *testing.T) {
	r, err := MeasureReaction(context.Background(), t, 3, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rounds != 3 || r.Confirm <= 0 || r.Page <= 0 {
		t.Fatalf("reaction %+v", r)
	}
	t.Logf("confirm→step %s, failed→page %s", r.Confirm, r.Page)
}
