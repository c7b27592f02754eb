package assertd

import "time"

// NoticeKind says what a notice is.
type NoticeKind string

// The notice kinds. Trigger pages; Info never pages.
const (
	NoticeTrigger NoticeKind = "trigger" // humans are paged
	NoticeResolve NoticeKind = "resolve" // a paged incident recovered
	NoticeInfo    NoticeKind = "info"    // for the record: auto-healed, shadow run …
	NoticeAck     NoticeKind = "ack"     // a human took a paged incident: its escalation stopped
)

// NoticeVersion is the version of the Notice payload.
const NoticeVersion = 1

// Notice is what the engine tells people: the payload of an outbox message,
// which each notifier renders for its channel.
type Notice struct {
	Version     int                `json:"version"`
	Kind        NoticeKind         `json:"kind"`
	Assert      string             `json:"assert"`
	Description string             `json:"description,omitempty"`
	Fingerprint string             `json:"fingerprint"`
	Labels      Labels             `json:"labels"`
	Values      map[string]float64 `json:"values,omitempty"`
	State       State              `json:"state"`
	Reason      string             `json:"reason"`
	Annotations map[string]string  `json:"annotations,omitempty"`
	// GeneratorURL links to what generated the alert behind the instance
	// (Prometheus' graph of the rule), for an alert-triggered assert.
	GeneratorURL string    `json:"generator_url,omitempty"`
	Policy       string    `json:"policy,omitempty"`
	At           time.Time `json:"at"`
	Since        time.Time `json:"since"`
	RunID        string    `json:"run_id,omitempty"`
	StepLog      string    `json:"step_log,omitempty"`
	// Level and Round place a page in its escalation: the level of the
	// policy and the repeat round, both from 0 (the first page is 0, 0).
	Level int `json:"level,omitempty"`
	Round int `json:"round,omitempty"`
	// By is who acknowledged, on an ack.
	By string `json:"by,omitempty"`
	// Approval is the run waiting for a human's approval until Expires, on
	// an approval request (an info notice): the channel may offer to
	// approve or refuse it.
	Approval string    `json:"approval,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
}
