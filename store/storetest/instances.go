package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func testInstanceRoundTrip(t *testing.T, open Open) {
	s, c := open(t, "instances"), ctx(t)
	berlin := time.FixedZone("CET", 3600)
	in := assertd.Instance{
		Assert:        "api-latency-p99",
		Fingerprint:   "fp1",
		Labels:        assertd.Labels{"instance": "api-1:9100", "team": "web", "quote": `a"b{c}`},
		State:         assertd.Pending,
		Since:         at(-90 * time.Second).In(berlin), // another zone: stored as UTC
		Reason:        "p99_ms 61.5 ≥ 50 — waiting out for: 1m",
		Values:        map[string]float64{"p99_ms": 61.5, "tiny": 1e-300, "neg": -0.25, "inf": math.Inf(1), "ninf": math.Inf(-1), "nan": math.NaN()},
		LastEval:      at(0),
		ViolatedSince: at(-90*time.Second + 123*time.Microsecond),
	}
	must(t, s.PutInstance(c, in))
	got := must1[assertd.Instance](t)(s.Instance(c, "api-latency-p99", "fp1"))
	if !math.IsNaN(got.Values["nan"]) || !math.IsInf(got.Values["inf"], 1) || !math.IsInf(got.Values["ninf"], -1) {
		t.Errorf("non-finite values did not round-trip: %v", got.Values)
	}
	delete(got.Values, "nan")
	want := in
	want.Values = map[string]float64{"p99_ms": 61.5, "tiny": 1e-300, "neg": -0.25, "inf": math.Inf(1), "ninf": math.Inf(-1)}
	eq(t, "instance", got, want)
	sameTime(t, "since (exact, microseconds)", got.Since, in.Since)
	if got.Since.Location() != time.UTC {
		t.Errorf("since comes back in %v, want UTC", got.Since.Location())
	}
	if !got.ClearSince.IsZero() {
		t.Errorf("an unset clear_for clock came back as %v", got.ClearSince)
	}

	// Upsert: the same key replaces the state; clocks can be cleared.
	in2 := in
	in2.State, in2.Since, in2.ViolatedSince, in2.ClearSince = assertd.OK, at(time.Minute), time.Time{}, at(30*time.Second)
	in2.Values = map[string]float64{"p99_ms": 12}
	must(t, s.PutInstance(c, in2))
	got = must1[assertd.Instance](t)(s.Instance(c, "api-latency-p99", "fp1"))
	eq(t, "instance after upsert", got, in2)

	other := instance("api-up", assertd.Labels{"instance": "b"}, assertd.OK, at(0))
	first := instance("aaa", assertd.Labels{"instance": "z"}, assertd.Violated, at(0))
	must(t, s.PutInstance(c, other))
	must(t, s.PutInstance(c, first))
	all := must1[[]assertd.Instance](t)(s.Instances(c, ""))
	if len(all) != 3 || all[0].Assert != "aaa" || all[1].Assert != "api-latency-p99" || all[2].Assert != "api-up" {
		t.Errorf("Instances: want 3 ordered by assert, got %+v", all)
	}
	one := must1[[]assertd.Instance](t)(s.Instances(c, "api-up"))
	if len(one) != 1 || one[0].Fingerprint != other.Fingerprint {
		t.Errorf("Instances(api-up) = %+v", one)
	}

	must(t, s.DeleteInstance(c, "api-up", other.Fingerprint))
	_, err := s.Instance(c, "api-up", other.Fingerprint)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.PutInstance(c, assertd.Instance{Assert: "x"}), store.ErrInvalid)
}

// Input that PostgreSQL's text type refuses (NUL, invalid UTF-8) is stored
// the same way by every store, instead of failing on one of them.
func testUncleanInput(t *testing.T, open Open) {
	s, c := open(t, "unclean"), ctx(t)
	in := instance("a", assertd.Labels{"bad": "x\x00y\xff"}, assertd.Violated, at(0))
	in.Reason = "nul\x00 and \xc3\x28 invalid"
	must(t, s.PutInstance(c, in))
	got := must1[assertd.Instance](t)(s.Instance(c, "a", in.Fingerprint))
	if got.Reason != "nul\uFFFD and \uFFFD( invalid" {
		t.Errorf("reason = %q", got.Reason)
	}
	if got.Labels["bad"] != "x\x00y\uFFFD" { // JSON keeps the NUL as \u0000
		t.Errorf("label = %q", got.Labels["bad"])
	}
	// A lookup with the same unclean key finds it.
	if _, err := s.Instance(c, "a\x00", "nope"); err == nil {
		t.Error("found an instance that does not exist")
	}
}

func testRestartReloadsState(t *testing.T, open Open) {
	s, c := open(t, "restart"), ctx(t)
	l := assertd.Labels{"instance": "db1"}
	in := instance("db-up", l, assertd.OK, at(-time.Hour))
	_, ch := transition(in, assertd.Pending, at(-40*time.Second))
	ch.Instance.ViolatedSince = at(-40 * time.Second)
	_, err := s.Commit(c, ch)
	must(t, err)
	clearing := instance("db-lag", l, assertd.Violated, at(-time.Hour))
	clearing.ViolatedSince, clearing.ClearSince = at(-time.Hour), at(-25*time.Second)
	must(t, s.PutInstance(c, clearing))
	must(t, s.Close())

	s2 := open(t, "restart")
	all := must1[[]assertd.Instance](t)(s2.Instances(c, ""))
	if len(all) != 2 {
		t.Fatalf("after restart: %d instances, want 2", len(all))
	}
	eq(t, "db-lag after restart", all[0], clearing)
	// The clocks continue from the stored times: 40s of for: already spent.
	sameTime(t, "for clock", all[1].ViolatedSince, at(-40*time.Second))
	sameTime(t, "clear_for clock", all[0].ClearSince, at(-25*time.Second))
	if all[1].State != assertd.Pending {
		t.Errorf("state after restart = %s", all[1].State)
	}
}

func testTransitionHistory(t *testing.T, open Open) {
	s, c := open(t, "history"), ctx(t)
	a := instance("api", assertd.Labels{"instance": "a"}, assertd.OK, at(-time.Hour))
	b := instance("api", assertd.Labels{"instance": "b"}, assertd.OK, at(-time.Hour))
	d := instance("disk", assertd.Labels{"instance": "a"}, assertd.OK, at(-time.Hour))
	var ch store.Change
	// Committed out of time order on purpose: history is ordered by time.
	a, ch = transition(a, assertd.Pending, at(10*time.Second))
	must1[store.CommitResult](t)(s.Commit(c, ch))
	b, ch = transition(b, assertd.Uncertain, at(5*time.Second))
	must1[store.CommitResult](t)(s.Commit(c, ch))
	a, ch = transition(a, assertd.Violated, at(70*time.Second))
	must1[store.CommitResult](t)(s.Commit(c, ch))
	_, ch = transition(d, assertd.Violated, at(20*time.Second))
	must1[store.CommitResult](t)(s.Commit(c, ch))
	_, ch = transition(a, assertd.Remediating, at(70*time.Second)) // same time as the previous: by ID
	must1[store.CommitResult](t)(s.Commit(c, ch))

	order := func(f store.TransitionFilter) []string {
		var out []string
		for _, tr := range must1[[]assertd.Transition](t)(s.Transitions(c, f)) {
			out = append(out, tr.Assert+"/"+tr.Labels["instance"]+":"+string(tr.To))
		}
		return out
	}
	eq(t, "all, newest first", order(store.TransitionFilter{}),
		[]string{"api/a:remediating", "api/a:violated", "disk/a:violated", "api/a:pending", "api/b:uncertain"})
	eq(t, "assert api", order(store.TransitionFilter{Assert: "api"}),
		[]string{"api/a:remediating", "api/a:violated", "api/a:pending", "api/b:uncertain"})
	eq(t, "one instance", order(store.TransitionFilter{Assert: "api", Fingerprint: b.Fingerprint}), []string{"api/b:uncertain"})
	eq(t, "to violated", order(store.TransitionFilter{To: assertd.Violated}), []string{"api/a:violated", "disk/a:violated"})
	eq(t, "since/until", order(store.TransitionFilter{Since: at(10 * time.Second), Until: at(70 * time.Second)}),
		[]string{"disk/a:violated", "api/a:pending"})
	eq(t, "limit", order(store.TransitionFilter{Limit: 2}), []string{"api/a:remediating", "api/a:violated"})

	trs := must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{Assert: "api", Fingerprint: b.Fingerprint}))
	want := assertd.Transition{ID: trs[0].ID, Assert: "api", Fingerprint: b.Fingerprint, Labels: b.Labels, From: assertd.OK,
		To: assertd.Uncertain, At: at(5 * time.Second), Reason: "ok -> uncertain", Values: b.Values}
	eq(t, "transition", trs[0], want)
	if trs[0].ID == 0 {
		t.Error("transition has no ID")
	}
}

func testCommitAtomic(t *testing.T, open Open) {
	s, c := open(t, "commit"), ctx(t)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.Pending, at(-time.Minute))
	in, ch := transition(in, assertd.Violated, at(0))
	ch.Decision = &assertd.Decision{Assert: in.Assert, Fingerprint: in.Fingerprint, At: at(0), Action: assertd.ActEscalate,
		Policy: "web-oncall", Reason: "no remediation"}
	ch.Messages = []assertd.Message{
		{Channel: "slack", DedupKey: "api/" + in.Fingerprint, Kind: "trigger", Payload: `{"text":"api violated"}`},
		{Channel: "pagerduty", DedupKey: "api/" + in.Fingerprint, Kind: "trigger", Payload: `{}`},
	}
	res := must1[store.CommitResult](t)(s.Commit(c, ch))
	if !res.Applied || res.TransitionID == 0 || res.DecisionID == 0 || len(res.MessageIDs) != 2 {
		t.Fatalf("commit result %+v", res)
	}
	got := must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint))
	eq(t, "instance", got, in)
	ds := must1[[]assertd.Decision](t)(s.Decisions(c, store.DecisionFilter{Assert: "api"}))
	if len(ds) != 1 || ds[0].Key != ch.Key || ds[0].Policy != "web-oncall" || ds[0].ID != res.DecisionID {
		t.Errorf("decisions %+v", ds)
	}
	sameTime(t, "an escalation needs no run: acted at", ds[0].ActedAt, at(0))
	m := must1[assertd.Message](t)(s.Message(c, res.MessageIDs[0]))
	if m.Key != ch.Key+"/0" || m.Status != assertd.MsgPending || m.Channel != "slack" || m.MaxAttempts != store.DefaultAttempts {
		t.Errorf("message %+v", m)
	}
	sameTime(t, "message created", m.Created, at(0))
	sameTime(t, "message due", m.NextAttempt, at(0))

	// A change that fails inside its transaction (its decision key belongs
	// to the change above) writes nothing at all.
	in2, ch2 := transition(in, assertd.Remediating, at(time.Minute))
	ch2.Decision = &assertd.Decision{Key: ch.Key, Assert: in.Assert, Fingerprint: in.Fingerprint, At: at(time.Minute), Action: assertd.ActNotify}
	ch2.Messages = []assertd.Message{{Channel: "slack", Kind: "info", Payload: "x"}}
	_, err := s.Commit(c, ch2)
	wantErr(t, err, store.ErrConflict)
	got = must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint))
	if got.State != assertd.Violated {
		t.Errorf("failed commit changed the instance to %s", got.State)
	}
	if n := len(must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{}))); n != 1 {
		t.Errorf("failed commit left %d transitions, want 1", n)
	}
	if n := len(must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{}))); n != 2 {
		t.Errorf("failed commit left %d messages, want 2", n)
	}
	// Its key was not used up: fixed, the same change commits.
	ch2.Decision.Key = ""
	res2 := must1[store.CommitResult](t)(s.Commit(c, ch2))
	if !res2.Applied {
		t.Error("the fixed change was not applied")
	}
	got = must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint))
	eq(t, "instance after the fixed change", got, in2)
}

func testCommitIdempotent(t *testing.T, open Open) {
	s, c := open(t, "idem"), ctx(t)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.Pending, at(-time.Minute))
	_, ch := transition(in, assertd.Violated, at(0))
	ch.Decision = &assertd.Decision{Assert: "api", Fingerprint: in.Fingerprint, At: at(0), Action: assertd.ActRemediate, Remediation: "restart-api"}
	ch.Messages = []assertd.Message{{Channel: "slack", Kind: "info", Payload: "restarting"}}
	first := must1[store.CommitResult](t)(s.Commit(c, ch))
	// The engine crashed before it knew the commit succeeded, and commits
	// again (perhaps having re-evaluated a slightly different reason).
	again := ch
	tr := *ch.Transition
	tr.Reason = "re-evaluated"
	again.Transition = &tr
	second := must1[store.CommitResult](t)(s.Commit(c, again))
	if !first.Applied || second.Applied {
		t.Fatalf("applied: first %v, second %v; want true, false", first.Applied, second.Applied)
	}
	trs := must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{}))
	if len(trs) != 1 || trs[0].Reason != "pending -> violated" {
		t.Errorf("transitions after re-commit: %+v", trs)
	}
	if n := len(must1[[]assertd.Decision](t)(s.Decisions(c, store.DecisionFilter{}))); n != 1 {
		t.Errorf("%d decisions, want 1", n)
	}
	if n := len(must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{}))); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if n := len(must1[[]assertd.Decision](t)(s.PendingDecisions(c))); n != 1 {
		t.Errorf("%d pending decisions, want 1 (the action is owed once)", n)
	}
}

func testCommitInvalid(t *testing.T, open Open) {
	s, c := open(t, "invalid"), ctx(t)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.OK, at(0))
	for name, ch := range map[string]store.Change{
		"no key":             {Instance: &in},
		"no time":            {Key: "k1", Messages: []assertd.Message{{Channel: "x"}}},
		"transition no time": {Key: "k2", Transition: &assertd.Transition{Assert: "a", Fingerprint: "f"}, At: at(0)},
		"decision no action": {Key: "k3", Decision: &assertd.Decision{At: at(0)}},
		"message no channel": {Key: "k4", At: at(0), Messages: []assertd.Message{{Kind: "info"}}},
		"instance no assert": {Key: "k5", Instance: &assertd.Instance{LastEval: at(0)}},
	} {
		_, err := s.Commit(c, ch)
		if err == nil {
			t.Errorf("%s: committed", name)
			continue
		}
		wantErr(t, err, store.ErrInvalid)
	}
	if n := len(must1[[]assertd.Instance](t)(s.Instances(c, ""))); n != 0 {
		t.Errorf("invalid changes wrote %d instances", n)
	}
}

func testWriteAheadDecisions(t *testing.T, open Open) {
	s, c := open(t, "writeahead"), ctx(t)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.Pending, at(-time.Minute))
	in, ch := transition(in, assertd.Violated, at(0))
	ch.Decision = &assertd.Decision{Assert: "api", Fingerprint: in.Fingerprint, At: at(0), Action: assertd.ActRemediate, Remediation: "restart-api"}
	must1[store.CommitResult](t)(s.Commit(c, ch))
	must(t, s.Close())

	// Crash between commit and action: after the restart, the action is owed.
	s = open(t, "writeahead")
	owed := must1[[]assertd.Decision](t)(s.PendingDecisions(c))
	if len(owed) != 1 || owed[0].Key != ch.Key || owed[0].Remediation != "restart-api" || !owed[0].ActedAt.IsZero() {
		t.Fatalf("owed decisions %+v", owed)
	}
	// The run's ID is derived from the decision, so doing it twice (the
	// crash came after the action this time) cannot double it.
	run := assertd.Run{ID: "run-" + in.Fingerprint + "-1", Remediation: "restart-api", Assert: "api", Fingerprint: in.Fingerprint,
		Labels: in.Labels, LockKey: "a", DecisionKey: owed[0].Key, Status: assertd.RunRunning, Started: at(time.Second)}
	if created := must1[bool](t)(s.CreateRun(c, run)); !created {
		t.Fatal("first CreateRun: not created")
	}
	if created := must1[bool](t)(s.CreateRun(c, run)); created {
		t.Fatal("second CreateRun with the same ID created another run")
	}
	if n := len(must1[[]assertd.Run](t)(s.Runs(c, store.RunFilter{}))); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
	if owed := must1[[]assertd.Decision](t)(s.PendingDecisions(c)); len(owed) != 0 {
		t.Errorf("still owed after the run: %+v", owed)
	}
	d := must1[[]assertd.Decision](t)(s.Decisions(c, store.DecisionFilter{Action: assertd.ActRemediate}))[0]
	if d.RunID != run.ID {
		t.Errorf("decision run id = %q", d.RunID)
	}
	sameTime(t, "decision acted at", d.ActedAt, at(time.Second))
}
