// Package asserts is the assert file model: the asserts and heartbeats that
// operators commit to git, their validation with file:line:col errors, and
// their compilation (PromQL parse-checked, expect compiled once against a typed
// environment, templates parse-checked) into something the engine evaluates.
package asserts

import (
	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// Assert is one named condition, as written in an assert file.
type Assert struct {
	Name        string `yaml:"name" jsonschema:"required" jsonschema_description:"Unique name: letters, digits, '.', '_' and '-'."`
	Description string `yaml:"description" jsonschema_description:"What must stay true, in words."`
	// Source names the source the queries run against (default: the config's default source).
	Source   string           `yaml:"source" jsonschema_description:"Source the queries run against; default: the config's sources.default."`
	Every    assertd.Duration `yaml:"every" jsonschema_description:"Evaluate this often (default from the config, 30s). Exclusive with schedule."`
	Schedule Schedule         `yaml:"schedule" jsonschema_description:"Cron schedule (5 fields, CRON_TZ=Zone prefix allowed), or {on_calendar: EVENT, tz: ZONE}, instead of every."`
	For      assertd.Duration `yaml:"for" jsonschema_description:"How long an instance must stay violated before assertd acts."`
	// Clear is an optional expression that must hold (for ClearFor) before a
	// violated instance returns to ok; without it, expect must hold.
	Clear    string           `yaml:"clear" jsonschema_description:"Hysteresis: expression that must hold before a violated instance returns to ok (default: expect)."`
	ClearFor assertd.Duration `yaml:"clear_for" jsonschema_description:"How long clear (or expect) must hold before the instance returns to ok."`
	// Query binds names to PromQL queries; each name is a float64 in expect.
	Query map[string]string `yaml:"query" jsonschema_description:"Name → PromQL. Each name is a number in expect."`
	// Join names the labels that identify an instance across queries; by
	// default an instance is identified by all its labels (see docs/ASSERTS.md).
	Join         []string          `yaml:"join" jsonschema_description:"Labels that identify an instance across queries (default: all labels but __name__)."`
	Expect       string            `yaml:"expect" jsonschema_description:"expr-lang boolean expression that must hold, e.g. p99_ms < 50. Required unless trigger is set."`
	NoData       NoData            `yaml:"no_data" jsonschema:"enum=ok,enum=violated,enum=uncertain" jsonschema_description:"Verdict when a query returns nothing: ok, violated or uncertain (default)."`
	Missing      Missing           `yaml:"missing" jsonschema:"enum=resolve,enum=uncertain" jsonschema_description:"When an instance's series vanish while the source is healthy: resolve (default) or uncertain."`
	UncertainFor assertd.Duration  `yaml:"uncertain_for" jsonschema_description:"How long an instance may stay uncertain before humans are paged (default from the config)."`
	MaxInstances int               `yaml:"max_instances" jsonschema:"minimum=1" jsonschema_description:"The most instances (label sets) the assert may have (default from the config, 10000). Past it the assert is uncertain and paged once."`
	Remediate    string            `yaml:"remediate" jsonschema_description:"Name of the remediation to run when violated."`
	Escalate     string            `yaml:"escalate" jsonschema_description:"Name of the escalation policy that pages humans."`
	Labels       map[string]string `yaml:"labels" jsonschema_description:"Labels added to every instance."`
	// Trigger makes the assert alert-triggered (trigger.go): one instance
	// per matching alert, violated while it fires; Verify checks a fix.
	Trigger     *Trigger          `yaml:"trigger" jsonschema_description:"Alert-triggered: one instance per alert of a sender that the selector matches, violated while it fires. Exclusive with query and expect."`
	Verify      *Verify           `yaml:"verify" jsonschema_description:"With trigger: how a fix is verified without trusting the alert alone: query and expect, resolved_within, or both."`
	Annotations map[string]string `yaml:"annotations" jsonschema_description:"Go templates over .Assert, .Description, .Labels, .Values, .State, with Prometheus' template functions (humanize, humanizeDuration, reReplaceAll, …)."`

	// Pos is where the assert starts; set by the loader.
	Pos strictyaml.Pos `yaml:"-" json:"-"`
}

// KeyHints explains keys that people coming from other tools write.
func (*Assert) KeyHints() map[string]string {
	return map[string]string{
		"expr":      `write the PromQL under query: (name: PromQL) and the condition under expect:`,
		"condition": `write the condition under expect:, such as expect: p99_ms < 50`,
		"interval":  `write every: 30s (or schedule: "*/5 * * * *")`,
		"alert":     `write name:`,
		"severity":  `write it as a label: labels: {severity: page}`,
		"runbook":   `write the remediation's name under remediate:`,
	}
}

// NoData is the verdict when a query returns no series.
type NoData string

// The no_data policies.
const (
	NoDataOK        NoData = "ok"
	NoDataViolated  NoData = "violated"
	NoDataUncertain NoData = "uncertain"
)

// Missing says what happens to an instance whose series vanished while its
// source is healthy.
type Missing string

// The missing policies.
const (
	MissingResolve   Missing = "resolve"
	MissingUncertain Missing = "uncertain"
)

// Heartbeat is a named ping that something is alive or that a job ran.
type Heartbeat struct {
	Name        string           `yaml:"name" jsonschema:"required"`
	Description string           `yaml:"description"`
	Period      assertd.Duration `yaml:"period" jsonschema_description:"A ping is expected at least this often. Exclusive with schedule."`
	Schedule    Schedule         `yaml:"schedule" jsonschema_description:"Cron schedule on which a ping is expected (CRON_TZ=Zone prefix allowed), or {on_calendar: EVENT, tz: ZONE}."`
	Grace       assertd.Duration `yaml:"grace" jsonschema_description:"How late a ping may be before the heartbeat is down (default 5m)."`
	MaxRuntime  assertd.Duration `yaml:"max_runtime" jsonschema_description:"A run started with /start that has not finished after this is running-too-long."`
	KeyEnv      string           `yaml:"key_env" jsonschema_description:"Environment variable holding the ping key (pings must carry ?key=)."`
	KeyFile     string           `yaml:"key_file" jsonschema_description:"File holding the ping key."`
	UUID        string           `yaml:"uuid" jsonschema_description:"A random (version 4) UUID: the heartbeat also takes pings at /ping/UUID without a key, as Healthchecks.io does. Whoever knows it can ping."`
	Create      *Create          `yaml:"create" jsonschema_description:"Let pings to /ping/<ping-key>/<name>?create=1 create heartbeats whose names start with prefix, like this one."`
	Public      bool             `yaml:"public" jsonschema_description:"Take pings from anyone who reaches the listener, without a key. Needed for a heartbeat with no key, no uuid and no project ping key."`

	Pos strictyaml.Pos `yaml:"-" json:"-"`
}

// KeyHints explains keys that are not accepted.
func (*Heartbeat) KeyHints() map[string]string {
	return map[string]string{
		"key":      "secrets only by reference: write key_env: VARIABLE or key_file: PATH",
		"slug":     "the slug of /ping/<ping-key>/<slug> is the heartbeat's name",
		"interval": "write period: 24h (or schedule:)",
		"timeout":  "write grace: 2h",
	}
}
