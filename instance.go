package assertd

import (
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Labels is a label set.
type Labels map[string]string

// Names returns the label names, sorted.
func (l Labels) Names() []string {
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// String writes l the Prometheus way: {a="1", b="2"}.
func (l Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range l.Names() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Fingerprint identifies a label set: stable across runs and machines.
func (l Labels) Fingerprint() string {
	h := fnv.New64a()
	for _, k := range l.Names() {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(l[k]))
		h.Write([]byte{0xfe})
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// Copy returns a copy of l.
func (l Labels) Copy() Labels {
	c := make(Labels, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

// Sample is one series of a query result at one time.
type Sample struct {
	Labels Labels
	Value  float64
}

// Instance is one label set of an assert and where it stands.
type Instance struct {
	Assert      string             `json:"assert"`
	Fingerprint string             `json:"fingerprint"`
	Labels      Labels             `json:"labels"`
	State       State              `json:"state"`
	Since       time.Time          `json:"since"`  // when State began
	Reason      string             `json:"reason"` // why it is in State, in words
	Values      map[string]float64 `json:"values"`
	LastEval    time.Time          `json:"last_eval"`
	// ViolatedSince is when the current violation began (the `for` clock);
	// zero when the instance is not violated.
	ViolatedSince time.Time `json:"violated_since,omitzero"`
	// ClearSince is when clear (or expect) began to hold again (the
	// `clear_for` clock); zero otherwise.
	ClearSince time.Time `json:"clear_since,omitzero"`
	// Silenced names the silence that matches the instance (an overlay: it
	// is still evaluated and recorded, but nothing acts on it). Not stored:
	// recomputed at each evaluation.
	Silenced string `json:"silenced,omitempty"`
	// Underlying is set on the engine's view of a silenced instance: State
	// is then Silenced and Underlying the state it is in underneath (the
	// state that is stored, that decisions use and that returns when the
	// silence ends). Not stored.
	Underlying State `json:"underlying_state,omitempty"`
	// Held is set on the engine's view of an instance whose change waits
	// for the store (an outage): State, Since and Reason are then what the
	// store holds, and HeldState the state it takes once the change is
	// stored. Nothing acts on a held change until then. Not stored.
	Held      bool  `json:"held,omitempty"`
	HeldState State `json:"held_state,omitempty"`
	// FirstSeen is when the engine first saw the instance; zero for the
	// instances it started with (loaded from the store, or found by the
	// assert's first evaluation). The blast-radius breaker counts instances
	// that appeared within its window apart. Not stored.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Lifecycle is the target's lifecycle state (from its lifecycle label
	// or the engine API), such as upgrading; "" when none is known.
	Lifecycle string `json:"lifecycle,omitempty"`
	// AlertAnnotations and GeneratorURL are those of the alert behind an
	// instance of an alert-triggered assert. Not stored: every evaluation
	// sets them.
	AlertAnnotations map[string]string `json:"alert_annotations,omitempty"`
	GeneratorURL     string            `json:"generator_url,omitempty"`
}

// Transition is one recorded change of an instance's state.
type Transition struct {
	ID          int64              `json:"id"`
	Assert      string             `json:"assert"`
	Fingerprint string             `json:"fingerprint"`
	Labels      Labels             `json:"labels"`
	From        State              `json:"from"`
	To          State              `json:"to"`
	At          time.Time          `json:"at"`
	Reason      string             `json:"reason"`
	Values      map[string]float64 `json:"values"`
}

// PingKind is what a heartbeat ping says.
type PingKind string

// The ping kinds.
const (
	PingSuccess PingKind = "success"
	PingStart   PingKind = "start"
	PingFail    PingKind = "fail"
	PingExit    PingKind = "exit" // with an exit code; 0 is success
	PingLog     PingKind = "log"  // a log entry: the heartbeat's state does not change
)

// Ping is one heartbeat ping as received.
type Ping struct {
	ID        int64     `json:"id"`
	Heartbeat string    `json:"heartbeat"`
	Kind      PingKind  `json:"kind"`
	ExitCode  int       `json:"exit_code"`
	RunID     string    `json:"rid,omitempty"`
	At        time.Time `json:"at"`
	Body      string    `json:"body,omitempty"` // bounded
	Source    string    `json:"source,omitempty"`
}

// HeartbeatRecord is the stored state of one heartbeat.
type HeartbeatRecord struct {
	Name        string    `json:"name"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastPing    time.Time `json:"last_ping,omitzero"`
	LastStart   time.Time `json:"last_start,omitzero"` // of the run in progress; zero when none
	StartRunID  string    `json:"start_rid,omitempty"`
	LastExit    int       `json:"last_exit"`
	Failed      bool      `json:"failed"` // the last finished run failed
	Paused      bool      `json:"paused"`
	Created     time.Time `json:"created"`
}

// Vector is the result of one instant query: the samples at one time. A scalar
// result is one sample with no labels and Scalar set.
type Vector struct {
	Samples []Sample
	Scalar  bool
}

// Errors of sources, told apart by errors.Is: an unavailable source makes
// instances uncertain; a bad query is a configuration error.
var (
	ErrSourceUnavailable = errors.New("source unavailable")
	ErrBadQuery          = errors.New("bad query")
)
