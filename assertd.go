// Package assertd holds the domain types that several of assertd's packages
// share: instance states and durations as operators write them, and the
// running binary's build information. Leaf packages import it; it imports
// none of them.
package assertd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/internal/strictyaml"
)

// State is the state of one assert instance.
type State string

// The instance states. Silenced is an overlay: a silenced instance is still
// evaluated and recorded, but nothing acts on it.
const (
	OK          State = "ok"
	Pending     State = "pending"
	Violated    State = "violated"
	Remediating State = "remediating"
	Escalated   State = "escalated"
	Uncertain   State = "uncertain"
	Silenced    State = "silenced"
)

// Duration is a span of time written the Prometheus way: 30s, 5m, 1h30m, 1d, 2w.
type Duration time.Duration

// ParseDuration reads a duration written the Prometheus way.
func ParseDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: write a number with a unit, such as 30s, 5m, 1h30m or 1d", s)
	}
	return time.Duration(d), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return model.Duration(d).String() }

// UnmarshalStrict decodes a duration from YAML.
func (d *Duration) UnmarshalStrict(dec *strictyaml.Decoder, n *yaml.Node) {
	if n.Kind != yaml.ScalarNode {
		dec.Errorf(n, "expected a duration such as 30s or 5m, got %s", strictyaml.KindName(n))
		return
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		dec.Errorf(n, "%v", err)
		return
	}
	*d = Duration(v)
}

// MarshalJSON writes d as a string such as "5m".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// CheckName checks the name of an assert, remediation, heartbeat, notifier or
// policy: it appears in URLs, labels and commands, so it is kept plain.
func CheckName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s has no name: add name: my-%s", kind, strings.ReplaceAll(kind, " ", "-"))
	case !nameRE.MatchString(name):
		return fmt.Errorf("%s name %q may only hold letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", kind, name)
	}
	return nil
}

var labelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckLabelName checks a label name the way Prometheus does (legacy names).
func CheckLabelName(name string) error {
	if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
		return fmt.Errorf("label name %q is not valid: use letters, digits and _ , not starting with a digit or __", name)
	}
	return nil
}

// Severity orders states worst first (higher is worse), for status listings.
func (s State) Severity() int {
	switch s {
	case Escalated:
		return 6
	case Remediating:
		return 5
	case Violated:
		return 4
	case Uncertain:
		return 3
	case Pending:
		return 2
	case Silenced:
		return 1
	}
	return 0
}
