package schedule

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests do not depend on the machine's zoneinfo
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
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

// parse reads "cron:SPEC" or "cal:EXPR" in zone tz.
func parse(t *testing.T, spec, tz string) *Schedule {
	t.Helper()
	var s *Schedule
	var err error
	if expr, ok := strings.CutPrefix(spec, "cal:"); ok {
		s, err = ParseCalendar(expr, tz)
	} else {
		s, err = ParseCron("CRON_TZ=" + tz + " " + strings.TrimPrefix(spec, "cron:"))
	}
	if err != nil {
		t.Fatalf("parse %q: %v", spec, err)
	}
	return s
}

// TestNextDST checks the daylight-saving rule on both transitions of
// Europe/Berlin (2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST →
// 02:00 CET) and America/New_York (2026-03-08 02:00 EST → 03:00 EDT;
// 2026-11-01 02:00 EDT → 01:00 EST), for cron and calendar schedules alike.
func TestNextDST(t *testing.T) {
	tests := []struct {
		name, tz, spec, after, want string
	}{
		// Berlin, spring forward.
		{"daily 02:00 the day before", "Europe/Berlin", "cron:0 2 * * *", "2026-03-28T01:00:00+01:00", "2026-03-28T02:00:00+01:00"},
		{"daily 02:00 in the gap runs after it", "Europe/Berlin", "cron:0 2 * * *", "2026-03-28T02:05:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 02:30 in the gap runs after it", "Europe/Berlin", "cron:30 2 * * *", "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 02:30 in the gap runs once", "Europe/Berlin", "cron:30 2 * * *", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		{"daily 03:00 on the day of the gap", "Europe/Berlin", "cron:0 3 * * *", "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"daily 03:00 after its run", "Europe/Berlin", "cron:0 3 * * *", "2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"},
		{"every 30m skips the missing hour", "Europe/Berlin", "cron:*/30 * * * *", "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"weekly Sunday 02:30 in the gap", "Europe/Berlin", "cron:30 2 * * 0", "2026-03-22T03:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"calendar 02:30 in the gap runs after it", "Europe/Berlin", "cal:*-*-* 02:30:00", "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"calendar Sun 02:00 in the gap", "Europe/Berlin", "cal:Sun *-*-* 02:00", "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00"},
		{"calendar hourly skips the missing hour", "Europe/Berlin", "cal:hourly", "2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00"},
		// Berlin, fall back.
		{"daily 02:00 first occurrence", "Europe/Berlin", "cron:0 2 * * *", "2026-10-25T01:30:00+02:00", "2026-10-25T02:00:00+02:00"},
		{"daily 02:00 fires once", "Europe/Berlin", "cron:0 2 * * *", "2026-10-25T02:05:00+02:00", "2026-10-26T02:00:00+01:00"},
		{"daily 02:30 seen from the second pass", "Europe/Berlin", "cron:30 2 * * *", "2026-10-25T02:40:00+01:00", "2026-10-26T02:30:00+01:00"},
		{"hourly in both passes", "Europe/Berlin", "cron:0 * * * *", "2026-10-25T02:10:00+02:00", "2026-10-25T02:00:00+01:00"},
		{"every 15m in the second pass", "Europe/Berlin", "cron:*/15 * * * *", "2026-10-25T02:50:00+01:00", "2026-10-25T03:00:00+01:00"},
		{"calendar 02:30 fires once", "Europe/Berlin", "cal:*-*-* 02:30", "2026-10-25T02:35:00+02:00", "2026-10-26T02:30:00+01:00"},
		{"calendar *:30 in both passes", "Europe/Berlin", "cal:*-*-* *:30", "2026-10-25T02:35:00+02:00", "2026-10-25T02:30:00+01:00"},
		// New York, spring forward.
		{"NY daily 02:30 in the gap runs after it", "America/New_York", "cron:30 2 * * *", "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"NY daily 02:30 once", "America/New_York", "cron:30 2 * * *", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		{"NY every 20m skips the gap", "America/New_York", "cron:*/20 * * * *", "2026-03-08T01:50:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"NY calendar Sun 02:15 in the gap", "America/New_York", "cal:Sun *-*-* 02:15", "2026-03-01T12:00:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"NY calendar weekdays after the gap", "America/New_York", "cal:Mon..Fri *-*-* 02:00:00", "2026-03-06T03:00:00-05:00", "2026-03-09T02:00:00-04:00"},
		// New York, fall back (01:00-02:00 happens twice).
		{"NY daily 01:30 first occurrence", "America/New_York", "cron:30 1 * * *", "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00"},
		{"NY daily 01:30 fires once", "America/New_York", "cron:30 1 * * *", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		{"NY hourly in both passes", "America/New_York", "cron:0 * * * *", "2026-11-01T01:10:00-04:00", "2026-11-01T01:00:00-05:00"},
		{"NY calendar 01:30 once", "America/New_York", "cal:*-*-* 01:30", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		{"NY calendar 0/30 minutes in both passes", "America/New_York", "cal:*-*-* *:0/30", "2026-11-01T01:40:00-04:00", "2026-11-01T01:00:00-05:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := parse(t, tc.spec, tc.tz)
			got, want := s.Next(at(t, tc.after)), at(t, tc.want)
			if !got.Equal(want) {
				t.Fatalf("Next(%s) = %s, want %s", tc.after, got.Format(time.RFC3339), want.In(zone(t, tc.tz)).Format(time.RFC3339))
			}
			if got.Location().String() != tc.tz {
				t.Fatalf("Next returned a time in %s, want %s", got.Location(), tc.tz)
			}
		})
	}
}

// TestNextOnceADay walks daily 02:00 (Berlin) and 02:30 (New York) jobs,
// cron and calendar, through a year: exactly one run per calendar day, at
// the written time except on the spring-forward day (03:00, the first
// instant after the gap).
func TestNextOnceADay(t *testing.T) {
	for _, tc := range []struct {
		tz, spec string
		h, m     int
		gapDay   string
	}{
		{"Europe/Berlin", "cron:0 2 * * *", 2, 0, "2026-03-29"},
		{"Europe/Berlin", "cal:*-*-* 02:00:00", 2, 0, "2026-03-29"},
		{"America/New_York", "cron:30 2 * * *", 2, 30, "2026-03-08"},
		{"America/New_York", "cal:daily", 0, 0, ""},
		{"America/New_York", "cron:30 1 * * *", 1, 30, ""},
	} {
		t.Run(tc.tz+" "+tc.spec, func(t *testing.T) {
			loc := zone(t, tc.tz)
			s := parse(t, tc.spec, tc.tz)
			cur := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
			seen := map[string]bool{}
			for range 365 {
				n := s.Next(cur)
				day := n.In(loc).Format(time.DateOnly)
				if seen[day] {
					t.Fatalf("two runs on %s", day)
				}
				seen[day] = true
				h, m, _ := n.In(loc).Clock()
				wh, wm := tc.h, tc.m
				if day == tc.gapDay {
					wh, wm = 3, 0
				}
				if h != wh || m != wm {
					t.Fatalf("run at %s, want %02d:%02d local", n.In(loc), wh, wm)
				}
				cur = n
			}
			if len(seen) != 365 || !seen["2026-12-31"] {
				t.Fatalf("%d runs in 2026", len(seen))
			}
		})
	}
}

func TestParseCron(t *testing.T) {
	from := at(t, "2026-03-29T01:00:00+01:00")
	every, err := ParseCron("@every 90m")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := every.Next(from), from.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("@every: %s, want %s", got, want)
	}
	never, err := ParseCron("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if got := never.Next(from); !got.IsZero() {
		t.Fatalf("30 Feb: %s, want never", got)
	}
	for spec, want := range map[string]string{
		"every sunday":              "not a valid cron schedule",
		"CRON_TZ=Nowhere 0 * * * *": "unknown time zone",
		"@every soon":               "@every takes a duration",
		"@every -1m":                "must be more than 0s",
		"* * * *":                   "five fields",
	} {
		if _, err := ParseCron(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCron(%q) = %v, want an error with %q", spec, err, want)
		}
	}
	for spec, want := range map[string]bool{
		"0 2 * * *": true, "30 1-3 * * 1-5": true, "*/15 * * * *": false, "0 * * * *": false,
		"5 */2 * * *": false, "@daily": true, "@weekly": true, "@hourly": false,
	} {
		s, err := ParseCron(spec)
		if err != nil {
			t.Fatal(err)
		}
		if s.fixed != want {
			t.Errorf("%q fixed = %v, want %v", spec, s.fixed, want)
		}
	}
}

func TestParseCalendarRefuses(t *testing.T) {
	for expr, want := range map[string]string{
		"":                          "empty",
		"*-*~1":                     "last-days syntax",
		"*-*-* 02:00:00.5":          "fractions",
		"*:*/15":                    "*/N is not supported",
		"*-*-* 02:00 Europe/Berlin": "tz: Europe/Berlin",
		"*-*-* 02:00 UTC":           "tz: UTC",
		"Sat..Mon 00:00":            "wraps past Sunday",
		"Moonday 02:00":             "weekday \"Moonday\"",
		"*-13-01":                   "month \"13\"",
		"*-*-* 24:00":               "hour \"24\"",
		"*-*-* 1:2:3:4":             "HOUR:MINUTE",
		"1-2-3-4":                   "YEAR-MONTH-DAY",
		"*-*-5..1":                  "ends before it starts",
		"*-*-* 02:00 later":         "cannot read \"later\"",
		"@1700000000":               "cannot read",
	} {
		if _, err := ParseCalendar(expr, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCalendar(%q) = %v, want an error with %q", expr, err, want)
		}
	}
	if _, err := ParseCalendar("daily", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "IANA zone") {
		t.Errorf("unknown tz: %v", err)
	}
}
