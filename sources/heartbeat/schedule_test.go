package heartbeat

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests do not depend on the machine's zoneinfo

	"github.com/robfig/cron/v3"
)

func mustSchedule(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatalf("parse %q: %v", spec, err)
	}
	return s
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at parses an instant written with its offset, so ambiguous wall times are
// never ambiguous in the tables.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFixedTime(t *testing.T) {
	for spec, want := range map[string]bool{
		"0 2 * * *":                       true,
		"CRON_TZ=Europe/Berlin 0 2 * * *": true,
		"30 1-3 * * 1-5":                  true,
		"*/15 * * * *":                    false,
		"0 * * * *":                       false,
		"5 */2 * * *":                     false,
		"@daily":                          true,
		"CRON_TZ=UTC @weekly":             true,
		"@hourly":                         false,
		"@every 1h":                       false,
		"":                                false,
	} {
		if got := fixedTime(spec); got != want {
			t.Errorf("fixedTime(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestNextRunDST(t *testing.T) {
	// Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST (spring forward);
	// 2026-10-25 03:00 CEST → 02:00 CET (fall back).
	tests := []struct {
		name, spec, after, want string
	}{
		{"daily 02:00 the day before spring forward", "0 2 * * *", "2026-03-28T01:00:00+01:00", "2026-03-28T02:00:00+01:00"},
		{"daily 02:00 on spring forward runs at the jump", "0 2 * * *", "2026-03-28T02:05:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 02:30 on spring forward runs at the jump", "30 2 * * *", "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 02:00 after spring forward stays at 02:00", "0 2 * * *", "2026-03-29T03:01:00+02:00", "2026-03-30T02:00:00+02:00"},
		{"daily 03:00 on spring forward", "0 3 * * *", "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 03:00 after its run on spring forward", "0 3 * * *", "2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"},
		{"every 30m skips the missing hour", "*/30 * * * *", "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 02:00 on fall back: first occurrence", "0 2 * * *", "2026-10-25T01:30:00+02:00", "2026-10-25T02:00:00+02:00"},
		{"daily 02:00 on fall back fires once", "0 2 * * *", "2026-10-25T02:05:00+02:00", "2026-10-26T02:00:00+01:00"},
		{"daily 02:30 pinged in the second pass", "30 2 * * *", "2026-10-25T02:40:00+01:00", "2026-10-26T02:30:00+01:00"},
		{"daily 02:00 after fall back stays at 02:00", "0 2 * * *", "2026-10-25T12:00:00+01:00", "2026-10-26T02:00:00+01:00"},
		{"hourly runs in both passes", "0 * * * *", "2026-10-25T02:10:00+02:00", "2026-10-25T02:00:00+01:00"},
		{"every 15m in the first pass", "*/15 * * * *", "2026-10-25T02:50:00+02:00", "2026-10-25T02:00:00+01:00"},
		{"every 15m in the second pass", "*/15 * * * *", "2026-10-25T02:50:00+01:00", "2026-10-25T03:00:00+01:00"},
		{"weekly Sunday 02:30 across spring forward", "30 2 * * 0", "2026-03-22T03:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"monthly", "0 2 1 * *", "2026-03-29T03:00:00+02:00", "2026-04-01T02:00:00+02:00"},
	}
	loc := berlin(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSchedule(t, "CRON_TZ=Europe/Berlin "+tc.spec)
			got := nextRun(s, fixedTime(tc.spec), at(t, tc.after))
			want := at(t, tc.want)
			if !got.Equal(want) {
				t.Fatalf("nextRun(%s, %s) = %s, want %s", tc.spec, tc.after, got.Format(time.RFC3339), want.In(loc).Format(time.RFC3339))
			}
		})
	}
}

// TestNextRunDailyOnceADay walks a daily 02:00 Berlin job through a whole
// year: exactly one expected run per calendar day, always at 02:00 local
// time except on the spring-forward day (03:00, the first instant after the
// jump).
func TestNextRunDailyOnceADay(t *testing.T) {
	loc := berlin(t)
	s := mustSchedule(t, "CRON_TZ=Europe/Berlin 0 2 * * *")
	cur := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	seen := map[string]bool{}
	for range 365 {
		n := nextRun(s, true, cur)
		day := n.In(loc).Format(time.DateOnly)
		if seen[day] {
			t.Fatalf("two runs on %s", day)
		}
		seen[day] = true
		h, m, _ := n.In(loc).Clock()
		wantH := 2
		if day == "2026-03-29" {
			wantH = 3
		}
		if h != wantH || m != 0 {
			t.Fatalf("run at %s, want %02d:00 local", n.In(loc), wantH)
		}
		cur = n.Add(5 * time.Minute)
	}
	if len(seen) != 365 {
		t.Fatalf("%d runs in 365 days", len(seen))
	}
}

func TestNextRunOtherSchedules(t *testing.T) {
	every := mustSchedule(t, "@every 90m")
	from := at(t, "2026-03-29T01:00:00+01:00")
	if got, want := nextRun(every, false, from), from.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("@every: %s, want %s", got, want)
	}
	never := mustSchedule(t, "0 0 30 2 *")
	if got := nextRun(never, true, from); !got.IsZero() {
		t.Fatalf("30 Feb: %s, want never", got)
	}
	utc := mustSchedule(t, "CRON_TZ=UTC 0 2 * * *")
	if got, want := nextRun(utc, true, from), at(t, "2026-03-29T02:00:00Z"); !got.Equal(want) {
		t.Fatalf("UTC: %s, want %s", got, want)
	}
}
