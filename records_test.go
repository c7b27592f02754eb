package assertd

import (
	"strings"
	"testing"
	"time"
)

func TestTransitionKey(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)
	tr := Transition{Assert: "api", Fingerprint: "f1", From: OK, To: Pending, At: at, Reason: "r1"}
	same := tr
	same.Reason, same.At = "re-evaluated", at.In(time.FixedZone("CET", 3600))
	if tr.Key() != same.Key() {
		t.Errorf("the same transition has two keys: %s, %s", tr.Key(), same.Key())
	}
	for _, other := range []Transition{
		{Assert: "api", Fingerprint: "f2", From: OK, To: Pending, At: at},
		{Assert: "api", Fingerprint: "f1", From: OK, To: Violated, At: at},
		{Assert: "api", Fingerprint: "f1", From: OK, To: Pending, At: at.Add(time.Microsecond)},
	} {
		if other.Key() == tr.Key() {
			t.Errorf("%+v has the key of %+v", other, tr)
		}
	}
}

// TestMatcherSet: a compiled set matches when every matcher does, keeps its
// own copy of the matchers, and tells whether it was made from a list.
func TestMatcherSet(t *testing.T) {
	ms := []Matcher{{"env", MatchEqual, "prod"}, {"instance", MatchRegexp, "db[0-9]+"}}
	set := NewMatcherSet(ms)
	for l, want := range map[string]bool{"db1/prod": true, "db12/prod": true, "db1/dev": false, "web1/prod": false, "/prod": false} {
		inst, env, _ := strings.Cut(l, "/")
		if got := set.Matches(Labels{"instance": inst, "env": env}); got != want {
			t.Errorf("%v on %s = %v, want %v", ms, l, got, want)
		}
	}
	if !NewMatcherSet(nil).Matches(Labels{"a": "b"}) || NewMatcherSet(nil).Len() != 0 || set.Len() != 2 {
		t.Error("an empty set matches every label set")
	}
	if !set.Of(ms) || set.Of(ms[:1]) || set.Of([]Matcher{ms[0], {"instance", MatchRegexp, "db[0-9]"}}) {
		t.Error("Of")
	}
	ms[1].Value = "web.*" // the set keeps what it compiled
	if !set.Matches(Labels{"instance": "db1", "env": "prod"}) || set.Of(ms) {
		t.Error("the set changed with the list it was made from")
	}
}

func TestMatcher(t *testing.T) {
	l := Labels{"instance": "db1", "env": "prod"}
	for _, c := range []struct {
		m    Matcher
		want bool
	}{
		{Matcher{"instance", MatchEqual, "db1"}, true},
		{Matcher{"instance", MatchEqual, "db"}, false},
		{Matcher{"instance", MatchNotEqual, "db2"}, true},
		{Matcher{"instance", MatchRegexp, "db[0-9]"}, true},
		{Matcher{"instance", MatchRegexp, "db"}, false}, // anchored
		{Matcher{"instance", MatchNotRegex, "web.*"}, true},
		{Matcher{"missing", MatchEqual, ""}, true}, // a missing label is ""
		{Matcher{"missing", MatchRegexp, ".+"}, false},
		{Matcher{"instance", MatchRegexp, "d|x"}, false}, // anchored around the whole alternation
		{Matcher{"instance", MatchRegexp, "x|db1"}, true},
		{Matcher{"instance", MatchRegexp, "("}, false},   // invalid: matches nothing
		{Matcher{"instance", MatchNotRegex, "("}, false}, // not even negated
		{Matcher{"instance", "==", "db1"}, false},
	} {
		if got := c.m.Matches(l); got != c.want {
			t.Errorf("%s on %s = %v, want %v", c.m, l, got, c.want)
		}
		// Compiled once, it matches the same.
		if got := NewMatcherSet([]Matcher{c.m}).Matches(l); got != c.want {
			t.Errorf("MatcherSet{%s} on %s = %v, want %v", c.m, l, got, c.want)
		}
	}
	if err := (Matcher{"x", MatchRegexp, "("}).Validate(); err == nil || !strings.Contains(err.Error(), "invalid regular expression") {
		t.Errorf("Validate of a bad regexp: %v", err)
	}
	if err := (Matcher{"x", "~", "a"}).Validate(); err == nil || !strings.Contains(err.Error(), "write =, !=, =~ or !~") {
		t.Errorf("Validate of a bad operator: %v", err)
	}
}

func TestSilenceActive(t *testing.T) {
	day := func(h, m int) time.Time { return time.Date(2026, 3, 15, h, m, 0, 0, time.UTC) } // a Sunday
	once := Silence{ID: "s", Matchers: []Matcher{{"team", MatchEqual, "dba"}}, Start: day(1, 0), End: day(3, 0), Author: "a"}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{day(0, 59), false}, {day(1, 0), true}, {day(2, 59), true}, {day(3, 0), false}} {
		if got := once.ActiveAt(c.at); got != c.want {
			t.Errorf("one-off at %s = %v", c.at.Format(time.TimeOnly), got)
		}
	}
	// Sundays 02:00–04:00 Berlin time (UTC+1 in March): 01:00–03:00 UTC.
	weekly := Silence{ID: "w", Matchers: once.Matchers, Start: day(0, 0).AddDate(0, 0, -30), Cron: "CRON_TZ=Europe/Berlin 0 2 * * SUN",
		Duration: Duration(2 * time.Hour), Author: "a"}
	if err := weekly.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{day(0, 59), false}, {day(1, 0), true}, {day(2, 59), true}, {day(3, 0), false},
		{day(1, 30).AddDate(0, 0, 1), false},   // Monday
		{day(1, 30).AddDate(0, 0, 7), true},    // next Sunday
		{day(1, 30).AddDate(0, 0, -35), false}, // before Start
	} {
		if got := weekly.ActiveAt(c.at); got != c.want {
			t.Errorf("weekly at %s = %v, want %v", c.at.Format(time.DateTime), got, c.want)
		}
	}
	// Daily 02:30 Berlin for 1h: on 2026-03-29 02:30 does not exist and the
	// window begins at the end of the gap (03:00 CEST, 01:00 UTC).
	gap := Silence{ID: "g", Matchers: once.Matchers, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Cron: "CRON_TZ=Europe/Berlin 30 2 * * *",
		Duration: Duration(time.Hour), Author: "a"}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC), false},
		{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC), true},
		{time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 3, 30, 0, 45, 0, 0, time.UTC), true}, // 02:45 CEST
	} {
		if got := gap.ActiveAt(c.at); got != c.want {
			t.Errorf("spring-forward window at %s = %v, want %v", c.at.Format(time.DateTime), got, c.want)
		}
	}
	ended := weekly
	ended.End = day(0, 0)
	if ended.ActiveAt(day(1, 30)) {
		t.Error("active after its end")
	}
	if !once.Matches(Labels{"team": "dba"}) || once.Matches(Labels{"team": "web"}) || (Silence{}).Matches(Labels{}) {
		t.Error("Silence.Matches")
	}
	for name, s := range map[string]Silence{
		"no matchers": {ID: "x", Start: day(0, 0), End: day(1, 0), Author: "a"},
		"ends before": {ID: "x", Matchers: once.Matchers, Start: day(1, 0), End: day(0, 0), Author: "a"},
		"no end":      {ID: "x", Matchers: once.Matchers, Start: day(1, 0), Author: "a"},
		"bad cron":    {ID: "x", Matchers: once.Matchers, Start: day(1, 0), Cron: "every sunday", Duration: Duration(time.Hour), Author: "a"},
		"no duration": {ID: "x", Matchers: once.Matchers, Start: day(1, 0), Cron: "@daily", Author: "a"},
		"no author":   {ID: "x", Matchers: once.Matchers, Start: day(1, 0), End: day(2, 0)},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

func TestSettingValidate(t *testing.T) {
	for _, s := range []Setting{
		{Key: SettingKillSwitch, Value: "on"}, {Key: SettingKillSwitch, Value: "off"},
		{Key: SettingMaxConcurrentRuns, Value: "0"}, {Key: SettingRunBudget, Value: "20/1h"},
		{Key: SettingRatePrefix + "restart-api", Value: "3/30m"},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s=%s: %v", s.Key, s.Value, err)
		}
	}
	for _, s := range []Setting{
		{Key: SettingKillSwitch, Value: "yes"}, {Key: SettingMaxConcurrentRuns, Value: "-1"},
		{Key: SettingRunBudget, Value: "20"}, {Key: SettingRunBudget, Value: "x/1h"}, {Key: SettingRunBudget, Value: "3/0s"},
		{Key: SettingRatePrefix + "bad name!", Value: "3/1h"}, {Key: "nope", Value: "1"},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s=%s: valid", s.Key, s.Value)
		}
	}
	if n, w, err := ParseRate("3/1h"); err != nil || n != 3 || w != time.Hour {
		t.Errorf("ParseRate: %d %s %v", n, w, err)
	}
}
