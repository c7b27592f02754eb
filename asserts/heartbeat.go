package asserts

import (
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/schedule"
)

// CompiledHeartbeat is a heartbeat with its defaults filled in.
type CompiledHeartbeat struct {
	*Heartbeat
	Period     time.Duration // zero when Schedule is set
	Schedule   *schedule.Schedule
	Grace      time.Duration
	MaxRuntime time.Duration // zero: no limit
}

// CompileHeartbeat checks h, reporting every problem at its position.
func CompileHeartbeat(h *Heartbeat, loc strictyaml.Loc, def Defaults) (*CompiledHeartbeat, strictyaml.Errors) {
	var errs strictyaml.Errors
	at := loc.At
	c := &CompiledHeartbeat{Heartbeat: h, Period: h.Period.Std(), Grace: h.Grace.Std(), MaxRuntime: h.MaxRuntime.Std()}
	if err := assertd.CheckName("heartbeat", h.Name); err != nil {
		errs.Add(at("name"), "%v", err)
	}
	switch {
	case !h.Schedule.IsZero() && loc.Has("period"):
		errs.Add(at("schedule"), "set period or schedule, not both")
	case !h.Schedule.IsZero():
		s, err := h.Schedule.Compile()
		if err != nil {
			errs.Add(at("schedule"), "%v", err)
		}
		c.Schedule = s
	case !loc.Has("period"):
		errs.Add(at(), "heartbeat %q needs period: (such as period: 24h) or schedule: (such as schedule: \"0 2 * * *\")", h.Name)
	case h.Period <= 0:
		errs.Add(at("period"), "period must be more than 0s, such as period: 1h")
	}
	if h.Grace < 0 {
		errs.Add(at("grace"), "grace must not be negative")
	}
	if !loc.Has("grace") {
		c.Grace = def.Grace
	}
	if h.MaxRuntime < 0 || (h.MaxRuntime == 0 && loc.Has("max_runtime")) {
		errs.Add(at("max_runtime"), "max_runtime must be more than 0s, such as max_runtime: 2h")
	}
	if h.KeyEnv != "" && h.KeyFile != "" {
		errs.Add(at("key_file"), "set key_env or key_file, not both")
	}
	return c, errs
}
