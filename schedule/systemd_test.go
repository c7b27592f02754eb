package schedule

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const systemdAnalyze = "/usr/bin/systemd-analyze"

var elapseRE = regexp.MustCompile(`(?m)^\s*(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$`)

// systemdNext asks systemd-analyze for the next n elapse times of expr (in
// zone tz) after base, as UTC instants.
func systemdNext(t *testing.T, expr, tz string, base time.Time, n int) []time.Time {
	t.Helper()
	spec := expr
	if tz != "" {
		spec += " " + tz
	}
	cmd := exec.Command(systemdAnalyze, "calendar", "--iterations="+strconv.Itoa(n), "--base-time=@"+strconv.FormatInt(base.Unix(), 10), spec)
	cmd.Env = []string{"TZ=UTC", "LANG=C", "SYSTEMD_COLORS=0"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	var times []time.Time
	for _, m := range elapseRE.FindAllStringSubmatch(string(out), -1) {
		v, err := time.Parse(time.DateTime, m[1])
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, v)
	}
	if len(times) == 0 || len(times) > n {
		t.Fatalf("%s printed %d elapse times, want 1 to %d:\n%s", cmd, len(times), n, out)
	}
	return times
}

// TestCalendarMatchesSystemd compares the next five elapse times of a table
// of calendar events with what systemd-analyze calendar prints for the same
// expression and base time. The table stays clear of spring-forward gaps:
// there systemd (252) skips a fixed time for the day, while assertd runs it
// at the end of the gap (TestNextDST; TestSystemdSkipsTheGap shows the
// difference).
func TestCalendarMatchesSystemd(t *testing.T) {
	base := time.Date(2026, 1, 30, 13, 17, 42, 0, time.UTC)
	tests := []struct {
		expr, tz string
		base     time.Time
	}{
		{"Mon..Fri *-*-* 02:00:00", "Europe/Berlin", base},
		{"Sat,Sun 10:00", "", base},
		{"*-*-01 06:00", "America/New_York", base},
		{"*-02-28..31 23:59:59", "", base},
		{"2026-12-24 18:00", "Europe/Berlin", base},
		{"*-*-* 0/6:00", "", base},
		{"*-*-* 8..18/2:15", "", base},
		{"*-*-* *:0/20:30", "", base},
		{"Mon *-*-1..7 03:00", "", base},
		{"Tuesday,Thursday 12:00", "America/New_York", base},
		{"2027/2-01-01", "", base},
		{"*-1/3-15 04:30", "", base},
		{"05-01 12:00", "", base},
		{"minutely", "", base},
		{"hourly", "Europe/Berlin", base},
		{"daily", "America/New_York", base},
		{"weekly", "", base},
		{"monthly", "", base},
		{"quarterly", "Europe/Berlin", base},
		{"semiannually", "", base},
		{"yearly", "", base},
		{"*-*-29 00:00", "", time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)},
		{"*-02-29 00:00", "", base},
		// Fall back: a fixed time that occurs twice runs once, at its
		// first occurrence, in systemd as in assertd.
		{"*-*-* 02:30:00", "Europe/Berlin", time.Date(2026, 10, 23, 12, 0, 0, 0, time.UTC)},
		{"*-*-* 01:30:00", "America/New_York", time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.expr+" "+tc.tz, func(t *testing.T) {
			want := systemdNext(t, tc.expr, tc.tz, tc.base, 5)
			s, err := ParseCalendar(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			cur := tc.base
			for i, w := range want {
				got := s.Next(cur)
				if !got.Equal(w) {
					t.Fatalf("elapse #%d after %s: assertd %s, systemd %s", i+1, cur.UTC(), got.UTC(), w)
				}
				cur = got
			}
			if len(want) < 5 {
				if got := s.Next(cur); !got.IsZero() {
					t.Fatalf("systemd stops after %d elapses, assertd goes on at %s", len(want), got.UTC())
				}
			}
		})
	}
}

// TestSystemdSkipsTheGap records where assertd differs from systemd on
// purpose: a fixed time inside the spring-forward gap.
func TestSystemdSkipsTheGap(t *testing.T) {
	base := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	sd := systemdNext(t, "*-*-* 02:30:00", "Europe/Berlin", base, 1)[0]
	if want := time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC); !sd.Equal(want) {
		t.Fatalf("systemd: %s, want %s (it skips 2026-03-29)", sd, want)
	}
	s, err := ParseCalendar("*-*-* 02:30:00", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Next(base), time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("assertd: %s, want %s (03:00 CEST, the end of the gap)", got, want)
	}
}

// TestCalendarRefusesWhatSystemdRefuses: expressions systemd rejects are
// rejected here too.
func TestCalendarRefusesWhatSystemdRefuses(t *testing.T) {
	for _, expr := range []string{"*:*/15", "Sat..Mon 00:00", "*-*-1..7 Mon 02:00", "*-*-* 25:00", "*-13-01"} {
		if err := exec.Command(systemdAnalyze, "calendar", expr).Run(); err == nil {
			t.Errorf("systemd-analyze accepts %q", expr)
		}
		if _, err := ParseCalendar(expr, ""); err == nil {
			t.Errorf("ParseCalendar accepts %q", expr)
		}
	}
	if !strings.Contains(CalendarSyntax, "Mon..Fri") {
		t.Fatal("CalendarSyntax lost its example")
	}
}
