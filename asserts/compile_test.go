package asserts

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/assertd/assertd/internal/strictyaml"
)

func compileYAML(t *testing.T, src string) (*Compiled, strictyaml.Errors) {
	t.Helper()
	var f struct {
		Asserts []Assert `yaml:"asserts"`
	}
	pos, errs := strictyaml.Decode("a.yaml", []byte(src), &f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return Compile(&f.Asserts[0], pos.In("asserts", 0), DefaultDefaults)
}

func TestCompileFillsDefaultsAndRuns(t *testing.T) {
	c, errs := compileYAML(t, `
asserts:
  - name: latency
    query:
      p99_ms: histogram_quantile(0.99, rate(h_bucket[5m])) * 1000
      base: scalar(vector(1))
    expect: p99_ms < 50 && heartbeat("agent").age < duration("1h") && labels.zone != "z9"
    annotations:
      summary: "{{ .Assert }} p99 {{ printf \"%.1f\" .Values.p99_ms }} on {{ .Labels.instance }}"
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Every != 30*time.Second || c.NoData != NoDataUncertain || c.Missing != MissingResolve || c.UncertainFor != 5*time.Minute || c.Schedule != nil {
		t.Errorf("defaults: every %v no_data %q missing %q uncertain_for %v", c.Every, c.NoData, c.Missing, c.UncertainFor)
	}
	if got := strings.Join(c.QueryNames(), ","); got != "base,p99_ms" {
		t.Errorf("query names %s", got)
	}
	if len(c.Heartbeats) != 1 || c.Heartbeats[0].Name != "agent" || c.Heartbeats[0].Pos.Line != 7 {
		t.Errorf("heartbeat refs %+v", c.Heartbeats)
	}
	for _, tc := range []struct {
		p99  float64
		age  time.Duration
		zone string
		want bool
	}{
		{10, time.Minute, "z1", true},
		{50, time.Minute, "z1", false},
		{10, 2 * time.Hour, "z1", false},
		{10, time.Minute, "z9", false},
	} {
		env := Env(c.QueryNames())
		env["p99_ms"], env["base"] = tc.p99, 1.0
		env[EnvLabels] = map[string]string{"zone": tc.zone}
		env[EnvHeartbeat] = func(string) HeartbeatStatus { return HeartbeatStatus{Age: tc.age} }
		out, err := expr.Run(c.Expect, env)
		if err != nil || out != tc.want {
			t.Errorf("%+v: got %v, %v", tc, out, err)
		}
	}
	var b bytes.Buffer
	err := c.Annotations["summary"].Execute(&b, map[string]any{"Assert": "latency", "Values": map[string]float64{"p99_ms": 61.23}, "Labels": map[string]string{"instance": "api-1"}})
	if err != nil || b.String() != "latency p99 61.2 on api-1" {
		t.Errorf("annotation %q, %v", b.String(), err)
	}
}

func TestCompileSchedule(t *testing.T) {
	c, errs := compileYAML(t, "asserts: [{name: s, schedule: 'CRON_TZ=Europe/Berlin 0 2 * * *', query: {u: up}, expect: u == 1}]")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Every != 0 || c.Schedule == nil {
		t.Fatal("schedule not compiled")
	}
	// 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
	for from, want := range map[string]string{
		"2026-01-10T12:00:00Z": "2026-01-11T01:00:00Z",
		"2026-07-10T12:00:00Z": "2026-07-11T00:00:00Z",
	} {
		f, _ := time.Parse(time.RFC3339, from)
		if got := c.Schedule.Next(f).UTC().Format(time.RFC3339); got != want {
			t.Errorf("next after %s = %s, want %s", from, got, want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for s, wantErr := range map[string]string{
		"*/5 * * * *":               "",
		"@daily":                    "",
		"@every 10m":                "",
		"TZ=UTC 0 * * * *":          "",
		"@every 0s":                 "@every must be more than 0s",
		"@every -5m":                "@every must be more than 0s",
		"@every soon":               "@every takes a duration",
		"* * *":                     "not a valid cron schedule",
		"CRON_TZ=Nowhere 0 * * * *": "not a valid cron schedule",
		"61 * * * *":                "not a valid cron schedule",
	} {
		_, err := ParseSchedule(s)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%q: %v", s, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: got %v, want %q", s, err, wantErr)
		}
	}
}

func TestCompileHeartbeatDefaults(t *testing.T) {
	var f struct {
		Heartbeats []Heartbeat `yaml:"heartbeats"`
	}
	pos, _ := strictyaml.Decode("h.yaml", []byte("heartbeats: [{name: a, period: 1h}, {name: b, period: 1h, grace: 0s}]"), &f)
	a, errs := CompileHeartbeat(&f.Heartbeats[0], pos.In("heartbeats", 0), DefaultDefaults)
	b, errs2 := CompileHeartbeat(&f.Heartbeats[1], pos.In("heartbeats", 1), DefaultDefaults)
	if len(errs)+len(errs2) > 0 {
		t.Fatal(errs, errs2)
	}
	if a.Grace != DefaultDefaults.Grace || b.Grace != 0 || a.Period != time.Hour {
		t.Errorf("grace a %v b %v", a.Grace, b.Grace)
	}
}

// The mapping forms of schedule: a calendar event or a cron spec in a zone;
// conflicting or empty ones are refused at their position.
func TestCompileScheduleForms(t *testing.T) {
	from := time.Date(2026, 1, 9, 12, 0, 0, 0, time.UTC) // a Friday
	for src, want := range map[string]string{
		`{on_calendar: "Mon..Fri *-*-* 02:00:00", tz: Europe/Berlin}`: "2026-01-12T01:00:00Z",
		`{cron: "0 2 * * *", tz: America/New_York}`:                   "2026-01-10T07:00:00Z",
		`"@daily"`: "2026-01-10T00:00:00Z",
	} {
		c, errs := compileYAML(t, "asserts: [{name: s, schedule: "+src+", query: {u: up}, expect: u == 1}]")
		if len(errs) > 0 {
			t.Fatalf("%s: %v", src, errs)
		}
		if got := c.Schedule.Next(from).UTC().Format(time.RFC3339); got != want {
			t.Errorf("%s: next %s, want %s", src, got, want)
		}
	}
	for src, want := range map[string]string{
		`{cron: "0 2 * * *", on_calendar: daily}`: "1:31: set cron or on_calendar, not both",
		`{tz: UTC}`: "1:31: schedule is empty",
		`{cron: "CRON_TZ=UTC 0 2 * * *", tz: UTC}`:       "1:31: the zone is given twice",
		`{on_calendar: "*-*-* 02:00", tz: Nowhere/Land}`: `1:31: tz "Nowhere/Land" is not a time zone`,
		`{on_calendar: "Mon..Fri *-*-* 02:00 UTC"}`:      "write it as tz: UTC",
		`{on_calendar: daily, every: 1h}`:                "every",
	} {
		_, errs := compileYAMLErrs(src)
		if len(errs) == 0 || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s: %v, want %q", src, errs, want)
		}
	}
}

func compileYAMLErrs(schedule string) (*Compiled, strictyaml.Errors) {
	var f struct {
		Asserts []Assert `yaml:"asserts"`
	}
	pos, errs := strictyaml.Decode("a.yaml", []byte("asserts: [{name: s, schedule: "+schedule+", query: {u: up}, expect: u == 1}]"), &f)
	if len(errs) > 0 {
		return nil, errs
	}
	return Compile(&f.Asserts[0], pos.In("asserts", 0), DefaultDefaults)
}
