package engine

import (
	"testing"
	"time"

	"github.com/assertd/assertd/asserts"
)

func TestNextEvalEvery(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: api-latency, every: 15s, query: {x: X}, expect: x < 1}]")
	off := offset("api-latency", 15*time.Second)
	if off < 0 || off >= 15*time.Second || off != offset("api-latency", 15*time.Second) {
		t.Fatalf("offset %v not stable or out of range", off)
	}
	first := nextEval(a, t0)
	if !first.After(t0) || first.Sub(t0) > 15*time.Second {
		t.Fatalf("first %v", first)
	}
	for i, at := 0, first; i < 10; i++ {
		next := nextEval(a, at)
		if next.Sub(at) != 15*time.Second {
			t.Fatalf("step %d: %v → %v", i, at, next)
		}
		// Just before an evaluation time, the next one is that time.
		if got := nextEval(a, next.Add(-time.Nanosecond)); !got.Equal(next) {
			t.Fatalf("nextEval just before %v = %v", next, got)
		}
		at = next
	}
	if n := missed(a, first, first.Add(61*time.Second)); n != 4 {
		t.Errorf("missed = %d, want 4", n)
	}
	if offset("a", 15*time.Second) == offset("b", 15*time.Second) && offset("c", 15*time.Second) == offset("d", 15*time.Second) {
		t.Error("offsets do not spread")
	}
}

func TestNextEvalSchedule(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: nightly, schedule: 'CRON_TZ=Europe/Berlin 0 3 * * *', query: {x: X}, expect: x < 1}]")
	// 03:00 Berlin on the day clocks go back (2026-10-25) is 02:00 UTC.
	from := time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)
	want := time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC)
	if got := nextEval(a, from); !got.Equal(want) {
		t.Fatalf("next = %v, want %v", got.UTC(), want)
	}
}

// TestNextEvalScheduleDST: an assert scheduled in the spring-forward gap is
// evaluated once, at the end of the gap, and once a day on fall back.
func TestNextEvalScheduleDST(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: nightly, schedule: 'CRON_TZ=Europe/Berlin 30 2 * * *', query: {x: X}, expect: x < 1}]")
	cal := compileAssert(t, "asserts: [{name: nightly, schedule: {on_calendar: '*-*-* 01:30:00', tz: America/New_York}, query: {x: X}, expect: x < 1}]")
	for _, tc := range []struct {
		a          *asserts.Compiled
		from, want time.Time
	}{
		// 2026-03-29: 02:30 Berlin does not exist; 03:00 CEST is 01:00 UTC.
		{a, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{a, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC)},
		// 2026-10-25: 02:30 Berlin happens twice; only the first (00:30 UTC).
		{a, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC)},
		// 2026-11-01: 01:30 New York happens twice; only the first (05:30 UTC).
		{cal, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)},
		{cal, time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC)},
	} {
		if got := nextEval(tc.a, tc.from); !got.Equal(tc.want) {
			t.Errorf("%s after %s: next = %v, want %v", tc.a.Assert.Schedule, tc.from, got.UTC(), tc.want)
		}
	}
}

// TestNextEvalAligned: without a phase, evaluations fall on multiples of
// the interval, the epoch included (assertd test's time zero).
func TestNextEvalAligned(t *testing.T) {
	a := compileAssert(t, "asserts: [{name: api-latency, every: 15s, query: {x: X}, expect: x < 1}]")
	epoch := time.Unix(0, 0)
	for _, tc := range []struct{ from, want time.Time }{
		{epoch.Add(-time.Nanosecond), epoch},
		{epoch, epoch.Add(15 * time.Second)},
		{epoch.Add(-20 * time.Second), epoch.Add(-15 * time.Second)},
		{epoch.Add(14 * time.Second), epoch.Add(15 * time.Second)},
	} {
		if got := nextEvalAt(a, tc.from, 0); !got.Equal(tc.want) {
			t.Errorf("after %v: %v, want %v", tc.from.Sub(epoch), got.Sub(epoch), tc.want.Sub(epoch))
		}
	}
	if n := missedAt(a, epoch, epoch.Add(61*time.Second), 0); n != 4 {
		t.Errorf("missed = %d, want 4", n)
	}
}
