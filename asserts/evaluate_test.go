package asserts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

// fakeQuerier answers queries from a table keyed by query text.
type fakeQuerier map[string]any // assertd.Vector or error

func (f fakeQuerier) Query(_ context.Context, q string, _ time.Time) (assertd.Vector, error) {
	switch v := f[q].(type) {
	case assertd.Vector:
		return v, nil
	case error:
		return assertd.Vector{}, v
	}
	return assertd.Vector{}, nil
}

func vec(samples ...any) assertd.Vector {
	var v assertd.Vector
	for i := 0; i < len(samples); i += 2 {
		v.Samples = append(v.Samples, assertd.Sample{Labels: samples[i].(assertd.Labels), Value: samples[i+1].(float64)})
	}
	return v
}

type L = assertd.Labels

var now = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func evalYAML(t *testing.T, src string, q fakeQuerier, hb HeartbeatFunc) Evaluation {
	t.Helper()
	c, errs := compileYAML(t, src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return c.Evaluate(context.Background(), q, hb, now)
}

func summary(ev Evaluation) string {
	var parts []string
	for _, v := range ev.Verdicts {
		parts = append(parts, fmt.Sprintf("%s %s %v", v.Labels, v.State, v.Values))
	}
	return strings.Join(parts, "; ")
}

// The join rule of docs/ASSERTS.md, rule by rule.
func TestJoinRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		assert string
		q      fakeQuerier
		want   string
		reason string // substring of the first verdict's reason
	}{
		{"one query, instances by label set",
			"asserts: [{name: a, query: {x: 'X'}, expect: x < 10}]",
			fakeQuerier{"X": vec(L{"__name__": "m", "instance": "a"}, 5.0, L{"__name__": "m", "instance": "b"}, 20.0)},
			`{instance="a"} ok map[x:5]; {instance="b"} violated map[x:20]`, "holds: x < 10 with x=5"},
		{"rule 1: a scalar joins every instance",
			"asserts: [{name: a, query: {x: 'X', limit: 'L'}, expect: x < limit}]",
			fakeQuerier{"X": vec(L{"i": "a"}, 5.0, L{"i": "b"}, 20.0), "L": assertd.Vector{Scalar: true, Samples: []assertd.Sample{{Labels: L{}, Value: 10}}}},
			`{i="a"} ok map[limit:10 x:5]; {i="b"} violated map[limit:10 x:20]`, ""},
		{"rule 1: a single unlabelled series is global too",
			"asserts: [{name: a, query: {x: 'X', limit: 'L'}, expect: x < limit}]",
			fakeQuerier{"X": vec(L{"i": "a"}, 5.0), "L": vec(L{"__name__": "limit"}, 3.0)},
			`{i="a"} violated map[limit:3 x:5]`, ""},
		{"rule 2+3: join on a subset; labels are the union, first query wins",
			"asserts: [{name: a, query: {used: 'U', limit: 'L'}, join: [instance], expect: used / limit < 0.9}]",
			fakeQuerier{"U": vec(L{"instance": "db1"}, 95.0), "L": vec(L{"instance": "db1", "job": "pg"}, 100.0)},
			`{instance="db1", job="pg"} violated map[limit:100 used:95]`, ""},
		{"rule 2: without join, different label sets do not meet (partial data)",
			"asserts: [{name: a, query: {used: 'U', limit: 'L'}, expect: used / limit < 0.9}]",
			fakeQuerier{"U": vec(L{"instance": "db1"}, 95.0), "L": vec(L{"instance": "db1", "job": "pg"}, 100.0)},
			`{instance="db1", job="pg"} uncertain map[limit:100]; {instance="db1"} uncertain map[used:95]`, "partial data: no value for used"},
		{"rule 4: two series for one key are ambiguous",
			"asserts: [{name: a, query: {x: 'X'}, join: [instance], expect: x < 10}]",
			fakeQuerier{"X": vec(L{"instance": "a", "code": "500"}, 5.0, L{"instance": "a", "code": "502"}, 7.0)},
			`{code="500", instance="a"} uncertain map[x:5]`, "query x returned several series"},
		{"rule 5: partial data follows no_data",
			"asserts: [{name: a, query: {x: 'X', y: 'Y'}, expect: x < y, no_data: violated}]",
			fakeQuerier{"X": vec(L{"i": "a"}, 5.0, L{"i": "b"}, 1.0), "Y": vec(L{"i": "a"}, 10.0)},
			`{i="a"} ok map[x:5 y:10]; {i="b"} violated map[x:1]`, ""},
		{"rule 6: no data at all is one instance with the assert's labels",
			"asserts: [{name: a, query: {x: 'X'}, expect: x < 10, labels: {team: web}}]",
			fakeQuerier{},
			`{team="web"} uncertain map[]`, "no data: the queries returned nothing (no_data: uncertain)"},
		{"rule 6: no_data ok",
			"asserts: [{name: a, query: {x: 'X'}, expect: x < 10, no_data: ok}]",
			fakeQuerier{},
			`{} ok map[]`, "no data"},
		{"rule 7: heartbeat only",
			`asserts: [{name: a, expect: 'heartbeat("b").age < duration("1h")', labels: {team: dba}}]`,
			fakeQuerier{},
			`{team="dba"} violated map[]`, `violated: heartbeat("b").age < duration("1h") is false`},
		{"assert labels override series labels",
			"asserts: [{name: a, query: {x: 'X'}, expect: x < 10, labels: {severity: page}}]",
			fakeQuerier{"X": vec(L{"i": "a", "severity": "info"}, 1.0)},
			`{i="a", severity="page"} ok map[x:1]`, ""},
		{"expect sees labels and now",
			`asserts: [{name: a, query: {x: 'X'}, expect: 'labels.i == "a" && now.Year() == 2026'}]`,
			fakeQuerier{"X": vec(L{"i": "a"}, 1.0, L{"i": "b"}, 1.0)},
			`{i="a"} ok map[x:1]; {i="b"} violated map[x:1]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := evalYAML(t, tc.assert, tc.q, func(string) (HeartbeatStatus, error) {
				return HeartbeatStatus{Age: 2 * time.Hour}, nil
			})
			if ev.SourceErr != nil {
				t.Fatal(ev.SourceErr)
			}
			if got := summary(ev); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if tc.reason != "" && !strings.Contains(ev.Verdicts[0].Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", ev.Verdicts[0].Reason, tc.reason)
			}
		})
	}
}

// Rule 8: a source that fails makes the evaluation uncertain, never ok.
func TestSourceErrorIsNotOK(t *testing.T) {
	ev := evalYAML(t, "asserts: [{name: a, query: {x: 'X'}, expect: x < 10, no_data: ok}]",
		fakeQuerier{"X": fmt.Errorf("%w: connection refused", assertd.ErrSourceUnavailable)}, nil)
	if ev.SourceErr == nil || !errors.Is(ev.SourceErr, assertd.ErrSourceUnavailable) || len(ev.Verdicts) != 0 {
		t.Fatalf("%+v", ev)
	}
}

// A heartbeat whose state cannot be trusted makes the instance uncertain.
func TestStoppedHeartbeatIsUncertain(t *testing.T) {
	ev := evalYAML(t, `asserts: [{name: a, expect: 'heartbeat("agent").age < duration("1h")'}]`, fakeQuerier{},
		func(name string) (HeartbeatStatus, error) {
			return HeartbeatStatus{Name: name}, errors.New("heartbeat agent is down: no ping since 00:00")
		})
	if v := ev.Verdicts[0]; v.State != assertd.Uncertain || !strings.Contains(v.Reason, "cannot tell: heartbeat agent is down") {
		t.Fatalf("%+v", v)
	}
}

func TestClearHysteresis(t *testing.T) {
	src := "asserts: [{name: a, query: {x: 'X'}, expect: x < 50, clear: x < 40}]"
	for x, want := range map[float64][2]any{30: {assertd.OK, true}, 45: {assertd.OK, false}, 60: {assertd.Violated, false}} {
		ev := evalYAML(t, src, fakeQuerier{"X": vec(L{"i": "a"}, x)}, nil)
		if v := ev.Verdicts[0]; v.State != want[0] || v.Clear != want[1] {
			t.Errorf("x=%v: state %s clear %v, want %v", x, v.State, v.Clear, want)
		}
	}
}
