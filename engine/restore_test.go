package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/remediations"
)

// integritySource reports intact = 1 when the database passes PRAGMA
// integrity_check (as app_sqlite_integrity_ok in examples/database).
type integritySource struct{ sqlite, db string }

func (c integritySource) Query(ctx context.Context, _ string, _ time.Time) (assertd.Vector, error) {
	intact := 0.0
	if out, err := exec.CommandContext(ctx, c.sqlite, "-readonly", c.db, "PRAGMA integrity_check").Output(); err == nil && strings.TrimSpace(string(out)) == "ok" {
		intact = 1
	}
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"db": "app"}, Value: intact}}}, nil
}

// The restore example for real: a corrupted SQLite database is restored
// from the latest backup (sqlite3 .restore) only after the backup's checksum
// checks out, and verified by PRAGMA integrity_check; a backup whose
// checksum fails is never restored (the run pages).
func TestRestoreRemediation(t *testing.T) {
	sqlite, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatal("sqlite3 is needed (apt-get install sqlite3)")
	}
	dir := t.TempDir()
	backups, db := filepath.Join(dir, "backups"), filepath.Join(dir, "app.db")
	os.Mkdir(backups, 0o755)
	latest := filepath.Join(backups, "latest.db")
	if out, err := exec.Command(sqlite, latest, "CREATE TABLE t (x); INSERT INTO t VALUES (42);").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	b, _ := os.ReadFile(latest)
	h := sha256.Sum256(b)
	os.WriteFile(latest+".sha256", []byte(hex.EncodeToString(h[:])+"  latest.db\n"), 0o644)
	os.WriteFile(db, []byte("garbage, not a database"), 0o644)
	rules := `asserts:
  - {name: app-db-integrity, query: {intact: app_sqlite_integrity_ok}, expect: intact == 1, remediate: restore-app-db}
remediations:
  - name: restore-app-db
    lock: app-db
    steps:
      - name: check-backup
        run: [sha256sum, --check, --strict, latest.db.sha256]
        dir: ` + backups + `
        env_allow: [PATH]
      - name: restore
        run: [rm, -f, ` + db + `]
        on_success: restore-db
      - name: restore-db
        run: [` + sqlite + `, ` + db + `, ".restore ` + latest + `"]
      - name: verify
        verify: app-db-integrity
`
	set := loadRunnerSet(t, rules, "")
	st := openStore(t)
	os.Setenv("PATH", os.Getenv("PATH")) // env_allow passes assertd's PATH through
	e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: integritySource{sqlite, db}}, remediations.RunnerOptions{})
	ctx := context.Background()
	e.EvaluateNow(ctx, "app-db-integrity", t0)
	settle(t, e)
	rs := runs(t, st)
	if len(rs) != 1 || rs[0].Status != assertd.RunSucceeded || states(e) != "=ok" {
		steps, _ := st.Steps(ctx, rs[0].ID)
		t.Fatalf("runs %+v, %s, steps %+v", rs, states(e), steps)
	}
	steps, _ := st.Steps(ctx, rs[0].ID)
	if !strings.Contains(steps[0].Output, "latest.db: OK") {
		t.Fatalf("checksum step %+v", steps[0])
	}
	if out, err := exec.Command(sqlite, db, "SELECT x FROM t").Output(); err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("restored database: %v %q", err, out)
	}
	// A backup whose checksum fails is never restored: the run pages.
	os.WriteFile(latest+".sha256", []byte(strings.Repeat("0", 64)+"  latest.db\n"), 0o644)
	os.WriteFile(db, []byte("garbage again"), 0o644)
	e.EvaluateNow(ctx, "app-db-integrity", t0.Add(time.Hour))
	settle(t, e)
	if b, _ := os.ReadFile(db); string(b) != "garbage again" || states(e) != "=escalated" {
		t.Fatalf("restored from a bad backup, or not paged: %s", states(e))
	}
	if rs := runs(t, st); len(rs) != 2 || rs[0].Status != assertd.RunFailed || !strings.Contains(rs[0].Outcome, "step check-backup failed") {
		t.Fatalf("runs %+v", rs)
	}
}
