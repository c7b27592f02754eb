package asserts

import (
	"time"

	"github.com/expr-lang/expr/builtin"

	"github.com/assertd/assertd"
)

// HeartbeatStatus is what heartbeat("name") returns inside an expression.
type HeartbeatStatus struct {
	Name     string        `expr:"name"`
	State    string        `expr:"state"`     // new, up, late, down, started, running-too-long, paused
	Up       bool          `expr:"up"`        // state is up, late or started
	Age      time.Duration `expr:"age"`       // since the last successful ping
	LastPing time.Time     `expr:"last_ping"` // of any kind
	LastExit int           `expr:"last_exit"` // exit code of the last finished run
}

// Names available in every expect and clear expression besides the query names.
const (
	EnvNow       = "now"       // time.Time of the evaluation
	EnvLabels    = "labels"    // the instance's labels
	EnvHeartbeat = "heartbeat" // func(name string) HeartbeatStatus
)

var reservedNames = func() []string {
	r := []string{EnvNow, EnvLabels, EnvHeartbeat, assertd.FnDuration,
		"true", "false", "nil", "in", "not", "and", "or", "matches", "contains",
		"startsWith", "endsWith", "let", "if", "else", "env"}
	return append(r, builtin.Names...)
}()

// Env returns the typed environment that expressions of an assert with these
// query names compile against: each query name is a float64.
func Env(queryNames []string) map[string]any {
	env := map[string]any{
		EnvNow:       time.Time{},
		EnvLabels:    map[string]string{},
		EnvHeartbeat: func(string) HeartbeatStatus { return HeartbeatStatus{} },
	}
	for _, n := range queryNames {
		env[n] = float64(0)
	}
	return env
}
