package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/demo"
	"github.com/assertd/assertd/store/sqlite"
)

var heldRE = regexp.MustCompile(`(?m)^assertd_held_changes (\S+)$`)

// The SQLite file (with its -wal and -shm) is moved away while assertd
// runs: /readyz answers 503 within 5s; a fault that would be remediated is
// evaluated and held — no restart, no page — until the same file is moved
// back; then the held change is stored and the remediation runs, once.
func TestSQLiteFileMovedAwayHoldsActions(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	r := newRig(t, targets(svc), latencyRules("6s"))
	r.start()
	r.waitOK("latency", 1)
	if code, body := r.get("/readyz", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}

	db := filepath.Join(r.dir, "data", sqlite.File)
	away := filepath.Join(r.dir, "away")
	if err := os.Mkdir(away, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{"", "-wal", "-shm"}
	moved := time.Now()
	for _, f := range files {
		if err := os.Rename(db+f, filepath.Join(away, sqlite.File+f)); err != nil {
			t.Fatal(err)
		}
	}
	r.eventually(5*time.Second, "/readyz 503", func() error {
		if code, body := r.get("/readyz", ""); code != 503 || !strings.Contains(body, db+" was removed") {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	t.Logf("/readyz answered 503 %s after the file was moved", time.Since(moved).Round(time.Millisecond))

	svc.SetFault(demo.FaultLatency, true)
	r.eventually(20*time.Second, "the violation evaluated and held", func() error {
		_, m := r.get("/metrics", "")
		held := heldRE.FindStringSubmatch(m)
		if held == nil {
			return fmt.Errorf("no assertd_held_changes in /metrics")
		}
		if n, _ := strconv.ParseFloat(held[1], 64); n < 1 {
			return fmt.Errorf("held %s", held[1])
		}
		// The API shows what the store holds (ok) and what waits for it.
		if in := r.instanceView("", "latency"); in.State != string(assertd.OK) || !in.Held || in.HeldState != string(assertd.Violated) {
			return fmt.Errorf("latency is %+v", in)
		}
		return nil
	})
	if st := svc.State(); st.Restarts != 0 {
		t.Fatalf("the service was restarted while the store was away: %+v", st)
	}
	if n := len(r.pd.Events()); n != 0 {
		t.Fatalf("PagerDuty got %d events while the store was away", n)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatalf("%s was created while the store was away", db)
	}
	if n := strings.Count(r.output(), "store unavailable: holding every write"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}

	for _, f := range files {
		if err := os.Rename(filepath.Join(away, sqlite.File+f), db+f); err != nil {
			t.Fatal(err)
		}
	}
	r.eventually(5*time.Second, "/readyz 200", func() error {
		if code, body := r.get("/readyz", ""); code != 200 {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	r.eventually(40*time.Second, "the held remediation ran", func() error {
		runs := r.runs("restart")
		if len(runs) != 1 || runs[0].Status != assertd.RunSucceeded {
			return fmt.Errorf("runs %+v", runs)
		}
		return nil
	})
	if st := svc.State(); st.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", st.Restarts)
	}
}
