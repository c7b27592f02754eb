// Package store persists assertd's state: instances and their transitions,
// decisions, remediation runs and steps, the notifier outbox, locks,
// approvals, heartbeats and pings, silences, runtime settings, the
// blast-radius breakers and the audit trail of operator actions.
//
// This package holds what every implementation and caller shares: the
// interface, Store, its filters, Change, the errors and the bounds, and
// HeartbeatStore. It links no database driver. The implementations are
// store/sqlite (sqlite.Open; the embedded default, WAL, one writer) and
// store/postgres (postgres.Open; several replicas may share it), over one SQL
// implementation with one schema and migrations (store/internal/sqlstore);
// store/storetest is the conformance suite both pass.
//
// The store never reads the clock: callers pass every time. Times are stored
// as UTC Unix microseconds, so a time with microsecond precision round-trips
// exactly (finer precision is truncated).
//
// Write-ahead: Commit writes an instance's new state, its transition, the
// decision it causes and the outbox messages in one transaction, keyed by an
// idempotency key, before any action is taken. Committing the same key again
// is a no-op, and a run created for a decision carries the run ID the caller
// derived from it, so a crash between commit and action can neither lose
// (PendingDecisions) nor double (CreateRun reports an existing run) the action.
//
// When the database cannot be reached (or the SQLite file was removed or
// replaced), errors satisfy errors.Is(err, ErrUnavailable) so the engine can
// hold its actions until it is back; Health says so for readiness.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/assertd/assertd"
)

// Errors callers can recognise with errors.Is.
var (
	// ErrUnavailable: the database cannot be reached or cannot take writes
	// (connection refused or lost, server shutting down, database locked,
	// disk I/O error, the SQLite file removed or replaced). Hold actions and
	// retry later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change contradicts what is stored (an approval that
	// was already decided or has expired, a claim that is no longer yours).
	ErrConflict = errors.New("conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrInvalid: the input is not valid (the message says what to fix).
	ErrInvalid = errors.New("invalid input")
)

// Bounds the store applies to what it keeps.
const (
	MaxStepOutput    = 64 << 10 // bytes of a step's output kept (the tail)
	MaxPingBody      = 10 << 10 // bytes of a ping's body kept (the head)
	PingsKept        = 100      // recent pings kept per heartbeat
	DefaultAttempts  = 10       // outbox delivery attempts before a message is dead
	DefaultRetention = 30 * 24 * time.Hour
)

// Store is assertd's persistence. Every method is safe for concurrent use.
type Store interface {
	// Commit applies a change atomically: all of it or nothing. If a change
	// with the same Key was committed before, it writes nothing and returns
	// Applied == false.
	Commit(ctx context.Context, c Change) (CommitResult, error)

	// PutInstance stores an instance's current state (no transition).
	PutInstance(ctx context.Context, in assertd.Instance) error
	// Instance returns one instance, or ErrNotFound.
	Instance(ctx context.Context, assert, fingerprint string) (assertd.Instance, error)
	// Instances returns every stored instance (to reload state on start),
	// ordered by assert and fingerprint; assert == "" means all asserts.
	Instances(ctx context.Context, assert string) ([]assertd.Instance, error)
	// DeleteInstance forgets an instance (its history stays).
	DeleteInstance(ctx context.Context, assert, fingerprint string) error
	// Transitions returns recorded transitions, newest first.
	Transitions(ctx context.Context, f TransitionFilter) ([]assertd.Transition, error)

	// Decisions returns recorded decisions, newest first.
	Decisions(ctx context.Context, f DecisionFilter) ([]assertd.Decision, error)
	// PendingDecisions returns the decisions whose action is still owed
	// (no run was created for them), oldest first.
	PendingDecisions(ctx context.Context) ([]assertd.Decision, error)

	// CreateRun records a new run and, when r.DecisionKey is set, marks that
	// decision acted, in one transaction. If a run with r.ID exists it
	// changes nothing and returns created == false.
	CreateRun(ctx context.Context, r assertd.Run) (created bool, err error)
	// FinishRun sets a run's final status, end time and outcome.
	FinishRun(ctx context.Context, id string, status assertd.RunStatus, ended time.Time, outcome string) error
	// SetRunStatus changes a run's status (running <-> waiting).
	SetRunStatus(ctx context.Context, id string, status assertd.RunStatus) error
	// Run returns one run, or ErrNotFound.
	Run(ctx context.Context, id string) (assertd.Run, error)
	// Runs returns runs, newest first.
	Runs(ctx context.Context, f RunFilter) ([]assertd.Run, error)
	// RunStats counts the runs of a remediation for one lock key started at
	// or after since (max_runs) and gives the latest start (cooldown).
	RunStats(ctx context.Context, remediation, lockKey string, since time.Time) (RunStats, error)
	// InterruptRuns, called on start, turns every run left running or waiting
	// into interrupted and its instance into uncertain (with a recorded
	// transition), in one transaction, and returns those runs.
	InterruptRuns(ctx context.Context, at time.Time, reason string) ([]assertd.Run, error)
	// PutStep records or updates (by RunID and Seq) a step; Output is cut to
	// its last MaxStepOutput bytes.
	PutStep(ctx context.Context, s assertd.RunStep) error
	// Steps returns a run's steps in order.
	Steps(ctx context.Context, runID string) ([]assertd.RunStep, error)

	// AcquireLock takes the lock for owner until now+ttl when it is free,
	// expired or already owner's (then it is renewed). ok is false when
	// another owner holds it; the returned Lock is then the holder's.
	AcquireLock(ctx context.Context, key, owner string, now time.Time, ttl time.Duration) (l assertd.Lock, ok bool, err error)
	// ReleaseLock frees the lock if owner holds it; the fencing token is kept.
	ReleaseLock(ctx context.Context, key, owner string, now time.Time) error
	// Lock returns the lock's state, or ErrNotFound.
	Lock(ctx context.Context, key string) (assertd.Lock, error)

	// RequestApproval records that a run waits for a human.
	RequestApproval(ctx context.Context, a assertd.Approval) error
	// DecideApproval records a human's answer (and an audit entry). It
	// returns ErrConflict when already decided or expired at time at.
	DecideApproval(ctx context.Context, runID, by string, approved bool, at time.Time, comment string) error
	// Approval returns one approval, or ErrNotFound.
	Approval(ctx context.Context, runID string) (assertd.Approval, error)
	// PendingApprovals returns the undecided approvals, oldest first,
	// expired ones included (the engine pages for those).
	PendingApprovals(ctx context.Context) ([]assertd.Approval, error)

	// Enqueue adds messages to the outbox; a message whose Key exists is
	// skipped. It returns the IDs of the messages added.
	Enqueue(ctx context.Context, msgs ...assertd.Message) ([]int64, error)
	// Claim gives owner up to limit messages that are due at now (pending
	// with NextAttempt <= now, or sending with an expired claim), claimed
	// until now+lease, oldest due first. Concurrent claimers never get the
	// same message.
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]assertd.Message, error)
	// Ack marks a claimed message delivered, with the provider's message ID.
	Ack(ctx context.Context, id int64, owner string, at time.Time, providerID string) error
	// Nack records a failed attempt: the message is due again at retryAt, or
	// dead when its attempts are spent or dead is true. ErrConflict when
	// owner no longer holds the claim.
	Nack(ctx context.Context, id int64, owner string, at time.Time, errText string, retryAt time.Time, dead bool) error
	// Release gives back a claimed message without counting the claim as an
	// attempt (a deliverer that held it back: rate limit, grouping, a
	// channel cooling down), due again at next; a non-empty note becomes
	// its LastError. ErrConflict when owner no longer holds the claim.
	Release(ctx context.Context, id int64, owner string, next time.Time, note string) error
	// Requeue makes a dead message pending again, due at at (an operator
	// action, audited).
	Requeue(ctx context.Context, id int64, by string, at time.Time) error
	// Message returns one message, or ErrNotFound.
	Message(ctx context.Context, id int64) (assertd.Message, error)
	// Messages lists outbox messages, newest first.
	Messages(ctx context.Context, f MessageFilter) ([]assertd.Message, error)
	// ProviderID returns the provider message ID of the latest delivered
	// message for channel and dedup key ("" when none), to thread or update.
	ProviderID(ctx context.Context, channel, dedupKey string) (string, error)

	// PutHeartbeat stores a heartbeat's state.
	PutHeartbeat(ctx context.Context, h assertd.HeartbeatRecord) error
	// RecordPing stores a ping and the heartbeat's new state in one
	// transaction, keeping the last PingsKept pings; the body is cut to
	// MaxPingBody bytes. It returns the ping's ID.
	RecordPing(ctx context.Context, h assertd.HeartbeatRecord, p assertd.Ping) (int64, error)
	// Heartbeat returns one heartbeat's state, or ErrNotFound.
	Heartbeat(ctx context.Context, name string) (assertd.HeartbeatRecord, error)
	// Heartbeats returns every heartbeat's state, by name.
	Heartbeats(ctx context.Context) ([]assertd.HeartbeatRecord, error)
	// Pings returns a heartbeat's latest pings, newest first, at most limit
	// (and never more than PingsKept).
	Pings(ctx context.Context, heartbeat string, limit int) ([]assertd.Ping, error)

	// PutSilence creates or replaces a silence (validated; audited as
	// the silence's author).
	PutSilence(ctx context.Context, s assertd.Silence) error
	// ExpireSilence ends a silence at at (audited).
	ExpireSilence(ctx context.Context, id, by string, at time.Time) error
	// Silence returns one silence, or ErrNotFound.
	Silence(ctx context.Context, id string) (assertd.Silence, error)
	// Silences returns the silences not expired at now (all when
	// includeExpired), by start then ID. Recurring ones are returned whether
	// or not a window is open: use Silence.ActiveAt.
	Silences(ctx context.Context, now time.Time, includeExpired bool) ([]assertd.Silence, error)

	// PutSetting validates and stores a runtime setting (audited).
	PutSetting(ctx context.Context, s assertd.Setting) error
	// DeleteSetting removes a setting, back to the configured default (audited).
	DeleteSetting(ctx context.Context, key, by string, at time.Time, reason string) error
	// Settings returns every stored setting, by key.
	Settings(ctx context.Context) ([]assertd.Setting, error)

	// PutBreaker stores the state of an assert's blast-radius breaker (the
	// remediation runner opens it, and closes it when the share falls back).
	PutBreaker(ctx context.Context, b assertd.Breaker) error
	// CloseBreaker closes an open breaker by hand: who, why and when are
	// stored with an audit entry, in one transaction, and the closed
	// breaker returned. ErrNotFound when the assert's breaker never
	// tripped, ErrConflict when it is not open.
	CloseBreaker(ctx context.Context, assert, by, reason string, at time.Time) (assertd.Breaker, error)
	// Breaker returns an assert's breaker, or ErrNotFound.
	Breaker(ctx context.Context, assert string) (assertd.Breaker, error)
	// Breakers returns every stored breaker, by assert.
	Breakers(ctx context.Context) ([]assertd.Breaker, error)

	// PutLifecycle sets the lifecycle state of a target (every instance
	// carrying its labels) or, with State "", removes it; audited
	// (lifecycle.set) in the same transaction.
	PutLifecycle(ctx context.Context, o assertd.LifecycleOverride) error
	// Lifecycles returns the lifecycle overrides, oldest first.
	Lifecycles(ctx context.Context) ([]assertd.LifecycleOverride, error)

	// Audit records an operator action.
	Audit(ctx context.Context, e assertd.AuditEntry) (int64, error)
	// AuditLog returns audit entries, newest first.
	AuditLog(ctx context.Context, f AuditFilter) ([]assertd.AuditEntry, error)

	// Compact deletes history older than before, keeping every state change:
	// transitions whose From and To differ, and the audit trail, are kept;
	// same-state transitions, decisions no longer owed, finished runs and
	// their steps, final outbox messages, decided approvals, pings and
	// expired silences older than before are deleted.
	Compact(ctx context.Context, before time.Time) (CompactStats, error)

	// Health reports whether the store can be used now: nil, or why not,
	// as an error satisfying errors.Is(err, ErrUnavailable) (or ErrClosed).
	// Readiness uses it.
	Health(ctx context.Context) error

	// Close releases the database.
	Close() error
}

// Change is what one step of the engine commits atomically.
type Change struct {
	// Key is the idempotency key (required), such as Transition.Key().
	Key string
	// At is when the change happened; when zero, the transition's, the
	// decision's or the instance's LastEval time is used (one is required).
	At time.Time
	// Instance, when set, is stored as the instance's current state.
	Instance *assertd.Instance
	// Transition, when set, is appended to the history.
	Transition *assertd.Transition
	// Decision, when set, is recorded; its Key defaults to Change.Key. A
	// decision key already used by another change is ErrConflict, and
	// nothing of the change is written.
	Decision *assertd.Decision
	// Messages are added to the outbox (a message's Key defaults to
	// Change.Key + "/" + its index).
	Messages []assertd.Message
}

// CommitResult says what Commit did.
type CommitResult struct {
	Applied      bool // false: the key was committed before; nothing written
	TransitionID int64
	DecisionID   int64
	MessageIDs   []int64
}

// TransitionFilter selects transitions; zero fields select everything.
type TransitionFilter struct {
	Assert      string
	Fingerprint string
	To          assertd.State
	Since       time.Time // At >= Since
	Until       time.Time // At < Until
	Limit       int       // 0: 1000
}

// DecisionFilter selects decisions; zero fields select everything.
type DecisionFilter struct {
	Assert      string
	Fingerprint string
	Action      assertd.Action
	Limit       int // 0: 1000
}

// RunFilter selects runs; zero fields select everything.
type RunFilter struct {
	Remediation string
	Assert      string
	Fingerprint string
	Status      assertd.RunStatus
	Limit       int // 0: 1000
}

// RunStats is what max_runs and cooldown need.
type RunStats struct {
	Count     int       // runs started at or after the time asked
	LastStart time.Time // the latest start ever; zero when none
}

// MessageFilter selects outbox messages; zero fields select everything.
type MessageFilter struct {
	Status   assertd.MessageStatus
	Channel  string
	DedupKey string
	Limit    int // 0: 1000
}

// AuditFilter selects audit entries; zero fields select everything.
type AuditFilter struct {
	Actor  string
	Action string
	Target string
	Limit  int // 0: 1000
}

// CompactStats counts what Compact deleted.
type CompactStats struct {
	Transitions, Decisions, Runs, Steps, Messages, Approvals, Pings, Silences int64
}
