package heartbeat

import (
	"fmt"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/schedule"
)

// State is the state of one heartbeat, as heartbeat("name").state reads it.
type State string

// The heartbeat states.
const (
	StateNew            State = "new"              // never pinged successfully (nor failed, nor started)
	StateUp             State = "up"               // the last success is within its period / before the next scheduled run
	StateLate           State = "late"             // past the deadline, within grace
	StateDown           State = "down"             // past deadline + grace, or the last run failed
	StateStarted        State = "started"          // a run is in progress (/start) and within its limit
	StateRunningTooLong State = "running-too-long" // a run has been going for max_runtime or longer
	StatePaused         State = "paused"           // an operator paused it; the next ping resumes it
)

// States lists every state, in a stable order.
var States = []State{StateNew, StateUp, StateLate, StateDown, StateStarted, StateRunningTooLong, StatePaused}

// IsUp reports whether s counts as up for heartbeat("name").up: up, late or
// started.
func IsUp(s State) bool { return s == StateUp || s == StateLate || s == StateStarted }

// Certain reports whether a heartbeat status is evidence about the health of
// what sends it. It is false for a heartbeat that is new (never heard from),
// paused, or down because its pings stopped: silence means the sender, the
// network or assertd's view of them failed, and nothing is known. The engine
// must then make every instance that reads the heartbeat uncertain, whatever
// its expect says — never ok, and never remediated blindly.
//
// It is true for up, late and started (the sender was heard from in time),
// for running-too-long (the sender said a run began, and the limit the
// operator declared for it has passed), and for down after the sender itself
// reported a failure (/fail or a non-zero exit code: last_exit != 0).
func Certain(st asserts.HeartbeatStatus) bool {
	switch State(st.State) {
	case StateUp, StateLate, StateStarted, StateRunningTooLong:
		return true
	case StateDown:
		return st.LastExit != 0
	}
	return false
}

// Describe says in words what st means, for an instance's reason.
func Describe(st asserts.HeartbeatStatus) string {
	q := fmt.Sprintf("heartbeat %q", st.Name)
	switch State(st.State) {
	case StateNew:
		return q + " has never been pinged: its health is unknown"
	case StateUp:
		return q + " is up"
	case StateLate:
		return q + " is late (within its grace)"
	case StateStarted:
		return q + " has a run in progress"
	case StateRunningTooLong:
		return q + " has a run that exceeded its max_runtime"
	case StatePaused:
		return q + " is paused"
	case StateDown:
		if st.LastExit != 0 {
			return fmt.Sprintf("%s is down: its last run failed (exit code %d)", q, st.LastExit)
		}
		if st.LastPing.IsZero() {
			return q + " is down: it was never pinged in time, its health is unknown"
		}
		return fmt.Sprintf("%s is down: no ping in time since %s, its health is unknown", q, st.LastPing.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s is in unknown state %q", q, st.State)
}

// spec is what the state computation needs of a declared heartbeat.
type spec struct {
	period     time.Duration
	schedule   *schedule.Schedule
	grace      time.Duration
	maxRuntime time.Duration
}

func specOf(c *asserts.CompiledHeartbeat) spec {
	return spec{period: c.Period, schedule: c.Schedule, grace: c.Grace, maxRuntime: c.MaxRuntime}
}

// due is when a ping is expected next after a success at base; zero when the
// schedule never fires again.
func (s spec) due(base time.Time) time.Time {
	if s.schedule != nil {
		return s.schedule.Next(base)
	}
	return base.Add(s.period)
}

// run is a run in progress: started by a /start ping, not finished yet.
type run struct {
	id    string
	start time.Time
}

// maxOpenRuns bounds the runs tracked per heartbeat. Starts past it are
// logged but not tracked: the oldest runs, which set the deadline, are kept.
const maxOpenRuns = 64

// evaluate computes the state of a heartbeat at now and the instant at which
// that state will next change by itself (zero: not without a ping or an
// operator). runs are ordered by start.
func evaluate(s spec, r *assertd.HeartbeatRecord, runs []run, now time.Time) (State, time.Time) {
	if r.Paused {
		return StatePaused, time.Time{}
	}
	if len(runs) > 0 {
		oldest := runs[0].start
		if s.maxRuntime > 0 {
			end := oldest.Add(s.maxRuntime)
			if now.Before(end) {
				return StateStarted, end
			}
			return StateRunningTooLong, time.Time{}
		}
		base := r.LastSuccess
		if base.IsZero() {
			base = oldest
		}
		return byDeadline(s, base, now, StateStarted)
	}
	if r.Failed {
		return StateDown, time.Time{}
	}
	if r.LastSuccess.IsZero() {
		return StateNew, time.Time{}
	}
	return byDeadline(s, r.LastSuccess, now, StateUp)
}

func byDeadline(s spec, base, now time.Time, before State) (State, time.Time) {
	due := s.due(base)
	if due.IsZero() {
		return before, time.Time{}
	}
	if now.Before(due) {
		return before, due
	}
	down := due.Add(s.grace)
	if now.Before(down) {
		return StateLate, down
	}
	return StateDown, time.Time{}
}

// status builds what heartbeat("name") returns.
func status(name string, st State, r *assertd.HeartbeatRecord, now time.Time) asserts.HeartbeatStatus {
	since := r.LastSuccess
	if since.IsZero() {
		since = r.Created
	}
	age := now.Sub(since)
	if since.IsZero() || age < 0 {
		age = 0
	}
	return asserts.HeartbeatStatus{
		Name:     name,
		State:    string(st),
		Up:       IsUp(st),
		Age:      age,
		LastPing: r.LastPing,
		LastExit: r.LastExit,
	}
}

// apply returns the record and runs after ping p. It does not modify its
// arguments. p has been validated.
func apply(r assertd.HeartbeatRecord, runs []run, p assertd.Ping) (assertd.HeartbeatRecord, []run) {
	runs = slices.Clone(runs)
	if p.Kind == assertd.PingLog {
		return r, runs // a log entry changes nothing, as in Healthchecks.io
	}
	if p.At.After(r.LastPing) {
		r.LastPing = p.At
	}
	r.Paused = false
	switch p.Kind {
	case assertd.PingStart:
		if i := slices.IndexFunc(runs, func(x run) bool { return x.id == p.RunID }); i >= 0 {
			runs = slices.Delete(runs, i, i+1) // the same run started again
		}
		if len(runs) < maxOpenRuns {
			runs = append(runs, run{id: p.RunID, start: p.At})
			slices.SortStableFunc(runs, func(a, b run) int { return a.start.Compare(b.start) })
		}
	default:
		runs = endRun(runs, p.RunID)
		code := p.ExitCode
		if p.Kind == assertd.PingSuccess {
			code = 0
		}
		if p.Kind == assertd.PingFail && code == 0 {
			code = 1
		}
		r.LastExit = code
		r.Failed = code != 0
		if !r.Failed && p.At.After(r.LastSuccess) {
			r.LastSuccess = p.At
		}
	}
	setStart(&r, runs)
	return r, runs
}

// endRun ends the run with rid, or without rid the most recent one.
func endRun(runs []run, rid string) []run {
	i := len(runs) - 1
	if rid != "" {
		i = slices.IndexFunc(runs, func(x run) bool { return x.id == rid })
	}
	if i < 0 {
		return runs
	}
	return slices.Delete(runs, i, i+1)
}

// setStart records the oldest run in progress, the one whose deadline comes
// first, in the record.
func setStart(r *assertd.HeartbeatRecord, runs []run) {
	r.LastStart, r.StartRunID = time.Time{}, ""
	if len(runs) > 0 {
		r.LastStart, r.StartRunID = runs[0].start, runs[0].id
	}
}

// replay rebuilds the runs in progress from a heartbeat's stored record and
// its recent pings (newest first, as RecentPings returns them). Runs started
// before the oldest ping read are lost, except the record's own LastStart.
func replay(r assertd.HeartbeatRecord, recent []assertd.Ping) []run {
	if r.LastStart.IsZero() {
		return nil
	}
	var runs []run
	for i := len(recent) - 1; i >= 0; i-- {
		p := recent[i]
		if p.At.After(r.LastPing) {
			continue // not reflected in the record (a failed save)
		}
		switch p.Kind {
		case assertd.PingLog:
		case assertd.PingStart:
			_, runs = apply(assertd.HeartbeatRecord{}, runs, p)
		default:
			runs = endRun(runs, p.RunID)
		}
	}
	runs = slices.DeleteFunc(runs, func(x run) bool { return x.start.Before(r.LastStart) })
	if !slices.ContainsFunc(runs, func(x run) bool { return x.id == r.StartRunID && x.start.Equal(r.LastStart) }) {
		runs = append([]run{{id: r.StartRunID, start: r.LastStart}}, runs...)
	}
	return runs
}
