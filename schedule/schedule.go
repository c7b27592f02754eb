// Package schedule is when something is expected to happen: cron schedules
// (five fields, CRON_TZ=, @daily, @every) and systemd-style calendar events
// (OnCalendar=), both read on the wall clock of their zone, with one rule
// for daylight saving time. Heartbeats, the asserts' schedule: and recurring
// silences all compute their times here. It imports nothing of assertd.
//
// # Daylight saving time
//
// A schedule names wall-clock times in a zone (the zone it names, else
// assertd's local zone). When the clocks change, the rule is the one of
// ISC/Debian cron and of Healthchecks.io (cronsim), for fixed-time
// schedules, those whose minute and hour fields are not wildcards ('*', or
// for calendar events also a repetition such as 0/15):
//
//   - spring forward: a time that does not exist that day (02:30 when the
//     clocks jump from 02:00 to 03:00) fires once, at the first valid instant
//     after the gap (03:00 summer time);
//   - fall back: a time that occurs twice (02:30 when the clocks go back from
//     03:00 to 02:00) fires once, at its first occurrence.
//
// So a daily 02:00 job fires once a day at 02:00 local time, never skipped
// and never twice. A schedule with a wildcard minute or hour (*/15 * * * *,
// *-*-* *:00:00) fires at every wall-clock time that exists, in both passes
// of a repeated hour, and not in the hour that is skipped. @every durations
// are absolute and ignore the zone.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed schedule. Its methods are safe for concurrent use.
type Schedule struct {
	text  string
	loc   *time.Location // nil: time.Local at the time asked
	fixed bool
	// next returns the first wall time strictly after w (a UTC time that
	// stands for a wall-clock reading); zero when there is none.
	next  func(w time.Time) time.Time
	every cron.Schedule // @every: absolute, no wall clock
}

// String returns the schedule as written.
func (s *Schedule) String() string { return s.text }

// Location returns the zone the schedule is read in.
func (s *Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.Local
	}
	return s.loc
}

// Next returns the first time strictly after t at which s fires, in the
// schedule's zone, following the daylight-saving rule of the package. The
// zero time means that s never fires again.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every != nil {
		return s.every.Next(t)
	}
	return nextRun(s.next, s.Location(), s.fixed, t)
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron reads a cron schedule: five fields (minute hour day-of-month
// month day-of-week), an optional CRON_TZ=Zone (or TZ=Zone) prefix, or a
// descriptor: @yearly, @monthly, @weekly, @daily, @hourly, @every 10m.
func ParseCron(spec string) (*Schedule, error) {
	body := strings.TrimSpace(spec)
	var loc *time.Location
	if strings.HasPrefix(body, "CRON_TZ=") || strings.HasPrefix(body, "TZ=") {
		tz, rest, _ := strings.Cut(body, " ")
		_, name, _ := strings.Cut(tz, "=")
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("schedule %q is not a valid cron schedule: unknown time zone %q: write an IANA zone such as CRON_TZ=Europe/Berlin", spec, name)
		}
		loc, body = l, strings.TrimSpace(rest)
	}
	if every, ok := strings.CutPrefix(body, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(every))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: @every takes a duration such as @every 10m", spec)
		}
		if d <= 0 {
			return nil, fmt.Errorf("schedule %q: @every must be more than 0s", spec)
		}
		return &Schedule{text: spec, every: cron.Every(d)}, nil
	}
	parsed, err := cronParser.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("schedule %q is not a valid cron schedule (%v): write five fields such as \"*/5 * * * *\", optionally after CRON_TZ=Europe/Berlin", spec, err)
	}
	sp, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return &Schedule{text: spec, every: parsed}, nil
	}
	naive := *sp
	naive.Location = time.UTC
	return &Schedule{text: spec, loc: loc, fixed: fixedCron(body), next: naive.Next}, nil
}

// fixedCron reports whether a cron body (without CRON_TZ=) names fixed times
// of day: neither its minute nor its hour field starts with '*' (or '?').
func fixedCron(s string) bool {
	if strings.HasPrefix(s, "@") {
		switch d, _, _ := strings.Cut(s, " "); d {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight":
			return true
		}
		return false // @hourly
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return false
	}
	star := func(x string) bool { return strings.HasPrefix(x, "*") || strings.HasPrefix(x, "?") }
	return !star(f[0]) && !star(f[1])
}
