package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func newRun(id, lockKey string, started time.Time) assertd.Run {
	return assertd.Run{ID: id, Remediation: "restart-api", Assert: "api", Fingerprint: "fp-" + lockKey,
		Labels: assertd.Labels{"instance": lockKey}, LockKey: lockKey, Status: assertd.RunRunning, Started: started}
}

func testRunLifecycle(t *testing.T, open Open) {
	s, c := open(t, "runs"), ctx(t)
	r := newRun("r1", "a", at(0))
	if !must1[bool](t)(s.CreateRun(c, r)) {
		t.Fatal("not created")
	}
	eq(t, "run", must1[assertd.Run](t)(s.Run(c, "r1")), r)

	long := strings.Repeat("x", store.MaxStepOutput) + "THE END"
	steps := []assertd.RunStep{
		{RunID: "r1", Seq: 0, Name: "restart", Attempt: 1, Started: at(time.Second), Outcome: assertd.StepRunning},
		{RunID: "r1", Seq: 1, Name: "settle", Attempt: 1, Started: at(3 * time.Second), Ended: at(23 * time.Second), Outcome: assertd.StepOK},
	}
	for _, st := range steps {
		must(t, s.PutStep(c, st))
	}
	// The step ends: the same (run, seq) is updated, and its output bounded.
	steps[0].Ended, steps[0].Outcome, steps[0].ExitCode, steps[0].Output = at(2*time.Second), assertd.StepOK, 0, long
	must(t, s.PutStep(c, steps[0]))
	got := must1[[]assertd.RunStep](t)(s.Steps(c, "r1"))
	if len(got) != 2 || got[0].Name != "restart" || got[1].Name != "settle" {
		t.Fatalf("steps %+v", got)
	}
	if len(got[0].Output) > store.MaxStepOutput || !strings.HasSuffix(got[0].Output, "THE END") || !strings.Contains(got[0].Output, "cut") {
		t.Errorf("output: %d bytes, want at most %d ending with the tail and saying it was cut", len(got[0].Output), store.MaxStepOutput)
	}
	got[0].Output, steps[0].Output = "", ""
	eq(t, "steps", got, steps)

	must(t, s.SetRunStatus(c, "r1", assertd.RunWaiting))
	if st := must1[assertd.Run](t)(s.Run(c, "r1")).Status; st != assertd.RunWaiting {
		t.Errorf("status %s", st)
	}
	wantErr(t, s.SetRunStatus(c, "r1", assertd.RunSucceeded), store.ErrInvalid)
	wantErr(t, s.FinishRun(c, "r1", assertd.RunRunning, at(time.Minute), ""), store.ErrInvalid)
	wantErr(t, s.FinishRun(c, "nope", assertd.RunFailed, at(time.Minute), ""), store.ErrNotFound)
	must(t, s.FinishRun(c, "r1", assertd.RunSucceeded, at(30*time.Second), "verified"))
	done := must1[assertd.Run](t)(s.Run(c, "r1"))
	if done.Status != assertd.RunSucceeded || done.Outcome != "verified" {
		t.Errorf("finished run %+v", done)
	}
	sameTime(t, "ended", done.Ended, at(30*time.Second))

	r2 := newRun("r2", "b", at(time.Minute))
	r2.Shadow = true
	must1[bool](t)(s.CreateRun(c, r2))
	runs := must1[[]assertd.Run](t)(s.Runs(c, store.RunFilter{Remediation: "restart-api"}))
	if len(runs) != 2 || runs[0].ID != "r2" || !runs[0].Shadow {
		t.Errorf("runs newest first: %+v", runs)
	}
	if runs := must1[[]assertd.Run](t)(s.Runs(c, store.RunFilter{Status: assertd.RunSucceeded})); len(runs) != 1 || runs[0].ID != "r1" {
		t.Errorf("runs by status: %+v", runs)
	}
	_, err := s.Run(c, "nope")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.PutStep(c, assertd.RunStep{RunID: "ghost", Name: "x", Started: at(0)}), store.ErrNotFound)
	_, err = s.CreateRun(c, assertd.Run{ID: "x"})
	wantErr(t, err, store.ErrInvalid)
}

func testInterruptOnRestart(t *testing.T, open Open) {
	s, c := open(t, "interrupt"), ctx(t)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.Remediating, at(-time.Minute))
	in.ViolatedSince = at(-3 * time.Minute)
	must(t, s.PutInstance(c, in))
	running := newRun("r-running", "a", at(-time.Minute))
	running.Fingerprint = in.Fingerprint
	waiting := newRun("r-waiting", "b", at(-time.Minute))
	waiting.Status = assertd.RunWaiting
	finished := newRun("r-done", "c", at(-time.Hour))
	for _, r := range []assertd.Run{running, waiting, finished} {
		must1[bool](t)(s.CreateRun(c, r))
	}
	must(t, s.FinishRun(c, "r-done", assertd.RunFailed, at(-50*time.Minute), "step restart failed"))
	must(t, s.Close())

	s = open(t, "interrupt")
	got := must1[[]assertd.Run](t)(s.InterruptRuns(c, at(0), "assertd restarted"))
	if len(got) != 2 || got[0].Status != assertd.RunInterrupted || got[1].Status != assertd.RunInterrupted {
		t.Fatalf("interrupted %+v", got)
	}
	for _, id := range []string{"r-running", "r-waiting"} {
		r := must1[assertd.Run](t)(s.Run(c, id))
		if r.Status != assertd.RunInterrupted || r.Outcome != "assertd restarted" {
			t.Errorf("%s: %+v", id, r)
		}
		sameTime(t, id+" ended", r.Ended, at(0))
	}
	if r := must1[assertd.Run](t)(s.Run(c, "r-done")); r.Status != assertd.RunFailed {
		t.Errorf("a finished run was touched: %+v", r)
	}
	inst := must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint))
	if inst.State != assertd.Uncertain || !strings.Contains(inst.Reason, "interrupted") {
		t.Errorf("instance after interrupt: %+v", inst)
	}
	sameTime(t, "uncertain since", inst.Since, at(0))
	trs := must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{Assert: "api", Fingerprint: in.Fingerprint}))
	if len(trs) != 1 || trs[0].From != assertd.Remediating || trs[0].To != assertd.Uncertain {
		t.Errorf("transitions %+v", trs)
	}
	// The waiting run's instance was not stored: it is created, uncertain.
	if inst := must1[assertd.Instance](t)(s.Instance(c, "api", "fp-b")); inst.State != assertd.Uncertain || inst.Labels["instance"] != "b" {
		t.Errorf("instance of the waiting run: %+v", inst)
	}
	// Idempotent: a second start finds nothing left running.
	if again := must1[[]assertd.Run](t)(s.InterruptRuns(c, at(time.Minute), "again")); len(again) != 0 {
		t.Errorf("second InterruptRuns: %+v", again)
	}
}

func testRunStats(t *testing.T, open Open) {
	s, c := open(t, "runstats"), ctx(t)
	empty := must1[store.RunStats](t)(s.RunStats(c, "restart-api", "a", at(-time.Hour)))
	if empty.Count != 0 || !empty.LastStart.IsZero() {
		t.Errorf("no runs: %+v", empty)
	}
	for i, start := range []time.Duration{-2 * time.Hour, -50 * time.Minute, -20 * time.Minute, -time.Minute} {
		must1[bool](t)(s.CreateRun(c, newRun(fmt.Sprintf("a%d", i), "a", at(start))))
	}
	must1[bool](t)(s.CreateRun(c, newRun("b1", "b", at(-time.Second)))) // another lock key
	shadow := newRun("shadow", "a", at(-10*time.Second))
	shadow.Shadow = true
	must1[bool](t)(s.CreateRun(c, shadow))
	refused := newRun("refused", "a", at(-5*time.Second))
	must1[bool](t)(s.CreateRun(c, refused))
	must(t, s.FinishRun(c, "refused", assertd.RunRefused, at(-4*time.Second), "approval denied"))
	other := newRun("other", "a", at(-2*time.Second))
	other.Remediation = "rollback-api"
	must1[bool](t)(s.CreateRun(c, other))

	st := must1[store.RunStats](t)(s.RunStats(c, "restart-api", "a", at(-time.Hour)))
	if st.Count != 3 {
		t.Errorf("count within 1h = %d, want 3", st.Count)
	}
	sameTime(t, "last start", st.LastStart, at(-time.Minute))
	if st := must1[store.RunStats](t)(s.RunStats(c, "restart-api", "a", at(-time.Minute))); st.Count != 1 {
		t.Errorf("count since exactly the last start = %d, want 1 (inclusive)", st.Count)
	}
}

func testLocks(t *testing.T, open Open) {
	s, c := open(t, "locks"), ctx(t)
	l, ok, err := s.AcquireLock(c, "api/a", "replica-1", at(0), time.Minute)
	must(t, err)
	if !ok || l.Owner != "replica-1" || l.Token != 1 {
		t.Fatalf("first acquire: %v %+v", ok, l)
	}
	sameTime(t, "expires", l.Expires, at(time.Minute))
	l, ok, err = s.AcquireLock(c, "api/a", "replica-2", at(30*time.Second), time.Minute)
	must(t, err)
	if ok || l.Owner != "replica-1" {
		t.Fatalf("a held lock was taken: %v %+v", ok, l)
	}
	// The owner renews in time: same token, later expiry, same acquisition.
	l, ok, err = s.AcquireLock(c, "api/a", "replica-1", at(50*time.Second), time.Minute)
	must(t, err)
	if !ok || l.Token != 1 {
		t.Fatalf("renew: %v %+v", ok, l)
	}
	sameTime(t, "renewed expiry", l.Expires, at(110*time.Second))
	sameTime(t, "acquired kept", l.Acquired, at(0))
	// Still held at 100s; expired at 110s exactly.
	if _, ok, _ := s.AcquireLock(c, "api/a", "replica-2", at(100*time.Second), time.Minute); ok {
		t.Fatal("taken before expiry")
	}
	l, ok, err = s.AcquireLock(c, "api/a", "replica-2", at(110*time.Second), time.Minute)
	must(t, err)
	if !ok || l.Owner != "replica-2" || l.Token != 2 {
		t.Fatalf("after expiry: %v %+v (the fencing token must grow)", ok, l)
	}
	// Only the owner can release.
	must(t, s.ReleaseLock(c, "api/a", "replica-1", at(120*time.Second)))
	if _, ok, _ := s.AcquireLock(c, "api/a", "replica-3", at(120*time.Second), time.Minute); ok {
		t.Fatal("a non-owner released the lock")
	}
	must(t, s.ReleaseLock(c, "api/a", "replica-2", at(121*time.Second)))
	l, ok, err = s.AcquireLock(c, "api/a", "replica-3", at(122*time.Second), time.Minute)
	must(t, err)
	if !ok || l.Token != 3 {
		t.Fatalf("after release: %v %+v", ok, l)
	}
	got := must1[assertd.Lock](t)(s.Lock(c, "api/a"))
	eq(t, "lock", got, l)
	_, err = s.Lock(c, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, _, err = s.AcquireLock(c, "k", "", at(0), time.Minute)
	wantErr(t, err, store.ErrInvalid)
}

func testLocksConcurrent(t *testing.T, open Open) {
	s, c := open(t, "lockrace"), ctx(t)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("replica-%d", i)
			_, ok, err := s.AcquireLock(c, "failover/db", owner, at(0), time.Minute)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				mu.Lock()
				winners = append(winners, owner)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(winners) != 1 {
		t.Fatalf("%d owners got the lock: %v", len(winners), winners)
	}
	if l := must1[assertd.Lock](t)(s.Lock(c, "failover/db")); l.Owner != winners[0] {
		t.Errorf("stored owner %s, winner %s", l.Owner, winners[0])
	}
}

func testApprovals(t *testing.T, open Open) {
	s, c := open(t, "approvals"), ctx(t)
	wantErr(t, s.RequestApproval(c, assertd.Approval{RunID: "ghost", Requested: at(0), Expires: at(time.Minute)}), store.ErrNotFound)
	for _, id := range []string{"r1", "r2", "r3"} {
		r := newRun(id, id, at(0))
		r.Status = assertd.RunWaiting
		must1[bool](t)(s.CreateRun(c, r))
		must(t, s.RequestApproval(c, assertd.Approval{RunID: id, Requested: at(0), Expires: at(15 * time.Minute)}))
	}
	must(t, s.RequestApproval(c, assertd.Approval{RunID: "r1", Requested: at(time.Second), Expires: at(time.Hour)})) // no-op
	a := must1[assertd.Approval](t)(s.Approval(c, "r1"))
	sameTime(t, "a repeated request does not move the expiry", a.Expires, at(15*time.Minute))
	if n := len(must1[[]assertd.Approval](t)(s.PendingApprovals(c))); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}

	must(t, s.DecideApproval(c, "r1", "alice", true, at(time.Minute), "go ahead"))
	must(t, s.DecideApproval(c, "r2", "bob", false, at(2*time.Minute), "not during the sale"))
	wantErr(t, s.DecideApproval(c, "r1", "mallory", false, at(3*time.Minute), ""), store.ErrConflict)
	wantErr(t, s.DecideApproval(c, "r3", "alice", true, at(15*time.Minute), "late"), store.ErrConflict)
	wantErr(t, s.DecideApproval(c, "ghost", "alice", true, at(0), ""), store.ErrNotFound)

	a = must1[assertd.Approval](t)(s.Approval(c, "r1"))
	if !a.Approved || a.By != "alice" || a.Comment != "go ahead" {
		t.Errorf("approval %+v", a)
	}
	sameTime(t, "decided", a.Decided, at(time.Minute))
	if a := must1[assertd.Approval](t)(s.Approval(c, "r2")); a.Approved || a.By != "bob" {
		t.Errorf("denial %+v", a)
	}
	pending := must1[[]assertd.Approval](t)(s.PendingApprovals(c))
	if len(pending) != 1 || pending[0].RunID != "r3" {
		t.Errorf("pending %+v (the expired one stays, for the engine to page)", pending)
	}
	log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Target: "r1"}))
	if len(log) != 1 || log[0].Actor != "alice" || log[0].Action != "run.approve" || log[0].Reason != "go ahead" {
		t.Errorf("audit %+v", log)
	}
}
