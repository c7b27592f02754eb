package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func testHeartbeats(t *testing.T, open Open) {
	s, c := open(t, "heartbeats"), ctx(t)
	h := assertd.HeartbeatRecord{Name: "nightly-backup", Created: at(-24 * time.Hour), LastPing: at(-time.Hour),
		LastSuccess: at(-time.Hour), LastExit: 0}
	must(t, s.PutHeartbeat(c, h))
	eq(t, "heartbeat", must1[assertd.HeartbeatRecord](t)(s.Heartbeat(c, "nightly-backup")), h)
	_, err := s.Heartbeat(c, "nope")
	wantErr(t, err, store.ErrNotFound)

	var lastID int64
	for i := range store.PingsKept + 5 {
		when := at(time.Duration(i) * time.Minute)
		h.LastPing = when
		p := assertd.Ping{Heartbeat: h.Name, Kind: assertd.PingExit, ExitCode: i % 3, At: when, RunID: fmt.Sprint("rid-", i), Source: "10.0.0.7"}
		if i%3 == 0 {
			h.LastSuccess = when
		}
		if i == store.PingsKept+4 {
			p.Body = strings.Repeat("é", store.MaxPingBody) // 2 bytes each: must be cut on a rune boundary
			h.Failed, h.LastExit, h.LastStart, h.StartRunID = true, 2, at(-time.Minute), "rid-x"
		}
		lastID = must1[int64](t)(s.RecordPing(c, h, p))
	}
	eq(t, "heartbeat after pings", must1[assertd.HeartbeatRecord](t)(s.Heartbeat(c, h.Name)), h)
	pings := must1[[]assertd.Ping](t)(s.Pings(c, h.Name, 0))
	if len(pings) != store.PingsKept {
		t.Fatalf("%d pings kept, want %d", len(pings), store.PingsKept)
	}
	newest := pings[0]
	if newest.ID != lastID || newest.RunID != fmt.Sprint("rid-", store.PingsKept+4) || newest.Kind != assertd.PingExit || newest.Source != "10.0.0.7" {
		t.Errorf("newest ping %+v", newest)
	}
	sameTime(t, "newest ping at", newest.At, at(time.Duration(store.PingsKept+4)*time.Minute))
	if len(newest.Body) > store.MaxPingBody || len(newest.Body) < store.MaxPingBody-1 || !strings.HasPrefix(newest.Body, "éé") ||
		strings.ContainsRune(newest.Body, '\uFFFD') {
		t.Errorf("body: %d bytes, want the first %d cut on a rune", len(newest.Body), store.MaxPingBody)
	}
	if oldest := pings[len(pings)-1]; oldest.RunID != "rid-5" {
		t.Errorf("oldest kept ping %s, want rid-5", oldest.RunID)
	}
	if got := must1[[]assertd.Ping](t)(s.Pings(c, h.Name, 3)); len(got) != 3 || got[0].ID != lastID {
		t.Errorf("3 newest: %+v", got)
	}
	// Another heartbeat's pings are its own.
	must1[int64](t)(s.RecordPing(c, assertd.HeartbeatRecord{Name: "cron-a", Created: at(0)}, assertd.Ping{Kind: assertd.PingStart, At: at(0)}))
	if got := must1[[]assertd.Ping](t)(s.Pings(c, "cron-a", 10)); len(got) != 1 || got[0].Heartbeat != "cron-a" {
		t.Errorf("cron-a pings %+v", got)
	}
	if n := len(must1[[]assertd.Ping](t)(s.Pings(c, h.Name, 0))); n != store.PingsKept {
		t.Errorf("another heartbeat's ping pruned this one's: %d", n)
	}
	all := must1[[]assertd.HeartbeatRecord](t)(s.Heartbeats(c))
	if len(all) != 2 || all[0].Name != "cron-a" || all[1].Name != "nightly-backup" {
		t.Errorf("heartbeats %+v", all)
	}
	_, err = s.RecordPing(c, h, assertd.Ping{Heartbeat: "other", At: at(0)})
	wantErr(t, err, store.ErrInvalid)
}

func testSilences(t *testing.T, open Open) {
	s, c := open(t, "silences"), ctx(t)
	oneOff := assertd.Silence{ID: "s1", Matchers: []assertd.Matcher{{Name: "instance", Op: assertd.MatchRegexp, Value: "db[12]"},
		{Name: "env", Op: assertd.MatchNotEqual, Value: "prod"}},
		Start: at(0), End: at(2 * time.Hour), Author: "alice", Comment: "disk swap", Created: at(-time.Minute)}
	window := assertd.Silence{ID: "s2", Matchers: []assertd.Matcher{{Name: "team", Op: assertd.MatchEqual, Value: "dba"}},
		Start: at(-24 * time.Hour), Cron: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Duration: assertd.Duration(2 * time.Hour),
		Author: "bob", Comment: "weekly maintenance", Created: at(-24 * time.Hour)}
	must(t, s.PutSilence(c, oneOff))
	must(t, s.PutSilence(c, window))
	eq(t, "one-off", must1[assertd.Silence](t)(s.Silence(c, "s1")), oneOff)
	eq(t, "recurring", must1[assertd.Silence](t)(s.Silence(c, "s2")), window)

	bad := oneOff
	bad.ID, bad.Matchers = "bad", []assertd.Matcher{{Name: "x", Op: assertd.MatchRegexp, Value: "("}}
	wantErr(t, s.PutSilence(c, bad), store.ErrInvalid)
	bad.Matchers, bad.End = oneOff.Matchers, at(-time.Hour)
	wantErr(t, s.PutSilence(c, bad), store.ErrInvalid)
	_, err := s.Silence(c, "bad")
	wantErr(t, err, store.ErrNotFound)

	list := must1[[]assertd.Silence](t)(s.Silences(c, at(time.Hour), false))
	if len(list) != 2 || list[0].ID != "s2" || list[1].ID != "s1" {
		t.Fatalf("silences %+v", list)
	}
	// After its end, the one-off is expired and not listed.
	if list := must1[[]assertd.Silence](t)(s.Silences(c, at(2*time.Hour), false)); len(list) != 1 || list[0].ID != "s2" {
		t.Errorf("at its end: %+v", list)
	}
	// Updating (same ID) replaces it.
	oneOff.End, oneOff.Comment = at(3*time.Hour), "disk swap takes longer"
	must(t, s.PutSilence(c, oneOff))
	if list := must1[[]assertd.Silence](t)(s.Silences(c, at(2*time.Hour), false)); len(list) != 2 {
		t.Errorf("after extending: %+v", list)
	}
	must(t, s.ExpireSilence(c, "s1", "carol", at(90*time.Minute)))
	got := must1[assertd.Silence](t)(s.Silence(c, "s1"))
	sameTime(t, "expired end", got.End, at(90*time.Minute))
	if list := must1[[]assertd.Silence](t)(s.Silences(c, at(90*time.Minute), false)); len(list) != 1 || list[0].ID != "s2" {
		t.Errorf("after expiry: %+v", list)
	}
	if list := must1[[]assertd.Silence](t)(s.Silences(c, at(90*time.Minute), true)); len(list) != 2 {
		t.Errorf("with expired: %+v", list)
	}
	wantErr(t, s.ExpireSilence(c, "nope", "carol", at(0)), store.ErrNotFound)
	log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Target: "s1"}))
	if len(log) != 3 || log[0].Action != "silence.expire" || log[0].Actor != "carol" || log[2].Action != "silence.put" || log[2].Actor != "alice" {
		t.Errorf("silence audit %+v", log)
	}
}

func testSettings(t *testing.T, open Open) {
	s, c := open(t, "settings"), ctx(t)
	if got := must1[[]assertd.Setting](t)(s.Settings(c)); len(got) != 0 {
		t.Fatalf("settings of a new store: %+v", got)
	}
	kill := assertd.Setting{Key: assertd.SettingKillSwitch, Value: "on", Updated: at(0), By: "alice", Reason: "AZ outage"}
	must(t, s.PutSetting(c, kill))
	must(t, s.PutSetting(c, assertd.Setting{Key: assertd.SettingMaxConcurrentRuns, Value: "4", Updated: at(time.Second), By: "alice"}))
	must(t, s.PutSetting(c, assertd.Setting{Key: assertd.SettingRunBudget, Value: "20/1h", Updated: at(time.Second), By: "alice"}))
	must(t, s.PutSetting(c, assertd.Setting{Key: assertd.SettingRatePrefix + "restart-api", Value: "3/1h", Updated: at(time.Second), By: "alice"}))
	kill.Value, kill.Updated, kill.By, kill.Reason = "off", at(time.Hour), "bob", "AZ back"
	must(t, s.PutSetting(c, kill)) // changed while running
	got := must1[[]assertd.Setting](t)(s.Settings(c))
	if len(got) != 4 {
		t.Fatalf("settings %+v", got)
	}
	eq(t, "kill switch", got[0], kill)
	if got[1].Key != assertd.SettingRatePrefix+"restart-api" || got[3].Key != assertd.SettingMaxConcurrentRuns || got[3].Value != "4" {
		t.Errorf("settings by key: %+v", got)
	}
	for _, bad := range []assertd.Setting{
		{Key: assertd.SettingKillSwitch, Value: "maybe", Updated: at(0), By: "x"},
		{Key: assertd.SettingRunBudget, Value: "20 per hour", Updated: at(0), By: "x"},
		{Key: "no.such.setting", Value: "1", Updated: at(0), By: "x"},
		{Key: assertd.SettingMaxConcurrentRuns, Value: "4", Updated: at(0)},
	} {
		wantErr(t, s.PutSetting(c, bad), store.ErrInvalid)
	}
	must(t, s.DeleteSetting(c, assertd.SettingRunBudget, "bob", at(2*time.Hour), "back to the config"))
	wantErr(t, s.DeleteSetting(c, assertd.SettingRunBudget, "bob", at(2*time.Hour), ""), store.ErrNotFound)
	if n := len(must1[[]assertd.Setting](t)(s.Settings(c))); n != 3 {
		t.Errorf("%d settings after delete", n)
	}
	log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Target: assertd.SettingKillSwitch}))
	if len(log) != 2 || log[0].Actor != "bob" || log[0].Detail != "off" || log[1].Reason != "AZ outage" {
		t.Errorf("kill switch audit %+v", log)
	}
}

func testAudit(t *testing.T, open Open) {
	s, c := open(t, "audit"), ctx(t)
	entries := []assertd.AuditEntry{
		{At: at(0), Actor: "alice", Action: "run.start", Target: "restart-api", Reason: "manual, INC-42"},
		{At: at(2 * time.Second), Actor: "bob", Action: "ack", Target: "api/fp1"},
		{At: at(time.Second), Actor: "alice", Action: "ack", Target: "api/fp2", Detail: `{"via":"slack"}`},
	}
	for i := range entries {
		entries[i].ID = must1[int64](t)(s.Audit(c, entries[i]))
	}
	got := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{}))
	eq(t, "newest first", got, []assertd.AuditEntry{entries[1], entries[2], entries[0]})
	eq(t, "by actor", must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Actor: "alice"})), []assertd.AuditEntry{entries[2], entries[0]})
	eq(t, "by action", must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Action: "ack", Limit: 1})), []assertd.AuditEntry{entries[1]})
	_, err := s.Audit(c, assertd.AuditEntry{At: at(0), Action: "x"})
	wantErr(t, err, store.ErrInvalid)
}

func testCompact(t *testing.T, open Open) {
	s, c := open(t, "compact"), ctx(t)
	old, recent := at(-40*24*time.Hour), at(-time.Hour)
	cut := at(-store.DefaultRetention)
	in := instance("api", assertd.Labels{"instance": "a"}, assertd.OK, old.Add(-time.Hour))
	// Old: a state change (kept), a same-state update (deleted).
	in, ch := transition(in, assertd.Violated, old)
	ch.Decision = &assertd.Decision{Assert: "api", Fingerprint: in.Fingerprint, At: old, Action: assertd.ActEscalate}
	ch.Messages = []assertd.Message{{Channel: "slack", Kind: "trigger"}, {Channel: "webhook", Kind: "trigger"}}
	res := must1[store.CommitResult](t)(s.Commit(c, ch))
	in, ch = transition(in, assertd.Violated, old.Add(time.Minute))
	must1[store.CommitResult](t)(s.Commit(c, ch))
	// Old but still owed: kept.
	_, ch = transition(in, assertd.Remediating, old.Add(2*time.Minute))
	ch.Decision = &assertd.Decision{Assert: "api", Fingerprint: in.Fingerprint, At: old.Add(2 * time.Minute), Action: assertd.ActRemediate}
	must1[store.CommitResult](t)(s.Commit(c, ch))
	// Recent: kept whatever it is.
	_, ch = transition(in, assertd.Violated, recent)
	must1[store.CommitResult](t)(s.Commit(c, ch))
	must(t, s.Ack(c, res.MessageIDs[0], "d", old, "ts")) // delivered, old: deleted
	// (the second old message is still pending: kept)

	oldRun, liveRun := newRun("old", "a", old), newRun("live", "b", old)
	must1[bool](t)(s.CreateRun(c, oldRun))
	must1[bool](t)(s.CreateRun(c, liveRun))
	must(t, s.PutStep(c, assertd.RunStep{RunID: "old", Seq: 0, Name: "restart", Started: old, Ended: old, Outcome: assertd.StepOK}))
	must(t, s.PutStep(c, assertd.RunStep{RunID: "live", Seq: 0, Name: "restart", Started: old, Outcome: assertd.StepRunning}))
	must(t, s.FinishRun(c, "old", assertd.RunSucceeded, old.Add(time.Minute), "verified"))
	hb := assertd.HeartbeatRecord{Name: "hb", Created: old}
	must1[int64](t)(s.RecordPing(c, hb, assertd.Ping{Kind: assertd.PingSuccess, At: old}))
	must1[int64](t)(s.RecordPing(c, hb, assertd.Ping{Kind: assertd.PingSuccess, At: recent}))
	must(t, s.PutSilence(c, assertd.Silence{ID: "gone", Matchers: []assertd.Matcher{{Name: "a", Op: "=", Value: "b"}},
		Start: old, End: old.Add(time.Hour), Author: "alice", Created: old}))
	must(t, s.PutSilence(c, assertd.Silence{ID: "forever", Matchers: []assertd.Matcher{{Name: "a", Op: "=", Value: "b"}},
		Start: old, Cron: "@daily", Duration: assertd.Duration(time.Hour), Author: "alice", Created: old}))

	st := must1[store.CompactStats](t)(s.Compact(c, cut))
	want := store.CompactStats{Transitions: 1, Decisions: 1, Runs: 1, Steps: 1, Messages: 1, Pings: 1, Silences: 1}
	eq(t, "compact stats", st, want)

	trs := must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{}))
	var moves []string
	for _, tr := range trs {
		moves = append(moves, string(tr.From)+">"+string(tr.To))
	}
	eq(t, "kept transitions", moves, []string{"violated>violated", "violated>remediating", "ok>violated"})
	if !trs[0].At.Equal(recent) {
		t.Errorf("the recent same-state transition was not kept")
	}
	if owed := must1[[]assertd.Decision](t)(s.PendingDecisions(c)); len(owed) != 1 {
		t.Errorf("owed decisions after compaction: %+v", owed)
	}
	if _, err := s.Run(c, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old finished run: %v", err)
	}
	if steps := must1[[]assertd.RunStep](t)(s.Steps(c, "live")); len(steps) != 1 {
		t.Errorf("live run steps %+v", steps)
	}
	if msgs := must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{})); len(msgs) != 1 || msgs[0].Status != assertd.MsgPending {
		t.Errorf("messages after compaction %+v", msgs)
	}
	if pings := must1[[]assertd.Ping](t)(s.Pings(c, "hb", 0)); len(pings) != 1 || !pings[0].At.Equal(recent) {
		t.Errorf("pings after compaction %+v", pings)
	}
	if list := must1[[]assertd.Silence](t)(s.Silences(c, at(0), true)); len(list) != 1 || list[0].ID != "forever" {
		t.Errorf("silences after compaction %+v", list)
	}
	if log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{})); len(log) != 2 {
		t.Errorf("the audit trail is kept: %d entries", len(log))
	}
	// Compacting again deletes nothing more; the deleted change keys do not
	// make the kept state changes commit twice.
	eq(t, "second compaction", must1[store.CompactStats](t)(s.Compact(c, cut)), store.CompactStats{})
	before := must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint))
	_, ch = transition(instance("api", assertd.Labels{"instance": "a"}, assertd.OK, old.Add(-time.Hour)), assertd.Violated, old)
	if res := must1[store.CommitResult](t)(s.Commit(c, ch)); res.Applied {
		t.Error("a compacted change was applied again")
	}
	if n := len(must1[[]assertd.Transition](t)(s.Transitions(c, store.TransitionFilter{To: assertd.Violated}))); n != 2 {
		t.Errorf("re-committing a compacted change doubled its transition: %d", n)
	}
	eq(t, "instance after replaying an old change", must1[assertd.Instance](t)(s.Instance(c, "api", in.Fingerprint)), before)
}

func testClosed(t *testing.T, open Open) {
	s, c := open(t, "closed"), ctx(t)
	must(t, s.Health(c))
	must(t, s.Close())
	wantErr(t, s.Health(c), store.ErrClosed)
	must(t, s.Close())
	_, err := s.Instances(c, "")
	wantErr(t, err, store.ErrClosed)
	_, err = s.Commit(c, store.Change{Key: "k", At: at(0)})
	wantErr(t, err, store.ErrClosed)
}

// testPingChains records pings from concurrent callers, several for the same
// heartbeat at once (so that a group commit holds more than one ping of a
// heartbeat), and a heartbeat pinged once before all of them: each
// heartbeat's pings are its newest PingsKept, newest first, and the lone
// ping is kept however many others came after it.
func testPingChains(t *testing.T, open Open) {
	s, c := open(t, "pingchains"), ctx(t)
	lone := must1[int64](t)(s.RecordPing(c, assertd.HeartbeatRecord{Name: "weekly", Created: at(0)},
		assertd.Ping{Kind: assertd.PingSuccess, At: at(0), Body: "once"}))
	const hbs, callers, each = 3, 12, 40 // 160 pings per heartbeat
	var mu sync.Mutex
	ids := map[string][]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("hb-", g%hbs)
			for i := range each {
				when := at(time.Duration(g*each+i) * time.Millisecond)
				id, err := s.RecordPing(c, assertd.HeartbeatRecord{Name: name, Created: at(0), LastPing: when},
					assertd.Ping{Kind: assertd.PingSuccess, At: when, RunID: fmt.Sprint("g", g, "-", i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids[name] = append(ids[name], id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for name, recorded := range ids {
		slices.Sort(recorded)
		slices.Reverse(recorded)
		if len(slices.Compact(slices.Clone(recorded))) != len(recorded) {
			t.Fatalf("%s: IDs given twice: %v", name, recorded)
		}
		got := must1[[]assertd.Ping](t)(s.Pings(c, name, 0))
		var gotIDs []int64
		for _, p := range got {
			if p.Heartbeat != name {
				t.Fatalf("%s: a ping of %s among its pings", name, p.Heartbeat)
			}
			gotIDs = append(gotIDs, p.ID)
		}
		if want := recorded[:store.PingsKept]; !slices.Equal(gotIDs, want) {
			t.Errorf("%s: pings %v,\nwant the newest %d recorded: %v", name, gotIDs, store.PingsKept, want)
		}
	}
	if got := must1[[]assertd.Ping](t)(s.Pings(c, "weekly", 0)); len(got) != 1 || got[0].ID != lone || got[0].Body != "once" {
		t.Errorf("the lone ping of weekly after %d others: %+v", callers*each, got)
	}
}
