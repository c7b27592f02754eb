// Package heartbeat follows heartbeats: named pings by which a job or a
// service says it is alive or that it ran. It takes pings over HTTP (an API
// like Healthchecks.io's), keeps them durable through a Store, computes each
// heartbeat's state from an injected time, and exposes the states to asserts
// (heartbeat("name")) and as Prometheus series.
//
// # Pings
//
// The API is Healthchecks.io's. A ping names its heartbeat in one of three
// ways, each with its credential:
//
//	/ping/{name}[/ACTION]              ?key= or X-Assertd-Key: the heartbeat's key_env/key_file or the project ping key
//	/ping/{ping-key}/{name}[/ACTION]   the project ping key; ?create=1 creates a heartbeat from a create: pattern
//	/ping/{uuid}[/ACTION]              the heartbeat's uuid: is the credential
//
// ACTION is nothing (success), start, fail (exit code 1), log (a log entry
// that changes no state) or an exit code 0-255. A heartbeat declared
// public: true takes /ping/{name} without a key; one with no credential at
// all is refused at check and its pings are answered 401. Keys are compared
// in constant time and never logged, answered or stored.
//
// ?rid= names a run, so that overlapping runs of one job are told apart: a
// success or failure with a rid ends the run started with that rid; one
// without a rid ends the most recently started run. A body past MaxBody
// bytes is answered 413 (every answer carries Ping-Body-Limit). Every ping
// is durable in the Store before it is acknowledged. See Tracker.Handler for
// the answers.
//
// # Created heartbeats
//
// A heartbeat declared with create: {prefix: P, max: N} is a pattern: pings
// of /ping/<ping-key>/<P…>?create=1 create heartbeat <P…> with the pattern's
// period or schedule, grace and max_runtime, up to N of them (a ping past
// that is refused). Created heartbeats are stored like declared ones and are
// followed again after a restart or a reload while the pattern stays
// declared. The pattern itself takes no pings; heartbeat("pattern") reads the
// worst of the heartbeats created from it: down, running-too-long, new, late,
// started, up, in that order, paused ones last; new while none exists.
//
// # States
//
// A heartbeat expects a success every period, or at every time of its cron
// schedule. Its deadline is last success + period, or the first scheduled
// time after the last success. States are computed, never stored, from the
// stored record and the current time; the first rule that applies wins:
//
//   - paused: an operator paused it (Pause). Any ping but a log resumes it, as does
//     Resume.
//   - started: a run is in progress (/start without an end yet). With
//     max_runtime set it stays started until exactly start + max_runtime of
//     its oldest open run, then it is
//   - running-too-long, until that run ends. Without max_runtime a run in
//     progress does not move the deadline: the heartbeat is started until the
//     deadline (counted from the last success, or from the start when there
//     was none), then late, then down, as below.
//   - down, at once, when the last finished run failed (/fail or a non-zero
//     exit code), until a success.
//   - new until the first success; its age counts from when assertd first
//     knew the heartbeat (HeartbeatRecord.Created).
//   - up while now < deadline; late while deadline <= now < deadline + grace;
//     down from deadline + grace on.
//
// Each change happens at the exact instant named; NextDeadline returns it so
// that the engine can wake up then (the Tracker itself runs no timers).
// heartbeat("name").up is true for up, late and started. last_exit is the exit
// code of the last finished run (0 for a success, 1 for /fail).
//
// # Schedules and daylight saving time
//
// A schedule is a cron spec or a systemd calendar event (package schedule),
// read on the wall clock of its zone (tz:, CRON_TZ=, else the local zone)
// with package schedule's rule for daylight saving time: a fixed-time job
// whose time is skipped when the clocks spring forward is expected once, at
// the first instant after the gap (a 02:30 job at 03:00 summer time), and
// one whose time occurs twice when they fall back is expected once, at the
// first occurrence. Jobs with a wildcard minute or hour (*/15 * * * *) are
// expected at every wall-clock time that exists. Periods are absolute
// durations and ignore the zone.
//
// # What the engine must make of a state
//
// A heartbeat that has gone silent says nothing about the health of what it
// watches: the job may have stopped, or only its pings, or the network. So a
// heartbeat that is new, or down because no ping came in time, is evidence of
// unknown health, and Certain reports false for it (and for paused). An assert
// whose expect reads such a heartbeat must be uncertain — never ok and never
// remediated blindly — whatever the expression says; Describe gives the
// reason in words. A heartbeat that is up, late or started is certain (the
// sender was heard from in time), and so are running-too-long and down after
// a reported failure (last_exit != 0): the sender itself said what went wrong.
// A paused heartbeat was put aside by an operator; the engine should report
// its asserts silenced rather than page about them.
//
// # Persistence
//
// State lives in assertd.HeartbeatRecord values and the ping log
// (assertd.Ping), both written through Store; MemoryStore implements it in
// memory, the SQL stores in store/. A new Tracker over the same Store computes
// the same states. The record holds the oldest run in progress; others are
// rebuilt from the recent pings when a Tracker starts.
package heartbeat
