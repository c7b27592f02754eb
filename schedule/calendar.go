package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CalendarSyntax describes the calendar events ParseCalendar reads, for
// error messages and documentation.
const CalendarSyntax = `[WEEKDAYS] [YEAR-]MONTH-DAY [HOUR:MINUTE[:SECOND]], such as "Mon..Fri *-*-* 02:00:00", "*-*-01 06:00", "Sat,Sun 10:00" or daily`

// The years a calendar event may name, as systemd allows.
const (
	minYear = 1970
	maxYear = 2199
)

var shorthands = map[string]string{
	"minutely":     "*-*-* *:*:00",
	"hourly":       "*-*-* *:00:00",
	"daily":        "*-*-* 00:00:00",
	"weekly":       "Mon *-*-* 00:00:00",
	"monthly":      "*-*-01 00:00:00",
	"yearly":       "*-01-01 00:00:00",
	"annually":     "*-01-01 00:00:00",
	"quarterly":    "*-01,04,07,10-01 00:00:00",
	"semiannually": "*-01,07-01 00:00:00",
}

var weekdays = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
	"monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday, "thursday": time.Thursday,
	"friday": time.Friday, "saturday": time.Saturday, "sunday": time.Sunday,
}

// calendar is a parsed calendar event: the allowed values of each field
// (nil: any).
type calendar struct {
	years                                []bool // index year-minYear
	months, days, hours, minutes, second []bool
	wdays                                []bool // index time.Weekday
}

// ParseCalendar reads a systemd calendar event (systemd.time(7), as
// OnCalendar= of a timer takes it) in the zone tz ("" for assertd's local
// zone). It reads this subset:
//
//   - an optional weekday list first: Mon, Tue … Sun or their full names,
//     lists (Mon,Wed) and ranges (Mon..Fri, not wrapping past Sunday);
//   - an optional date, YEAR-MONTH-DAY or MONTH-DAY (missing: every day);
//   - an optional time, HOUR:MINUTE or HOUR:MINUTE:SECOND (missing:
//     00:00:00; seconds default to 00);
//   - each date and time component is *, a number, a list (1,15), a range
//     (1..5) or a repetition start/step (0/15: 0, 15, 30, 45), or a range with
//     a step (8..18/2);
//   - the shorthands minutely, hourly, daily, weekly, monthly, yearly,
//     annually, quarterly and semiannually.
//
// It refuses, with the reason, what it does not read: the last-days syntax
// (~), fractions of seconds, a zone inside the expression (write tz:),
// "*/N" (write 0/N) and anything else systemd takes.
func ParseCalendar(expr, tz string) (*Schedule, error) {
	var loc *time.Location
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("tz %q is not a time zone: write an IANA zone such as Europe/Berlin or UTC", tz)
		}
		loc = l
	}
	c, fixed, err := parseCalendar(expr)
	if err != nil {
		return nil, fmt.Errorf("on_calendar %q: %w", expr, err)
	}
	return &Schedule{text: expr, loc: loc, fixed: fixed, next: c.next}, nil
}

func parseCalendar(expr string) (*calendar, bool, error) {
	s := strings.TrimSpace(expr)
	if v, ok := shorthands[strings.ToLower(s)]; ok {
		s = v
	}
	if s == "" {
		return nil, false, fmt.Errorf("empty: write %s", CalendarSyntax)
	}
	if strings.Contains(s, "~") {
		return nil, false, fmt.Errorf("the last-days syntax (~) is not supported: name the days, such as *-*-28..31")
	}
	toks := strings.Fields(s)
	c := &calendar{}
	var date, clock string
	i := 0
	if i < len(toks) && isWeekdayToken(toks[i]) {
		w, err := parseWeekdays(toks[i])
		if err != nil {
			return nil, false, err
		}
		c.wdays = w
		i++
	}
	if i < len(toks) && strings.Contains(toks[i], "-") && !strings.Contains(toks[i], ":") {
		date = toks[i]
		i++
	}
	if i < len(toks) && strings.Contains(toks[i], ":") {
		clock = toks[i]
		i++
	}
	if i < len(toks) {
		t := toks[i]
		if _, err := time.LoadLocation(t); err == nil || strings.EqualFold(t, "UTC") {
			return nil, false, fmt.Errorf("a time zone inside the expression is not supported: write it as tz: %s beside on_calendar", t)
		}
		return nil, false, fmt.Errorf("cannot read %q: write %s", t, CalendarSyntax)
	}
	if date == "" && clock == "" && c.wdays == nil {
		return nil, false, fmt.Errorf("no weekday, date or time: write %s", CalendarSyntax)
	}
	if date == "" {
		date = "*-*-*"
	}
	if clock == "" {
		clock = "00:00:00"
	}
	dp := strings.Split(date, "-")
	if len(dp) == 2 {
		dp = append([]string{"*"}, dp...)
	}
	if len(dp) != 3 {
		return nil, false, fmt.Errorf("date %q: write YEAR-MONTH-DAY or MONTH-DAY, such as *-*-01 or 2026-12-24", date)
	}
	tp := strings.Split(clock, ":")
	if len(tp) == 2 {
		tp = append(tp, "00")
	}
	if len(tp) != 3 {
		return nil, false, fmt.Errorf("time %q: write HOUR:MINUTE or HOUR:MINUTE:SECOND, such as 02:00 or 02:00:30", clock)
	}
	var err error
	fields := []struct {
		name     string
		text     string
		min, max int
		dst      *[]bool
	}{
		{"year", dp[0], minYear, maxYear, &c.years},
		{"month", dp[1], 1, 12, &c.months},
		{"day", dp[2], 1, 31, &c.days},
		{"hour", tp[0], 0, 23, &c.hours},
		{"minute", tp[1], 0, 59, &c.minutes},
		{"second", tp[2], 0, 59, &c.second},
	}
	for _, f := range fields {
		if *f.dst, err = parseComponent(f.name, f.text, f.min, f.max); err != nil {
			return nil, false, err
		}
	}
	fixed := !wildcard(tp[0]) && !wildcard(tp[1])
	return c, fixed, nil
}

// wildcard reports whether a time component names more than fixed times:
// * or a repetition.
func wildcard(s string) bool { return s == "*" || strings.Contains(s, "/") }

func isWeekdayToken(t string) bool {
	return t != "" && (t[0] >= 'A' && t[0] <= 'Z' || t[0] >= 'a' && t[0] <= 'z')
}

func parseWeekdays(t string) ([]bool, error) {
	set := make([]bool, 7)
	for _, part := range strings.Split(t, ",") {
		lo, hi, isRange := strings.Cut(part, "..")
		a, ok := weekdays[strings.ToLower(lo)]
		if !ok {
			return nil, fmt.Errorf("weekday %q: write Mon, Tue, Wed, Thu, Fri, Sat or Sun, lists (Mon,Wed) or ranges (Mon..Fri)", lo)
		}
		b := a
		if isRange {
			if b, ok = weekdays[strings.ToLower(hi)]; !ok {
				return nil, fmt.Errorf("weekday %q: write Mon, Tue, Wed, Thu, Fri, Sat or Sun", hi)
			}
		}
		ai, bi := (int(a)+6)%7, (int(b)+6)%7 // Monday first, as systemd counts
		if bi < ai {
			return nil, fmt.Errorf("weekday range %q wraps past Sunday: write it as a list, such as Sat,Sun,Mon", part)
		}
		for d := ai; d <= bi; d++ {
			set[(d+1)%7] = true
		}
	}
	return set, nil
}

// parseComponent reads one date or time component into the set of its
// values, indexed from min; nil means any.
func parseComponent(name, s string, lo, hi int) ([]bool, error) {
	if s == "*" {
		return nil, nil
	}
	set := make([]bool, hi-lo+1)
	num := func(v string) (int, error) {
		if v == "" || len(v) > 4 || strings.ContainsAny(v, "+-") {
			return 0, fmt.Errorf("%s %q: write a number from %d to %d", name, v, lo, hi)
		}
		if strings.Contains(v, ".") {
			return 0, fmt.Errorf("%s %q: fractions are not supported: write whole numbers", name, v)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s %q: write a number from %d to %d", name, v, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(s, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > hi {
				return nil, fmt.Errorf("%s %q: the step after / must be a number from 1 to %d", name, part, hi)
			}
			step = n
		}
		if rng == "*" {
			return nil, fmt.Errorf("%s %q: */N is not supported: write a start, such as 0/%d", name, part, step)
		}
		a, b := 0, 0
		var err error
		if x, y, isRange := strings.Cut(rng, ".."); isRange {
			if a, err = num(x); err != nil {
				return nil, err
			}
			if b, err = num(y); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("%s range %q ends before it starts", name, rng)
			}
		} else {
			if a, err = num(rng); err != nil {
				return nil, err
			}
			b = a
			if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set[v-lo] = true
		}
	}
	return set, nil
}

func has(set []bool, v, lo int) bool {
	return set == nil || (v-lo >= 0 && v-lo < len(set) && set[v-lo])
}

// next returns the first wall time strictly after w (both UTC times that
// stand for wall-clock readings) that the event names; zero when none.
func (c *calendar) next(w time.Time) time.Time {
	t := w.Truncate(time.Second).Add(time.Second)
	for i := 0; i < 1_000_000; i++ {
		y := t.Year()
		switch {
		case y > maxYear:
			return time.Time{}
		case y < minYear:
			t = time.Date(minYear, 1, 1, 0, 0, 0, 0, time.UTC)
		case !has(c.years, y, minYear):
			t = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !has(c.months, int(t.Month()), 1):
			t = time.Date(y, t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !has(c.days, t.Day(), 1) || !has(c.wdays, int(t.Weekday()), 0):
			t = time.Date(y, t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !has(c.hours, t.Hour(), 0):
			t = t.Truncate(time.Hour).Add(time.Hour)
		case !has(c.minutes, t.Minute(), 0):
			t = t.Truncate(time.Minute).Add(time.Minute)
		case !has(c.second, t.Second(), 0):
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}
