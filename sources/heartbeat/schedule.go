package heartbeat

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// dstWindow bounds how far a wall clock may move at a time-zone change.
// Real changes are at most two hours; ISC cron treats shifts under three
// hours specially, and so do we.
const dstWindow = 4 * time.Hour

// maxCandidates bounds the work of one nextRun call.
const maxCandidates = 20000

// fixedTime reports whether a cron schedule names fixed times of day: neither
// its minute nor its hour field starts with '*' (or '?'). ISC/Debian cron, and
// Healthchecks.io after it, apply their daylight-saving rules only to such
// jobs; jobs with a wildcard hour or minute simply follow the wall clock.
func fixedTime(spec string) bool {
	s := strings.TrimSpace(spec)
	if strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=") {
		_, rest, _ := strings.Cut(s, " ")
		s = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(s, "@") {
		d, _, _ := strings.Cut(s, " ")
		switch d {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight":
			return true
		}
		return false // @hourly, @every
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return false
	}
	star := func(x string) bool { return strings.HasPrefix(x, "*") || strings.HasPrefix(x, "?") }
	return !star(f[0]) && !star(f[1])
}

// nextRun returns the first time strictly after t at which s expects a run,
// computed on the wall clock of the schedule's zone:
//
//   - A fixed-time job whose wall time does not exist (clocks spring forward
//     over it) is expected at the first instant after the jump, as ISC cron
//     runs it then (a 02:30 job on the spring-forward day: at 03:00 summer
//     time).
//   - A fixed-time job whose wall time occurs twice (clocks fall back) is
//     expected once, at the first occurrence.
//   - A job with a wildcard hour or minute fires at every wall time that
//     exists, in both passes of a repeated hour.
//
// Schedules that are not wall-clock cron specs (@every) use s.Next. The zero
// time means that s never fires again.
func nextRun(s cron.Schedule, fixed bool, t time.Time) time.Time {
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return s.Next(t)
	}
	loc := spec.Location
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	naive := *spec
	naive.Location = time.UTC
	var best time.Time
	c := naive.Next(wall(t).Add(-dstWindow - time.Second))
	for i := 0; i < maxCandidates && !c.IsZero(); i++ {
		if !best.IsZero() && c.After(wall(best).Add(dstWindow)) {
			break
		}
		for _, at := range instants(c, loc, fixed) {
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		c = naive.Next(c)
	}
	if best.IsZero() {
		return best
	}
	return best.In(loc)
}

// wall returns t's wall clock in its own location, as a UTC time.
func wall(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// instants returns the instants in loc at which the wall time w (a UTC time
// standing for a wall clock reading) expects a run: the one instant when w
// exists once; the first (fixed) or both (wildcard) when w occurs twice; the
// end of the gap (fixed) or none (wildcard) when w does not exist.
func instants(w time.Time, loc *time.Location, fixed bool) []time.Time {
	guess := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	start, end := guess.ZoneBounds()
	offsets := []int{offset(guess)}
	if !start.IsZero() {
		offsets = append(offsets, offset(start.Add(-time.Nanosecond)))
	}
	if !end.IsZero() {
		offsets = append(offsets, offset(end))
	}
	var found []time.Time
	for _, off := range offsets {
		at := w.Add(-time.Duration(off) * time.Second).In(loc)
		if !wall(at).Equal(w) {
			continue
		}
		dup := false
		for _, f := range found {
			dup = dup || f.Equal(at)
		}
		if !dup {
			found = append(found, at)
		}
	}
	switch {
	case len(found) == 2:
		if found[1].Before(found[0]) {
			found[0], found[1] = found[1], found[0]
		}
		if fixed {
			return found[:1]
		}
		return found
	case len(found) == 1:
		return found
	case !fixed:
		return nil
	}
	// w falls in a gap: the clocks jumped over it at a zone boundary next
	// to guess. The jump is the boundary whose wall time just after is
	// later than w and whose wall time just before is earlier.
	for _, b := range []time.Time{start, end} {
		if b.IsZero() {
			continue
		}
		before := wall(b.Add(-time.Nanosecond).In(loc))
		if wall(b.In(loc)).After(w) && before.Before(w.Add(time.Nanosecond)) {
			return []time.Time{b.In(loc)}
		}
	}
	return nil
}

func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}
