package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
	"github.com/assertd/assertd/web"
)

// During a store outage (the SQLite file is gone) the API shows a held
// change as held, with the state that is stored — not as its future state,
// nor as remediating — and nothing runs; once the file is back, the change
// is stored, shows as it is, and the remediation held back runs.
func TestHeldChangesShowAsHeld(t *testing.T) {
	e := newEnv(t)
	e.seed()
	db1 := e.instance("pg-connections", "db1")
	if db1.State != assertd.OK {
		t.Fatalf("db1 %+v", db1)
	}
	db := filepath.Join(filepath.Dir(e.config), "data", sqlite.File)
	files := []string{"", "-wal", "-shm"}
	move := func(from, to string) {
		for _, f := range files {
			if err := os.Rename(db+f+from, db+f+to); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	move("", ".moved")
	e.clock.Add(6 * time.Minute) // past the breaker's window of db3's violation
	e.sample("pg_free_connections", 2, "instance", "db1", "cluster", "main")
	e.eval()
	if e.eng.Held() == 0 {
		t.Fatal("nothing held while the store is gone")
	}
	var all instancesAnswer
	e.getJSON("/api/v1/instances?match="+web.URLEscape(`{instance="db1"}`)+"&assert=pg-connections", &all)
	if len(all.Instances) != 1 {
		t.Fatalf("instances %+v", all.Instances)
	}
	in := all.Instances[0]
	// (The remediation is not even decided while the store is away.)
	if !in.Held || in.State != assertd.OK || in.HeldState != assertd.Violated || strings.Contains(in.Reason, "allowed") {
		t.Fatalf("during the outage the API shows %+v", in)
	}
	var remediating instancesAnswer
	e.getJSON("/api/v1/instances?state=remediating", &remediating)
	if len(remediating.Instances) != 0 {
		t.Fatalf("remediating during the outage: %+v", remediating.Instances)
	}
	if e.run.InFlight() != 0 {
		t.Fatal("a run started without its record")
	}
	// The overview (which reads the engine, not the store) says so too.
	code, body := e.do("GET", "/?match="+web.URLEscape(`{instance="db1"}`)+"&assert=pg-connections", readSecret, "")
	if code != 200 || !strings.Contains(body, "held → violated") || !strings.Contains(body, `<span class="state st-ok">ok</span>`) {
		t.Fatalf("overview during the outage: %d %s", code, grepLines(body, "db1"))
	}

	move(".moved", "")
	health := e.st.(interface{ Health(context.Context) error })
	if err := health.Health(e.ctx); err != nil { // Health looks at the files now
		t.Fatalf("the store did not come back: %v", err)
	}
	e.clock.Add(15 * time.Second)
	e.eng.Tick(e.ctx, e.clock.Now()) // stores the held changes
	e.eval()                         // and the violation held back is decided
	in = e.instance("pg-connections", "db1")
	if in.Held || e.eng.Held() != 0 || in.State == assertd.OK {
		t.Fatalf("after the store came back: %+v, %d held", in, e.eng.Held())
	}
	if rs, err := e.st.Runs(e.ctx, store.RunFilter{}); err != nil || len(rs) == 0 || rs[0].Fingerprint != db1.Fingerprint {
		ds, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Fingerprint: db1.Fingerprint})
		t.Fatalf("the remediation held back did not run once the store was back: runs %+v %v; db1 %+v; decisions %+v", rs, err, in, ds)
	}
}
