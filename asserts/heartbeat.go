package asserts

import (
	"fmt"
	"strings"
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
	UUID       string // lower case; "" when none
	CreateMax  int    // with Create: how many heartbeats pings may create
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
	if h.UUID != "" {
		u, err := CheckUUID(h.UUID)
		if err != nil {
			errs.Add(at("uuid"), "%v", err)
		}
		c.UUID = u
	}
	if h.Create != nil {
		c.CreateMax = h.Create.Max
		switch {
		case h.Create.Prefix == "":
			errs.Add(at("create"), "create needs a prefix, such as create: {prefix: backup-}: pings of backup-<anything>?create=1 create a heartbeat")
		case assertd.CheckName("heartbeat", h.Create.Prefix+"x") != nil:
			errs.Add(at("create", "prefix"), "create prefix %q may only hold letters, digits, '.', '_' and '-', starting with a letter or digit", h.Create.Prefix)
		}
		switch {
		case h.Create.Max == 0:
			c.CreateMax = DefaultCreateMax
		case h.Create.Max < 0 || h.Create.Max > MaxCreateMax:
			errs.Add(at("create", "max"), "create max must be 1 to %d (default %d)", MaxCreateMax, DefaultCreateMax)
		}
		if h.HasCredential() || h.Public {
			errs.Add(at("create"), "heartbeats created by ?create=1 are pinged with the project ping key only: remove %s", map[bool]string{true: "public", false: h.credential()}[h.Public])
		}
	}
	if h.Public && (h.KeyEnv != "" || h.KeyFile != "" || h.UUID != "") {
		errs.Add(at("public"), "public: true takes pings without a key, but the heartbeat also sets %s: remove one", h.credential())
	}
	return c, errs
}

// The bounds of create: max.
const (
	DefaultCreateMax = 100
	MaxCreateMax     = 10000
)

// Create lets pings create heartbeats from a declaration, as Healthchecks.io's
// ?create=1 does: a ping of /ping/<ping-key>/<prefix><rest>?create=1 creates
// heartbeat <prefix><rest> with the declaration's period or schedule, grace
// and max_runtime, up to max of them.
type Create struct {
	Prefix string `yaml:"prefix" jsonschema:"required" jsonschema_description:"Names of the heartbeats created start with this, such as backup-."`
	Max    int    `yaml:"max" jsonschema_description:"At most this many are created (default 100, at most 10000)."`
}

// HasCredential reports whether pings of h must prove something: its own
// key (key_env, key_file) or its uuid. Without one, h is pinged with the
// project ping key, or by anyone when it is public.
func (h *Heartbeat) HasCredential() bool { return h.KeyEnv != "" || h.KeyFile != "" || h.UUID != "" }

func (h *Heartbeat) credential() string {
	switch {
	case h.KeyEnv != "":
		return "key_env"
	case h.KeyFile != "":
		return "key_file"
	}
	return "uuid"
}

// CheckUUID checks a heartbeat's uuid: a random (version 4) UUID in its
// usual 8-4-4-4-12 form, as uuidgen -r or Healthchecks.io make them; other
// versions can be guessed from a clock or a name. It returns it in lower
// case.
func CheckUUID(s string) (string, error) {
	u := strings.ToLower(s)
	if !IsUUID(u) {
		return "", fmt.Errorf("uuid %q is not a UUID: write 36 characters such as 0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40 (uuidgen -r makes one)", s)
	}
	if u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
		return "", fmt.Errorf("uuid %q is not a random (version 4) UUID, so it may be guessed: make one with uuidgen -r", s)
	}
	return u, nil
}

// IsUUID reports whether s is a UUID in lower-case 8-4-4-4-12 form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
				return false
			}
		}
	}
	return true
}

// Pings is the ping settings of assertd.yaml: the project ping key, as
// Healthchecks.io has one per project. With it set, every heartbeat takes
// pings at /ping/<ping-key>/<name>, and ?key=<ping-key> on /ping/<name>.
type Pings struct {
	KeyEnv  string `yaml:"key_env" jsonschema_description:"Environment variable holding the project ping key (at least 16 characters)."`
	KeyFile string `yaml:"key_file" jsonschema_description:"File holding the project ping key."`
}

// HasKey reports whether a project ping key is configured.
func (p Pings) HasKey() bool { return p.KeyEnv != "" || p.KeyFile != "" }

// KeyHints explains keys that are not accepted.
func (*Pings) KeyHints() map[string]string {
	return map[string]string{"key": "secrets only by reference: write key_env: VARIABLE or key_file: PATH"}
}
