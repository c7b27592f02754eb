// Package remediations is the remediation model: modeled procedures (a small
// graph of steps that run an argv, call a URL, wait or verify an assert) with
// their guards and limits, and the validation that proves every path through
// a remediation ends in a passing verify or in a page, with no loop.
package remediations

import (
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// Remediation is one modeled procedure, as written in a remediation file.
type Remediation struct {
	Name        string `yaml:"name" jsonschema:"required"`
	Description string `yaml:"description"`
	// Lock is a template naming what the run touches; one run per lock key at a time.
	Lock     string           `yaml:"lock" jsonschema_description:"Template of the lock key: one run per key at a time, e.g. '{{ .Labels.instance }}'."`
	MaxRuns  *Limit           `yaml:"max_runs" jsonschema_description:"Restart intensity: past count runs within the window, page instead."`
	Cooldown assertd.Duration `yaml:"cooldown" jsonschema_description:"Minimum time between two runs for the same lock key."`
	Guard    string           `yaml:"guard" jsonschema_description:"Expression that must hold for a run to start: violating(a), instances(a), fraction_violating(a [, label])."`
	Mode     Mode             `yaml:"mode" jsonschema:"enum=on,enum=shadow" jsonschema_description:"on (default) runs; shadow records what it would run and makes no external call."`
	Rollout  string           `yaml:"rollout" jsonschema_description:"Label selector such as '{env=~\"staging|canary\"}': mode on applies only to matching instances; others run in shadow."`
	Approval Approval         `yaml:"approval"`
	// Allow holds, per label, a pattern its value must match (anchored at
	// both ends) before a run starts.
	Allow map[string]string `yaml:"allow" jsonschema_description:"Label: regular expression its value must match (anchored) before a run starts, such as instance: '^[a-z0-9-]+$'. Checked by the gates; a mismatch is refused and paged."`
	Steps []Step            `yaml:"steps" jsonschema:"required"`

	Pos strictyaml.Pos `yaml:"-" json:"-"`
}

// KeyHints explains keys that are not accepted.
func (*Remediation) KeyHints() map[string]string {
	return map[string]string{
		"command":  "write steps: with a step such as {name: restart, run: [systemctl, restart, api]}",
		"run":      "write run: inside a step under steps:",
		"verify":   "write verify: inside a step under steps:",
		"retries":  "write retries: on a step",
		"timeout":  "write timeout: on a step",
		"rate":     "write max_runs: {count: 3, within: 1h}",
		"max_rate": "write max_runs: {count: 3, within: 1h}",
	}
}

// Mode says whether runs act or only record what they would do.
type Mode string

// The modes.
const (
	ModeOn     Mode = "on"
	ModeShadow Mode = "shadow"
)

// Limit is a count within a window.
type Limit struct {
	Count  int              `yaml:"count" jsonschema:"required,minimum=1"`
	Within assertd.Duration `yaml:"within" jsonschema:"required"`
}

// Approval says whether a human must approve a run before it starts.
type Approval struct {
	Mode   string           `yaml:"mode" jsonschema:"enum=none,enum=required" jsonschema_description:"none (default) or required."`
	Expire assertd.Duration `yaml:"expire" jsonschema_description:"How long a run waits for approval before the instance is paged instead (default 15m)."`
}

// Step is one step: exactly one of Run, HTTP, Wait and Verify.
type Step struct {
	Name string `yaml:"name" jsonschema:"required"`
	// Run is an argv; each element is a template. It is never given to a shell.
	Run      []string         `yaml:"run" jsonschema_description:"Program and arguments (argv, never a shell string); each element is a template."`
	Env      map[string]Value `yaml:"env" jsonschema_description:"Environment for run: NAME: value, or NAME: {secret_env: VAR} / {secret_file: PATH}."`
	EnvAllow []string         `yaml:"env_allow" jsonschema_description:"Variables of assertd's own environment passed through to run (nothing else is)."`
	Dir      string           `yaml:"dir" jsonschema_description:"Working directory for run."`
	HTTP     *HTTP            `yaml:"http"`
	Wait     assertd.Duration `yaml:"wait" jsonschema_description:"Settle for this long."`
	Verify   *Verify          `yaml:"verify" jsonschema_description:"An assert name (re-evaluated for this instance), or {expr: ...}."`

	Timeout   assertd.Duration `yaml:"timeout" jsonschema_description:"Limit for one attempt (default 60s; verify 30s)."`
	Retries   int              `yaml:"retries" jsonschema:"minimum=0,maximum=10" jsonschema_description:"Attempts after the first (0 to 10)."`
	Backoff   assertd.Duration `yaml:"backoff" jsonschema_description:"Wait before the first retry, doubled each time (default 5s)."`
	OnFailure string           `yaml:"on_failure" jsonschema_description:"A step name, or page (default)."`
	OnSuccess string           `yaml:"on_success" jsonschema_description:"A step name, or done (verify steps only). Default: the next step."`
}

// KeyHints explains keys that are not accepted.
func (*Step) KeyHints() map[string]string {
	return map[string]string{
		"command": "write run: [program, arg, ...] (an argv list, never a shell string)",
		"cmd":     "write run: [program, arg, ...] (an argv list, never a shell string)",
		"shell":   "assertd never runs a shell string: write run: [program, arg, ...]",
		"sleep":   "write wait: 20s",
		"check":   "write verify: <assert name>",
		"url":     "write http: {url: ..., method: POST}",
		"on_fail": "write on_failure:",
		"next":    "write on_success:",
	}
}

// HTTP is a call to a URL.
type HTTP struct {
	Method       string           `yaml:"method" jsonschema:"enum=GET,enum=HEAD,enum=POST,enum=PUT,enum=PATCH,enum=DELETE" jsonschema_description:"Default POST."`
	URL          string           `yaml:"url" jsonschema:"required" jsonschema_description:"Template of an http or https URL."`
	Headers      map[string]Value `yaml:"headers" jsonschema_description:"Header: value, or Header: {secret_env: VAR, prefix: 'Bearer '}."`
	Body         string           `yaml:"body" jsonschema_description:"Template of the request body. With Content-Type application/json its values are JSON-encoded; any other body with templates needs body_escape: none."`
	BodyEscape   string           `yaml:"body_escape" jsonschema:"enum=json,enum=none" jsonschema_description:"json (default with a JSON Content-Type): values are JSON-encoded where they land; none: values are inserted as they are (required for a templated body that is not JSON)."`
	ExpectStatus []int            `yaml:"expect_status" jsonschema_description:"Statuses that count as success (default: any 2xx)."`
}

// Verify re-evaluates an assert for the instance, or evaluates an expression
// over the triggering assert's fresh values.
type Verify struct {
	Assert string `yaml:"assert"`
	Expr   string `yaml:"expr"`
}

// UnmarshalStrict accepts `verify: assert-name` as well as the mapping form.
func (v *Verify) UnmarshalStrict(d *strictyaml.Decoder, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		v.Assert = n.Value
		return
	}
	type plain Verify
	d.Decode(n, (*plain)(v))
}

// Value is a literal string or a reference to a secret.
type Value struct {
	Value      string `yaml:"value"`
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	Prefix     string `yaml:"prefix"`
}

// UnmarshalStrict accepts a plain string as well as the mapping form.
func (v *Value) UnmarshalStrict(d *strictyaml.Decoder, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		v.Value = n.Value
		return
	}
	type plain Value
	d.Decode(n, (*plain)(v))
}

// IsSecret reports whether v refers to a secret.
func (v Value) IsSecret() bool { return v.SecretEnv != "" || v.SecretFile != "" }
