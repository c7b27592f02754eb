package schedule

import "time"

// dstWindow bounds how far a wall clock may move at a time-zone change.
// Real changes are at most two hours; ISC cron treats shifts under three
// hours specially, and so do we.
const dstWindow = 4 * time.Hour

// maxCandidates bounds the work of one nextRun call.
const maxCandidates = 20000

// nextRun returns the first instant strictly after t at which a schedule
// whose wall times are given by next fires in loc, by the rule in the
// package comment. The zero time means never.
func nextRun(next func(time.Time) time.Time, loc *time.Location, fixed bool, t time.Time) time.Time {
	t = t.In(loc)
	var best time.Time
	c := next(wall(t).Add(-dstWindow - time.Second))
	for i := 0; i < maxCandidates && !c.IsZero(); i++ {
		if !best.IsZero() && c.After(wall(best).Add(dstWindow)) {
			break
		}
		for _, at := range instants(c, loc, fixed) {
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		c = next(c)
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
// standing for a wall clock reading) fires: the one instant when w exists
// once; the first (fixed) or both (wildcard) when w occurs twice; the end of
// the gap (fixed) or none (wildcard) when w does not exist.
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
