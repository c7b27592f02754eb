package assertd

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assertd/assertd/schedule"
)

// This file holds the records the store keeps besides instances, transitions
// and heartbeats (see instance.go): decisions, runs and their steps, outbox
// messages, locks, approvals, silences, runtime settings and audit entries.

// Key is the idempotency key of t: the same transition (same instance, states
// and time) always yields the same key, so committing it twice is a no-op and
// an action derived from it cannot be doubled.
func (t Transition) Key() string {
	return fmt.Sprintf("t/%s/%s/%s>%s/%d", t.Assert, t.Fingerprint, t.From, t.To, t.At.UnixMicro())
}

// Action is what a decision does about a transition.
type Action string

// The actions a decision can take.
const (
	ActNone      Action = "none"      // record only
	ActRemediate Action = "remediate" // start a remediation run
	ActShadow    Action = "shadow"    // record what a remediation would have done
	ActEscalate  Action = "escalate"  // page humans (messages go to the outbox)
	ActNotify    Action = "notify"    // informational message, never a page
	ActHold      Action = "hold"      // refused: kill switch, budget, guard, lock …
	ActResolve   Action = "resolve"   // resolve pages sent earlier
	ActAck       Action = "ack"       // a human acknowledged the page: escalation stops
	ActLevel     Action = "level"     // not acknowledged in time: the policy's next level is paged
	ActRepeat    Action = "repeat"    // still not acknowledged: the policy's levels are paged again
)

// Decision is what the engine decided to do about one transition. It is
// committed together with the transition, before any action is taken.
type Decision struct {
	ID          int64     `json:"id"`
	Key         string    `json:"key"` // idempotency key, unique; derived from the transition
	Assert      string    `json:"assert"`
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
	Action      Action    `json:"action"`
	Remediation string    `json:"remediation,omitempty"`
	Policy      string    `json:"policy,omitempty"` // escalation policy
	Reason      string    `json:"reason"`
	// ActedAt is when the action was taken (a run created for it); zero
	// while it is still owed. Decisions that need no action are stored
	// with ActedAt = At.
	ActedAt time.Time `json:"acted_at,omitzero"`
	RunID   string    `json:"run_id,omitempty"`
	// Group, on a refusal, names a refusal that many instances share (the
	// blast-radius breaker): the engine pages once per group, not once per
	// instance. It is not stored; the reason says the same in words.
	Group string `json:"group,omitempty"`
}

// NeedsAction reports whether the decision asks for an action that the
// engine must take (and may still owe after a crash).
func (d Decision) NeedsAction() bool { return d.Action == ActRemediate || d.Action == ActShadow }

// RunStatus is where a remediation run stands.
type RunStatus string

// The run statuses. Every status but Running and Waiting is final.
const (
	RunRunning     RunStatus = "running"
	RunWaiting     RunStatus = "waiting" // for an approval
	RunSucceeded   RunStatus = "succeeded"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted" // assertd stopped while it ran
	RunRefused     RunStatus = "refused"     // approval denied or expired
)

// Final reports whether s is a final status.
func (s RunStatus) Final() bool { return s != RunRunning && s != RunWaiting }

// Run is one execution of a remediation for one instance.
type Run struct {
	ID          string    `json:"id"` // chosen by the caller; unique (the action's idempotency key)
	Remediation string    `json:"remediation"`
	Assert      string    `json:"assert"`
	Fingerprint string    `json:"fingerprint"`
	Labels      Labels    `json:"labels"`
	LockKey     string    `json:"lock_key,omitempty"`
	DecisionKey string    `json:"decision_key,omitempty"`
	Shadow      bool      `json:"shadow,omitempty"`
	Status      RunStatus `json:"status"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Outcome     string    `json:"outcome,omitempty"` // in words: "verified", "step restart failed: exit 1" …
}

// StepOutcome is how a step ended.
type StepOutcome string

// The step outcomes.
const (
	StepRunning StepOutcome = "running"
	StepOK      StepOutcome = "ok"
	StepFailed  StepOutcome = "failed"
	StepTimeout StepOutcome = "timeout"
	StepSkipped StepOutcome = "skipped"
)

// RunStep is the record of one step attempt of a run.
type RunStep struct {
	RunID    string      `json:"run_id"`
	Seq      int         `json:"seq"` // order within the run, from 0; a retry is a new Seq
	Name     string      `json:"name"`
	Attempt  int         `json:"attempt"`
	Started  time.Time   `json:"started"`
	Ended    time.Time   `json:"ended,omitzero"`
	Outcome  StepOutcome `json:"outcome"`
	ExitCode int         `json:"exit_code"`
	Output   string      `json:"output,omitempty"` // bounded by the store
	Error    string      `json:"error,omitempty"`
}

// MessageStatus is where an outbox message stands.
type MessageStatus string

// The message statuses.
const (
	MsgPending   MessageStatus = "pending"   // due at NextAttempt
	MsgSending   MessageStatus = "sending"   // claimed by a deliverer until ClaimUntil
	MsgDelivered MessageStatus = "delivered" // final
	MsgDead      MessageStatus = "dead"      // final: attempts exhausted or refused; kept and visible
)

// Message is one notification in the durable outbox.
type Message struct {
	ID      int64  `json:"id"`
	Key     string `json:"key"` // idempotency key, unique: enqueuing the same key twice is a no-op
	Channel string `json:"channel"`
	// DedupKey groups the messages of one incident for the provider
	// (PagerDuty dedup_key, the Slack thread).
	DedupKey    string        `json:"dedup_key,omitempty"`
	Kind        string        `json:"kind"` // trigger, resolve, info …
	Payload     string        `json:"payload"`
	Status      MessageStatus `json:"status"`
	Created     time.Time     `json:"created"`
	NextAttempt time.Time     `json:"next_attempt"`
	Attempts    int           `json:"attempts"`
	MaxAttempts int           `json:"max_attempts"` // 0: the store's default
	LastError   string        `json:"last_error,omitempty"`
	ClaimedBy   string        `json:"claimed_by,omitempty"`
	ClaimUntil  time.Time     `json:"claim_until,omitzero"`
	Delivered   time.Time     `json:"delivered,omitzero"`
	ProviderID  string        `json:"provider_id,omitempty"` // e.g. Slack ts, PagerDuty dedup key
}

// Lock is a store-backed lock with an owner and an expiry, shared by every
// replica. Token grows each time the lock changes hands (a fencing token).
type Lock struct {
	Key      string    `json:"key"`
	Owner    string    `json:"owner"`
	Token    int64     `json:"token"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Approval is a human's go-ahead for a run, requested before it starts.
type Approval struct {
	RunID     string    `json:"run_id"`
	Requested time.Time `json:"requested"`
	Expires   time.Time `json:"expires"`
	Decided   time.Time `json:"decided,omitzero"`
	By        string    `json:"by,omitempty"`
	Approved  bool      `json:"approved"`
	Comment   string    `json:"comment,omitempty"`
}

// MatchOp is a label matcher's operator.
type MatchOp string

// The matcher operators, as in Prometheus.
const (
	MatchEqual    MatchOp = "="
	MatchNotEqual MatchOp = "!="
	MatchRegexp   MatchOp = "=~"
	MatchNotRegex MatchOp = "!~"
)

// Matcher matches one label. Regular expressions are anchored at both ends,
// as in Prometheus; a missing label matches as the empty string.
type Matcher struct {
	Name  string  `json:"name"`
	Op    MatchOp `json:"op"`
	Value string  `json:"value"`
}

// Validate checks the matcher.
func (m Matcher) Validate() error {
	if m.Name == "" {
		return fmt.Errorf("matcher has no label name")
	}
	switch m.Op {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegex:
		if _, err := regexp.Compile("^(?:" + m.Value + ")$"); err != nil {
			return fmt.Errorf("matcher %s%s%q: invalid regular expression: %w", m.Name, m.Op, m.Value, err)
		}
	default:
		return fmt.Errorf("matcher %s: unknown operator %q: write =, !=, =~ or !~", m.Name, m.Op)
	}
	return nil
}

// Matches reports whether l satisfies m. An invalid regular expression
// matches nothing. It compiles m's regular expression at each call: to
// match many label sets, compile once with NewMatcherSet.
func (m Matcher) Matches(l Labels) bool {
	return m.match(l[m.Name], m.regexp())
}

// regexp is m's regular expression anchored at both ends; nil for = and !=
// and for an invalid one.
func (m Matcher) regexp() *regexp.Regexp {
	if m.Op != MatchRegexp && m.Op != MatchNotRegex {
		return nil
	}
	re, err := regexp.Compile("^(?:" + m.Value + ")$")
	if err != nil {
		return nil
	}
	return re
}

// match reports whether the label value v satisfies m, whose compiled
// regular expression is re (nil: = or !=, or invalid, which matches nothing).
func (m Matcher) match(v string, re *regexp.Regexp) bool {
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp, MatchNotRegex:
		if re == nil {
			return false
		}
		return re.MatchString(v) == (m.Op == MatchRegexp)
	}
	return false
}

// MatcherSet is a list of matchers whose regular expressions are compiled
// once, when the set is made, for matching many label sets. It matches as
// each Matcher's Matches does. It is safe for concurrent use.
type MatcherSet struct {
	matchers []Matcher
	res      []*regexp.Regexp // per matcher; nil for = and != and invalid ones
}

// NewMatcherSet compiles ms (which it copies).
func NewMatcherSet(ms []Matcher) *MatcherSet {
	s := &MatcherSet{matchers: slices.Clone(ms), res: make([]*regexp.Regexp, len(ms))}
	for i, m := range ms {
		s.res[i] = m.regexp()
	}
	return s
}

// Matches reports whether l satisfies every matcher of the set (an empty
// set matches every label set).
func (s *MatcherSet) Matches(l Labels) bool {
	for i, m := range s.matchers {
		if !m.match(l[m.Name], s.res[i]) {
			return false
		}
	}
	return true
}

// Len is the number of matchers.
func (s *MatcherSet) Len() int { return len(s.matchers) }

// Of reports whether the set was made from exactly ms.
func (s *MatcherSet) Of(ms []Matcher) bool { return slices.Equal(s.matchers, ms) }

func (m Matcher) String() string { return m.Name + string(m.Op) + strconv.Quote(m.Value) }

// Silence mutes the instances whose labels match all its matchers, from Start
// until End, or — when Cron is set — in windows of Duration that begin at each
// cron occurrence between Start and End (a maintenance window); a schedule
// without CRON_TZ= is read in assertd's local zone. Occurrences follow the
// daylight-saving rule of package schedule: one skipped by the clocks
// springing forward begins at the end of the gap, one that occurs twice
// begins once. A zero End never ends. The instances are still evaluated and recorded; nothing acts.
type Silence struct {
	ID       string    `json:"id"`
	Matchers []Matcher `json:"matchers"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	Cron     string    `json:"cron,omitempty"` // e.g. "CRON_TZ=Europe/Berlin 0 2 * * SUN"
	Duration Duration  `json:"duration,omitempty"`
	Author   string    `json:"author"`
	Comment  string    `json:"comment"`
	Created  time.Time `json:"created"`
}

// Validate checks the silence.
func (s Silence) Validate() error {
	if s.ID == "" {
		return fmt.Errorf("silence has no id")
	}
	if len(s.Matchers) == 0 {
		return fmt.Errorf("silence %s has no matchers: add at least one, such as instance=\"db1\"", s.ID)
	}
	for _, m := range s.Matchers {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("silence %s: %w", s.ID, err)
		}
	}
	if s.Start.IsZero() {
		return fmt.Errorf("silence %s has no start", s.ID)
	}
	if !s.End.IsZero() && !s.End.After(s.Start) {
		return fmt.Errorf("silence %s ends (%s) before it starts (%s)", s.ID, s.End.UTC().Format(time.RFC3339), s.Start.UTC().Format(time.RFC3339))
	}
	if s.Cron != "" {
		if _, err := schedule.ParseCron(s.Cron); err != nil {
			return fmt.Errorf("silence %s: %w", s.ID, err)
		}
		if s.Duration <= 0 {
			return fmt.Errorf("silence %s: a recurring silence needs a duration, such as 2h", s.ID)
		}
	} else if s.End.IsZero() {
		return fmt.Errorf("silence %s has no end: give an end time or a cron schedule with a duration", s.ID)
	}
	if s.Author == "" {
		return fmt.Errorf("silence %s has no author", s.ID)
	}
	return nil
}

// ActiveAt reports whether the silence is in force at t.
func (s Silence) ActiveAt(t time.Time) bool {
	if t.Before(s.Start) || (!s.End.IsZero() && !t.Before(s.End)) {
		return false
	}
	if s.Cron == "" {
		return true
	}
	sched, err := schedule.ParseCron(s.Cron)
	if err != nil || s.Duration <= 0 {
		return false
	}
	// The window of an occurrence o is [o, o+Duration): t is inside one when
	// the first occurrence after t-Duration is not after t.
	from := t.Add(-s.Duration.Std())
	if from.Before(s.Start) {
		from = s.Start.Add(-time.Nanosecond)
	}
	next := sched.Next(from)
	return !next.IsZero() && !next.After(t)
}

// Matches reports whether every matcher of s matches l (a silence without
// matchers matches nothing). It compiles the matchers at each call: to
// match many label sets, use NewMatcherSet(s.Matchers).
func (s Silence) Matches(l Labels) bool {
	return len(s.Matchers) > 0 && NewMatcherSet(s.Matchers).Matches(l)
}

// The runtime settings assertd knows. They are stored and can be changed
// while it runs.
const (
	// SettingKillSwitch is "on" to stop all automated actions, "off" otherwise.
	SettingKillSwitch = "automation.kill_switch"
	// SettingMaxConcurrentRuns is the global number of runs at a time, such as "4".
	SettingMaxConcurrentRuns = "runs.max_concurrent"
	// SettingRunBudget is the global number of runs per window, such as "20/1h".
	SettingRunBudget = "runs.budget"
	// SettingRatePrefix starts a per-remediation rate override:
	// "remediation.rate/restart-api" = "3/1h".
	SettingRatePrefix = "remediation.rate/"
)

// Setting is one runtime setting.
type Setting struct {
	Key     string    `json:"key"`
	Value   string    `json:"value"`
	Updated time.Time `json:"updated"`
	By      string    `json:"by"`
	Reason  string    `json:"reason,omitempty"`
}

// Validate checks the value of a known setting.
func (s Setting) Validate() error {
	switch {
	case s.Key == SettingKillSwitch:
		if s.Value != "on" && s.Value != "off" {
			return fmt.Errorf("setting %s: %q is not on or off", s.Key, s.Value)
		}
	case s.Key == SettingMaxConcurrentRuns:
		if n, err := strconv.Atoi(s.Value); err != nil || n < 0 {
			return fmt.Errorf("setting %s: %q is not a number of runs such as 4", s.Key, s.Value)
		}
	case s.Key == SettingRunBudget || strings.HasPrefix(s.Key, SettingRatePrefix):
		if strings.HasPrefix(s.Key, SettingRatePrefix) {
			if err := CheckName("remediation", strings.TrimPrefix(s.Key, SettingRatePrefix)); err != nil {
				return fmt.Errorf("setting %s: %w", s.Key, err)
			}
		}
		if _, _, err := ParseRate(s.Value); err != nil {
			return fmt.Errorf("setting %s: %w", s.Key, err)
		}
	default:
		return fmt.Errorf("unknown setting %q: the settings are %s, %s, %s and %s<remediation>",
			s.Key, SettingKillSwitch, SettingMaxConcurrentRuns, SettingRunBudget, SettingRatePrefix)
	}
	return nil
}

// ParseRate reads a rate written as count/window, such as "3/1h".
func ParseRate(s string) (count int, within time.Duration, err error) {
	c, w, ok := strings.Cut(s, "/")
	if ok {
		count, err = strconv.Atoi(c)
		if err == nil {
			within, err = ParseDuration(w)
		}
	}
	if !ok || err != nil || count < 0 || within <= 0 {
		return 0, 0, fmt.Errorf("%q is not a rate: write a count and a window, such as 3/1h", s)
	}
	return count, within, nil
}

// AuditEntry records one operator action: who did what, to what, and why.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // silence.add, setting.put, run.approve …
	Target string    `json:"target,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Breaker is the stored state of an assert's blast-radius breaker. Open,
// automation for the assert is suspended: it says what opened it (the
// fleet counts at the time, the label group, the page group). Closed, it
// says who closed it, when and why: an operator (ClosedBy is the token's
// name), or assertd when the share of violating instances fell back
// (ClosedBy empty).
type Breaker struct {
	Assert string `json:"assert"`
	Open   bool   `json:"open"`
	// Group is the page group of the trip: one page for every refusal.
	Group string `json:"group,omitempty"`
	// GroupLabel and GroupValue name the instances that tripped it (those
	// sharing a label value, such as zone="b"); empty: all of them.
	GroupLabel string `json:"group_label,omitempty"`
	GroupValue string `json:"group_value,omitempty"`
	// Violating of Instances turned violated within the window when it opened.
	Violating int       `json:"violating"`
	Instances int       `json:"instances"`
	OpenedAt  time.Time `json:"opened_at,omitzero"`
	// Reason is why automation is suspended. Shown by the runner, it is
	// recomputed from the fleet as it is now (ViolatingNow of
	// InstancesNow, not stored); stored, it is the reason at opening.
	Reason       string    `json:"reason"`
	ViolatingNow int       `json:"violating_now"`
	InstancesNow int       `json:"instances_now"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	ClosedBy     string    `json:"closed_by,omitempty"`
	CloseReason  string    `json:"close_reason,omitempty"`
}

// LifecycleOverride is a target's lifecycle state set by an operator (the
// engine API), for every instance carrying the target's labels: who set
// it, when and why.
type LifecycleOverride struct {
	Target  Labels    `json:"target"`
	State   string    `json:"state"`
	By      string    `json:"by,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated,omitzero"`
}
