package asserts

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/schedule"
)

// Schedule is a schedule as written: a cron string ("0 2 * * *",
// "CRON_TZ=Europe/Berlin 0 2 * * *", "@daily"), or a mapping with a cron
// spec or a systemd calendar event and a zone:
//
//	schedule: {on_calendar: "Mon..Fri *-*-* 02:00:00", tz: Europe/Berlin}
//	schedule: {cron: "0 2 * * *", tz: Europe/Berlin}
type Schedule struct {
	Cron       string `yaml:"cron" jsonschema_description:"Cron schedule: five fields, or @daily, @every 10m."`
	OnCalendar string `yaml:"on_calendar" jsonschema_description:"systemd calendar event, such as 'Mon..Fri *-*-* 02:00:00' (see docs/ASSERTS.md for the subset read)."`
	TZ         string `yaml:"tz" jsonschema_description:"IANA time zone the schedule is read in (default: assertd's local zone)."`
}

// UnmarshalStrict accepts a cron string as well as the mapping form.
func (s *Schedule) UnmarshalStrict(d *strictyaml.Decoder, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		s.Cron = n.Value
		return
	}
	type plain Schedule
	d.Decode(n, (*plain)(s))
}

// IsZero reports whether no schedule was written.
func (s Schedule) IsZero() bool { return s == Schedule{} }

// String returns the schedule in one line, as written.
func (s Schedule) String() string {
	switch {
	case s.OnCalendar != "" && s.TZ != "":
		return fmt.Sprintf("on_calendar %s (%s)", s.OnCalendar, s.TZ)
	case s.OnCalendar != "":
		return "on_calendar " + s.OnCalendar
	case s.TZ != "":
		return "CRON_TZ=" + s.TZ + " " + s.Cron
	}
	return s.Cron
}

// Compile parses the schedule.
func (s Schedule) Compile() (*schedule.Schedule, error) {
	switch {
	case s.Cron != "" && s.OnCalendar != "":
		return nil, fmt.Errorf("set cron or on_calendar, not both")
	case s.OnCalendar != "":
		return schedule.ParseCalendar(s.OnCalendar, s.TZ)
	case s.Cron == "":
		return nil, fmt.Errorf("schedule is empty: write a cron schedule such as \"0 2 * * *\" or {on_calendar: \"*-*-* 02:00:00\", tz: Europe/Berlin}")
	case s.TZ != "" && (strings.HasPrefix(s.Cron, "CRON_TZ=") || strings.HasPrefix(s.Cron, "TZ=")):
		return nil, fmt.Errorf("the zone is given twice: write tz: or CRON_TZ=, not both")
	case s.TZ != "":
		return schedule.ParseCron("CRON_TZ=" + s.TZ + " " + s.Cron)
	}
	return schedule.ParseCron(s.Cron)
}

// ParseSchedule reads a cron schedule: five fields, an optional CRON_TZ=Zone
// prefix, or a descriptor such as @daily or @every 10m.
func ParseSchedule(s string) (*schedule.Schedule, error) { return schedule.ParseCron(s) }
