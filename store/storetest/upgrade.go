package storetest

import (
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// OldInstancesVersion is the last schema version that stored an instance's
// labels and values as JSON columns.
const OldInstancesVersion = 4

// RunUpgrade checks that a database written by an assertd of schema
// OldInstancesVersion opens with every instance it held: old is that
// database (the caller migrated it to OldInstancesVersion and no further,
// and closes it); open opens the store over the same database, which
// upgrades its schema.
func RunUpgrade(t *testing.T, old *sql.DB, open func(t *testing.T) store.Store) {
	c := ctx(t)
	micros := func(d time.Duration) int64 { return at(d).UnixMicro() }
	// The rows as that assertd wrote them: JSON text, times in
	// microseconds, NULL for a zero time, non-finite values as strings.
	stmts := []string{
		fmt.Sprintf(`INSERT INTO instances (assert, fingerprint, labels, state, since, reason, vals, last_eval, violated_since, clear_since)
			VALUES ('db-lag', 'fp1', '{"instance":"db1","job":"node","quote":"a\"b{c}"}', 'violated', %d, 'lag 12.5s ≥ 10s', '{"lag_s":12.5,"inf":"+Inf","ninf":"-Inf","nan":"NaN"}', %d, %d, %d)`,
			micros(-time.Hour), micros(0), micros(-2*time.Hour), micros(-25*time.Second)),
		fmt.Sprintf(`INSERT INTO instances (assert, fingerprint, labels, state, since, reason, vals, last_eval, violated_since, clear_since)
			VALUES ('db-up', 'fp2', '{}', 'ok', %d, '', '{}', NULL, NULL, NULL)`, micros(-time.Minute)),
		// Enough rows to take more than one batch of the upgrade.
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12345)
			INSERT INTO instances (assert, fingerprint, labels, state, since, reason, vals, last_eval, violated_since, clear_since)
			SELECT 'bulk', 'fp' || i, '{"n":"' || i || '"}', 'ok', %d, 'fine', '{"v":1}', %d, NULL, NULL FROM n`, micros(-time.Minute), micros(0)),
	}
	for _, s := range stmts {
		if _, err := old.ExecContext(c, s); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t)
	got := must1[assertd.Instance](t)(s.Instance(c, "db-lag", "fp1"))
	if v := got.Values; !math.IsNaN(v["nan"]) || !math.IsInf(v["inf"], 1) || !math.IsInf(v["ninf"], -1) {
		t.Errorf("non-finite values after the upgrade: %v", v)
	}
	delete(got.Values, "nan")
	want := assertd.Instance{Assert: "db-lag", Fingerprint: "fp1", Labels: assertd.Labels{"instance": "db1", "job": "node", "quote": `a"b{c}`},
		State: assertd.Violated, Since: at(-time.Hour), Reason: "lag 12.5s ≥ 10s", Values: map[string]float64{"lag_s": 12.5, "inf": math.Inf(1), "ninf": math.Inf(-1)},
		LastEval: at(0), ViolatedSince: at(-2 * time.Hour), ClearSince: at(-25 * time.Second)}
	eq(t, "db-lag after the upgrade", got, want)
	up := must1[assertd.Instance](t)(s.Instance(c, "db-up", "fp2"))
	eq(t, "db-up after the upgrade", up, assertd.Instance{Assert: "db-up", Fingerprint: "fp2", Labels: assertd.Labels{}, State: assertd.OK,
		Since: at(-time.Minute), Values: map[string]float64{}})
	bulk := must1[[]assertd.Instance](t)(s.Instances(c, "bulk"))
	if len(bulk) != 12345 {
		t.Fatalf("bulk: %d instances after the upgrade, want 12345", len(bulk))
	}
	seen := map[string]bool{}
	for _, in := range bulk {
		if "fp"+in.Labels["n"] != in.Fingerprint || in.State != assertd.OK || in.Values["v"] != 1 || in.Reason != "fine" || !in.LastEval.Equal(at(0)) {
			t.Fatalf("bulk instance after the upgrade: %+v", in)
		}
		seen[in.Fingerprint] = true
	}
	if len(seen) != 12345 {
		t.Errorf("bulk: %d distinct instances, want 12345", len(seen))
	}
	// The upgraded store takes writes as a new one does.
	want.State, want.Reason = assertd.OK, "recovered"
	must(t, s.PutInstance(c, want))
	got = must1[assertd.Instance](t)(s.Instance(c, "db-lag", "fp1"))
	eq(t, "db-lag stored after the upgrade", got, want)
	if all := must1[[]assertd.Instance](t)(s.Instances(c, "")); len(all) != 12347 {
		t.Errorf("%d instances, want 12347", len(all))
	}
}
