package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// step is one moment of a scenario: a ping (or pause/resume), or a check of
// the state and the next deadline at an instant.
type step struct {
	at     time.Time
	op     string // "ping", "pause", "resume"; "" checks
	action string // as in the URL: "", "start", "fail", "0".."255"
	rid    string
	want   State
	next   *time.Time // checked when set; zero: no deadline pending
}

func ping(at time.Time, action string, rid ...string) step {
	s := step{at: at, op: "ping", action: action}
	if len(rid) > 0 {
		s.rid = rid[0]
	}
	return s
}

func pause(at time.Time) step  { return step{at: at, op: "pause"} }
func resume(at time.Time) step { return step{at: at, op: "resume"} }

func want(at time.Time, s State) step { return step{at: at, want: s} }

func wantNext(at time.Time, s State, next time.Time) step {
	return step{at: at, want: s, next: &next}
}

func after(d time.Duration) time.Time { return t0.Add(d) }

const ns = time.Nanosecond

type scenario struct {
	name  string
	hb    func(t *testing.T) *asserts.CompiledHeartbeat
	steps []step
}

func scenarios() []scenario {
	never := time.Time{}
	periodic := func(_ *testing.T) *asserts.CompiledHeartbeat { return periodHB("job", time.Hour, 10*time.Minute, 0) }
	limited := func(_ *testing.T) *asserts.CompiledHeartbeat {
		return periodHB("job", time.Hour, 5*time.Minute, 30*time.Minute)
	}
	nightly := func(t *testing.T) *asserts.CompiledHeartbeat {
		return cronHB(t, "job", "CRON_TZ=Europe/Berlin 0 2 * * *", 30*time.Minute, 0)
	}
	b := func(s string) time.Time { // Berlin instants, written with their offset
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return v
	}
	return []scenario{
		{"period: new, up, late, down at the exact instants", periodic, []step{
			wantNext(after(0), StateNew, never),
			want(after(time.Hour), StateNew), // new never goes late on its own
			ping(after(0), ""),
			wantNext(after(0), StateUp, after(time.Hour)),
			wantNext(after(time.Hour-ns), StateUp, after(time.Hour)),
			wantNext(after(time.Hour), StateLate, after(70*time.Minute)),
			want(after(70*time.Minute-ns), StateLate),
			wantNext(after(70*time.Minute), StateDown, never),
			want(after(48*time.Hour), StateDown),
		}},
		{"period: a new success moves the deadline", periodic, []step{
			ping(after(0), ""),
			ping(after(65*time.Minute), ""),
			wantNext(after(65*time.Minute), StateUp, after(125*time.Minute)),
			want(after(125*time.Minute), StateLate),
			want(after(135*time.Minute), StateDown),
		}},
		{"period: zero grace goes from up to down", func(*testing.T) *asserts.CompiledHeartbeat {
			return periodHB("job", time.Hour, 0, 0)
		}, []step{
			ping(after(0), ""),
			want(after(time.Hour-ns), StateUp),
			want(after(time.Hour), StateDown),
		}},
		{"/fail is down at once and stays down until a success", periodic, []step{
			ping(after(0), ""),
			ping(after(10*time.Minute), "fail"),
			wantNext(after(10*time.Minute), StateDown, never),
			want(after(11*time.Minute), StateDown),
			ping(after(20*time.Minute), ""),
			wantNext(after(20*time.Minute), StateUp, after(80*time.Minute)),
		}},
		{"exit code 0 is a success", periodic, []step{
			ping(after(0), "0"),
			want(after(0), StateUp),
		}},
		{"exit code 3 is down at once", periodic, []step{
			ping(after(0), ""),
			ping(after(time.Minute), "3"),
			want(after(time.Minute), StateDown),
		}},
		{"a failure before any success is down, not new", periodic, []step{
			ping(after(0), "fail"),
			want(after(0), StateDown),
		}},
		{"/start never finished: started, then running-too-long at start+max_runtime", limited, []step{
			ping(after(0), ""),
			ping(after(10*time.Minute), "start"),
			wantNext(after(10*time.Minute), StateStarted, after(40*time.Minute)),
			want(after(40*time.Minute-ns), StateStarted),
			wantNext(after(40*time.Minute), StateRunningTooLong, never),
			want(after(24*time.Hour), StateRunningTooLong),
			ping(after(25*time.Hour), ""), // the run ends at last
			want(after(25*time.Hour), StateUp),
		}},
		{"/start then success within max_runtime", limited, []step{
			ping(after(0), "start"),
			want(after(0), StateStarted),
			ping(after(20*time.Minute), ""),
			wantNext(after(20*time.Minute), StateUp, after(80*time.Minute)),
			want(after(40*time.Minute), StateUp),
		}},
		{"/start then /fail is down at once", limited, []step{
			ping(after(0), "start"),
			ping(after(5*time.Minute), "fail"),
			want(after(5*time.Minute), StateDown),
		}},
		{"/start without max_runtime falls back to the period deadline", periodic, []step{
			ping(after(0), ""),
			ping(after(50*time.Minute), "start"),
			wantNext(after(50*time.Minute), StateStarted, after(time.Hour)),
			wantNext(after(time.Hour), StateLate, after(70*time.Minute)),
			want(after(70*time.Minute), StateDown),
		}},
		{"/start of a new heartbeat without max_runtime counts from the start", periodic, []step{
			ping(after(0), "start"),
			want(after(time.Hour-ns), StateStarted),
			want(after(time.Hour), StateLate),
			want(after(70*time.Minute), StateDown),
		}},
		{"a retry started after a failure is started", limited, []step{
			ping(after(0), "fail"),
			ping(after(time.Minute), "start"),
			want(after(time.Minute), StateStarted),
			want(after(31*time.Minute), StateRunningTooLong),
		}},
		{"rid: run a exceeds max_runtime while run b finishes", limited, []step{
			ping(after(0), "start", "a"),
			ping(after(5*time.Minute), "start", "b"),
			ping(after(10*time.Minute), "", "b"),
			wantNext(after(10*time.Minute), StateStarted, after(30*time.Minute)),
			want(after(30*time.Minute-ns), StateStarted),
			want(after(30*time.Minute), StateRunningTooLong),
			ping(after(45*time.Minute), "", "c"), // an unknown rid ends no run
			want(after(45*time.Minute), StateRunningTooLong),
			ping(after(50*time.Minute), "", "a"),
			wantNext(after(50*time.Minute), StateUp, after(110*time.Minute)),
		}},
		{"rid: when the oldest run ends, the next one sets the deadline", limited, []step{
			ping(after(0), "start", "a"),
			ping(after(20*time.Minute), "start", "b"),
			ping(after(25*time.Minute), "", "a"),
			wantNext(after(25*time.Minute), StateStarted, after(50*time.Minute)),
			want(after(50*time.Minute), StateRunningTooLong),
		}},
		{"rid: an end without rid ends the most recent run", limited, []step{
			ping(after(0), "start", "a"),
			ping(after(20*time.Minute), "start", "b"),
			ping(after(25*time.Minute), ""),
			want(after(30*time.Minute), StateRunningTooLong), // a is still open
		}},
		{"rid: starting the same rid again restarts that run", limited, []step{
			ping(after(0), "start", "a"),
			ping(after(20*time.Minute), "start", "a"),
			wantNext(after(30*time.Minute), StateStarted, after(50*time.Minute)),
		}},
		{"pause and resume", periodic, []step{
			ping(after(0), ""),
			pause(after(10 * time.Minute)),
			wantNext(after(10*time.Minute), StatePaused, never),
			want(after(5*time.Hour), StatePaused),
			resume(after(5 * time.Hour)),
			want(after(5*time.Hour), StateDown), // silent for 5h: down at once
		}},
		{"a ping resumes a paused heartbeat", periodic, []step{
			pause(after(0)),
			want(after(0), StatePaused),
			ping(after(time.Minute), ""),
			want(after(time.Minute), StateUp),
		}},
		{"pause forgets the runs in progress", limited, []step{
			ping(after(0), "start"),
			pause(after(time.Minute)),
			resume(after(2 * time.Minute)),
			ping(after(3*time.Minute), ""),
			want(after(5*time.Hour), StateDown), // not running-too-long
		}},
		{"cron across spring forward: the 02:00 run is expected at 03:00 CEST", nightly, []step{
			ping(b("2026-03-28T02:03:00+01:00"), ""),
			wantNext(b("2026-03-28T12:00:00+01:00"), StateUp, b("2026-03-29T03:00:00+02:00")),
			want(b("2026-03-29T01:59:59+01:00"), StateUp),
			want(b("2026-03-29T02:59:59.999999999+02:00"), StateUp), // = 01:59:59.999999999 CET
			wantNext(b("2026-03-29T03:00:00+02:00"), StateLate, b("2026-03-29T03:30:00+02:00")),
			want(b("2026-03-29T03:30:00+02:00"), StateDown),
		}},
		{"cron after spring forward: back to 02:00 local", nightly, []step{
			ping(b("2026-03-29T03:01:00+02:00"), ""),
			wantNext(b("2026-03-29T03:01:00+02:00"), StateUp, b("2026-03-30T02:00:00+02:00")),
			want(b("2026-03-30T02:29:59+02:00"), StateLate),
			want(b("2026-03-30T02:30:00+02:00"), StateDown),
		}},
		{"cron across fall back: expected at the first 02:00, late and down on time", nightly, []step{
			ping(b("2026-10-24T02:05:00+02:00"), ""),
			want(b("2026-10-25T01:59:59+02:00"), StateUp),
			wantNext(b("2026-10-25T02:00:00+02:00"), StateLate, b("2026-10-25T02:30:00+02:00")),
			want(b("2026-10-25T02:30:00+02:00"), StateDown),
			want(b("2026-10-25T02:00:00+01:00"), StateDown),
		}},
		{"cron across fall back: the repeated 02:00 does not fire twice", nightly, []step{
			ping(b("2026-10-25T02:04:00+02:00"), ""),
			want(b("2026-10-25T02:00:00+01:00"), StateUp),
			want(b("2026-10-25T02:45:00+01:00"), StateUp),
			wantNext(b("2026-10-26T01:59:59+01:00"), StateUp, b("2026-10-26T02:00:00+01:00")),
			want(b("2026-10-26T02:00:00+01:00"), StateLate),
			want(b("2026-10-26T02:30:00+01:00"), StateDown),
		}},
		{"cron with grace and a run limit", func(t *testing.T) *asserts.CompiledHeartbeat {
			return cronHB(t, "job", "CRON_TZ=UTC 0 */6 * * *", 20*time.Minute, time.Hour)
		}, []step{
			ping(after(0), ""), // 12:00 UTC
			wantNext(after(0), StateUp, after(6*time.Hour)),
			wantNext(after(6*time.Hour), StateLate, after(6*time.Hour+20*time.Minute)),
			ping(after(6*time.Hour+time.Minute), "start"),
			wantNext(after(6*time.Hour+time.Minute), StateStarted, after(7*time.Hour+time.Minute)),
			want(after(7*time.Hour+time.Minute), StateRunningTooLong),
		}},
	}
}

func runStep(t *testing.T, tr *Tracker, s step) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch s.op {
	case "ping":
		kind, code, perr := parseAction(s.action)
		if perr != nil {
			t.Fatal(perr)
		}
		err = tr.Ping(ctx, assertd.Ping{Heartbeat: "job", Kind: kind, ExitCode: code, RunID: s.rid, At: s.at})
	case "pause":
		err = tr.Pause(ctx, "job")
	case "resume":
		err = tr.Resume(ctx, "job")
	default:
		checkStep(t, tr, s)
	}
	if err != nil {
		t.Fatalf("%s %s at %s: %v", s.op, s.action, s.at, err)
	}
}

func checkStep(t *testing.T, tr *Tracker, s step) {
	t.Helper()
	got, ok := tr.State("job", s.at)
	if !ok || got != s.want {
		t.Errorf("state at %s = %q, want %q", s.at.Format(time.RFC3339Nano), got, s.want)
	}
	if s.next == nil {
		return
	}
	next, pending := tr.NextDeadline("job", s.at)
	if pending != !s.next.IsZero() || !next.Equal(*s.next) {
		t.Errorf("next deadline at %s = %s (%v), want %s", s.at.Format(time.RFC3339Nano), next.Format(time.RFC3339Nano), pending, s.next.Format(time.RFC3339Nano))
	}
}

// TestDeadlines runs every scenario, then starts a new Tracker over the same
// store and checks that it computes the same states after the last change.
func TestDeadlines(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			store := NewMemoryStore()
			tr := newTracker(t, store, t0, sc.hb(t))
			last := -1
			for i, s := range sc.steps {
				runStep(t, tr, s)
				if s.op != "" {
					last = i
				}
			}
			reloaded := newTracker(t, store, t0.Add(999*time.Hour), sc.hb(t))
			for _, s := range sc.steps[last+1:] {
				checkStep(t, reloaded, s)
				want, _ := tr.Status("job", s.at)
				if got, _ := reloaded.Status("job", s.at); got != want {
					t.Errorf("after reload at %s: status %+v, want %+v", s.at, got, want)
				}
			}
		})
	}
}

func TestStatusFields(t *testing.T) {
	tr := newTracker(t, NewMemoryStore(), t0, periodHB("job", time.Hour, 10*time.Minute, 0))
	ctx := context.Background()
	st, _ := tr.Status("job", after(3*time.Hour))
	want := asserts.HeartbeatStatus{Name: "job", State: "new", Age: 3 * time.Hour}
	if st != want {
		t.Fatalf("new: %+v, want %+v", st, want)
	}
	if Certain(st) {
		t.Error("a new heartbeat must not be certain")
	}
	for _, p := range []assertd.Ping{
		{Heartbeat: "job", Kind: assertd.PingSuccess, At: after(0)},
		{Heartbeat: "job", Kind: assertd.PingStart, At: after(time.Hour)},
		{Heartbeat: "job", Kind: assertd.PingExit, ExitCode: 7, At: after(2 * time.Hour)},
	} {
		if err := tr.Ping(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = tr.Status("job", after(3*time.Hour))
	want = asserts.HeartbeatStatus{Name: "job", State: "down", Age: 3 * time.Hour, LastPing: after(2 * time.Hour), LastExit: 7}
	if st != want {
		t.Fatalf("failed: %+v, want %+v", st, want)
	}
	if !Certain(st) {
		t.Error("a reported failure is certain")
	}
	if _, ok := tr.Status("nope", t0); ok {
		t.Error("Status of an undeclared heartbeat")
	}
	if _, ok := tr.State("nope", t0); ok {
		t.Error("State of an undeclared heartbeat")
	}
}

func TestCertain(t *testing.T) {
	tests := []struct {
		st      asserts.HeartbeatStatus
		certain bool
		words   string
	}{
		{asserts.HeartbeatStatus{Name: "b", State: "new"}, false, `heartbeat "b" has never been pinged: its health is unknown`},
		{asserts.HeartbeatStatus{Name: "b", State: "up", Up: true}, true, `heartbeat "b" is up`},
		{asserts.HeartbeatStatus{Name: "b", State: "late", Up: true}, true, `heartbeat "b" is late (within its grace)`},
		{asserts.HeartbeatStatus{Name: "b", State: "started", Up: true}, true, `heartbeat "b" has a run in progress`},
		{asserts.HeartbeatStatus{Name: "b", State: "running-too-long"}, true, `heartbeat "b" has a run that exceeded its max_runtime`},
		{asserts.HeartbeatStatus{Name: "b", State: "down", LastPing: t0}, false, `heartbeat "b" is down: no ping in time since 2026-01-10T12:00:00Z, its health is unknown`},
		{asserts.HeartbeatStatus{Name: "b", State: "down", LastExit: 2}, true, `heartbeat "b" is down: its last run failed (exit code 2)`},
		{asserts.HeartbeatStatus{Name: "b", State: "paused"}, false, `heartbeat "b" is paused`},
		{asserts.HeartbeatStatus{Name: "b", State: ""}, false, `heartbeat "b" is in unknown state ""`},
	}
	for _, tc := range tests {
		if got := Certain(tc.st); got != tc.certain {
			t.Errorf("Certain(%+v) = %v", tc.st, got)
		}
		if got := Describe(tc.st); got != tc.words {
			t.Errorf("Describe(%+v) = %q, want %q", tc.st, got, tc.words)
		}
	}
	for _, s := range States {
		if got, want := IsUp(s), s == StateUp || s == StateLate || s == StateStarted; got != want {
			t.Errorf("IsUp(%s) = %v", s, got)
		}
	}
}

func TestPingValidation(t *testing.T) {
	tr := newTracker(t, NewMemoryStore(), t0, periodHB("job", time.Hour, 0, 0))
	ctx := context.Background()
	bad := []assertd.Ping{
		{Heartbeat: "job", Kind: assertd.PingSuccess},                                           // no time
		{Heartbeat: "job", Kind: "ign", At: t0},                                                 // unknown kind
		{Heartbeat: "job", Kind: assertd.PingExit, ExitCode: 256, At: t0},                       // out of range
		{Heartbeat: "job", Kind: assertd.PingExit, ExitCode: -1, At: t0},                        // out of range
		{Heartbeat: "job", Kind: assertd.PingFail, ExitCode: 300, At: t0},                       // out of range
		{Heartbeat: "job", Kind: assertd.PingStart, RunID: "a b", At: t0},                       // bad rid
		{Heartbeat: "job", Kind: assertd.PingStart, RunID: fmt.Sprint(make([]int, 40)), At: t0}, // long rid
	}
	for _, p := range bad {
		if err := tr.Ping(ctx, p); !errors.Is(err, ErrInvalidPing) {
			t.Errorf("Ping(%+v) = %v, want ErrInvalidPing", p, err)
		}
	}
	if err := tr.Ping(ctx, assertd.Ping{Heartbeat: "nope", Kind: assertd.PingSuccess, At: t0}); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown heartbeat: %v", err)
	}
	if err := tr.Pause(ctx, "nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("pause unknown heartbeat: %v", err)
	}
	if st, _ := tr.State("job", t0); st != StateNew {
		t.Errorf("after invalid pings: %s", st)
	}
}
