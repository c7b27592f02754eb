package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testpg"
	"github.com/assertd/assertd/remediations"
)

// pgSource answers the writable-primary query of examples/database: how
// many servers of the cluster answer and are not in recovery
// (SELECT pg_is_in_recovery()).
type pgSource struct{ servers []*testpg.Server }

func (p pgSource) Query(ctx context.Context, _ string, _ time.Time) (assertd.Vector, error) {
	writable := 0.0
	for _, s := range p.servers {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgx.Connect(cctx, s.DSN("postgres"))
		if err == nil {
			var recovery bool
			if conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&recovery) == nil && !recovery {
				writable++
			}
			conn.Close(context.Background())
		}
		cancel()
	}
	return assertd.Vector{Samples: []assertd.Sample{{Labels: assertd.Labels{"cluster": "test"}, Value: writable}}}, nil
}

// The failover example for real: the primary dies, the cluster has no
// writable primary, the failover remediation promotes the standby with
// pg_ctl promote and verifies the assert on pg_is_in_recovery().
func TestFailoverRemediation(t *testing.T) {
	primary := testpg.Start(t)
	standby := testpg.Start(t, testpg.Options{StandbyOf: primary})
	promote := []string{filepath.Join(standby.BinDir, "pg_ctl"), "promote", "-w", "-t", "60", "-D", standby.DataDir}
	if os.Geteuid() == 0 { // as in examples/database: PostgreSQL's programs run as postgres
		promote = append([]string{"runuser", "-u", "postgres", "--"}, promote...)
	}
	rules := `asserts:
  - name: pg-writable-primary
    query: {writable: 'count by (cluster) (pg_replication_is_replica == 0)'}
    expect: writable == 1
    remediate: failover
remediations:
  - name: failover
    lock: "pg/{{ .Labels.cluster }}"
    max_runs: {count: 1, within: 6h}
    cooldown: 1h
    steps:
      - name: promote
        run: ["` + strings.Join(promote, `", "`) + `"]
        timeout: 90s
        on_failure: page
      - name: settle
        wait: 500ms
      - name: verify
        verify: pg-writable-primary
        timeout: 30s
        retries: 5
        backoff: 500ms
        on_failure: page
`
	set := loadRunnerSet(t, rules, "")
	st := openStore(t)
	e, _ := withRunner(t, set, st, map[string]asserts.Querier{config.EmbeddedName: pgSource{[]*testpg.Server{primary, standby}}}, remediations.RunnerOptions{})
	ctx := context.Background()
	e.EvaluateNow(ctx, "pg-writable-primary", t0)
	if got := e.Instances(); len(got) != 1 || got[0].State != assertd.OK {
		t.Fatalf("before: %+v", got)
	}
	if err := primary.Halt("immediate"); err != nil {
		t.Fatal(err)
	}
	e.EvaluateNow(ctx, "pg-writable-primary", t0.Add(10*time.Second))
	settle(t, e)
	rs := runs(t, st)
	got := e.Instances()
	if len(rs) != 1 || rs[0].Status != assertd.RunSucceeded || len(got) != 1 || got[0].State != assertd.OK {
		steps, _ := st.Steps(ctx, rs[0].ID)
		t.Fatalf("runs %+v, instances %+v, steps %+v", rs, got, steps)
	}
	steps, _ := st.Steps(ctx, rs[0].ID)
	if steps[0].Name != "promote" || !strings.Contains(steps[0].Output, "server promoted") {
		t.Fatalf("promote step %+v", steps[0])
	}
	// The standby is the writable primary now.
	conn, err := pgx.Connect(ctx, standby.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || recovery {
		t.Fatalf("standby still in recovery: %v", err)
	}
	if ms := messages(t, st); len(ms) != 1 || ms[0].Kind != string(assertd.NoticeInfo) {
		t.Fatalf("messages %+v", ms)
	}
}
